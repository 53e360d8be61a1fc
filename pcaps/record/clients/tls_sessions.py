"""real-tls: mail sessions over TLS against Postfix and Dovecot on 127.0.0.1, with the
TLS secrets written to a key log (SSLContext.keylog_filename) and what each client saw
written as JSON ground truth (one object per session: client port, commands and the
statuses the client got, auth user and outcome, SHA-256 of each message sent or read).

usage: tls_sessions.py KEYLOG TRUTH.json PHASE   (PHASE: send, read or big)
  send: SMTP STARTTLS on 25 (TLS 1.3, AUTH PLAIN, attachment) and 587 (TLS 1.2
        AES-128-GCM, AUTH LOGIN), SMTPS on 465 (TLS 1.2 CHACHA20-POLY1305, and TLS 1.2
        AES-128-CBC-SHA with encrypt-then-MAC); messages to alice and bob.
  read: POP3 STLS on 110 (TLS 1.3) and POP3S on 995 (TLS 1.2 AES-256-GCM) as alice with
        RETR and DELE; IMAP STARTTLS on 143 (TLS 1.3) with FETCH BODY[] and APPEND, and
        IMAPS on 993 (TLS 1.2 CHACHA20-POLY1305) with FETCH BODY[], as bob.
  big:  a 2 MB message over SMTPS (TLS 1.3) to carol.
"""
import base64
import hashlib
import imaplib
import json
import poplib
import smtplib
import ssl
import sys

KEYLOG, TRUTH, PHASE = sys.argv[1], sys.argv[2], sys.argv[3]
SESSIONS = []


def ctx(tls12_cipher=None):
    c = ssl.create_default_context()
    c.check_hostname = False
    c.verify_mode = ssl.CERT_NONE
    c.keylog_filename = KEYLOG
    if tls12_cipher:
        c.maximum_version = ssl.TLSVersion.TLSv1_2
        c.set_ciphers(tls12_cipher)
    else:
        c.minimum_version = ssl.TLSVersion.TLSv1_3
    return c


def sha(b):
    return hashlib.sha256(b).hexdigest()


def message(to, subject, body, attach=None):
    lines = ["From: carol@example.test", "To: %s" % to, "Subject: %s" % subject,
             "Message-Id: <%s@example.org>" % subject.replace(" ", "-"), "MIME-Version: 1.0"]
    if attach is None:
        lines += ["Content-Type: text/plain; charset=utf-8", "", body]
    else:
        name, data = attach
        lines += ['Content-Type: multipart/mixed; boundary="b1"', "", "--b1",
                  "Content-Type: text/plain; charset=utf-8", "", body, "--b1",
                  'Content-Type: application/octet-stream; name="%s"' % name,
                  "Content-Transfer-Encoding: base64",
                  'Content-Disposition: attachment; filename="%s"' % name, ""]
        b64 = base64.b64encode(data).decode()
        lines += [b64[i:i + 76] for i in range(0, len(b64), 76)]
        lines += ["--b1--"]
    return ("\r\n".join(lines) + "\r\n").encode()


def smtp(port, implicit, cipher, auth, to, subject, attach=None):
    s = {"proto": "smtp", "server_port": port, "commands": [], "messages": []}
    c = ctx(cipher)
    if implicit:
        m = smtplib.SMTP_SSL("127.0.0.1", port, context=c, timeout=30)
    else:
        m = smtplib.SMTP("127.0.0.1", port, timeout=30)
    s["client_port"] = m.sock.getsockname()[1]
    code, _ = m.ehlo("client.example.org")
    s["commands"].append(["EHLO", code])
    if not implicit:
        code, _ = m.starttls(context=c)
        s["commands"].append(["STARTTLS", code])
        code, _ = m.ehlo("client.example.org")
        s["commands"].append(["EHLO", code])
    if auth:
        m.user, m.password = "carol", "secret"
        code, _ = m.auth(auth, m.auth_plain if auth == "PLAIN" else m.auth_login)
        s["commands"].append(["AUTH", code])
        s["auth"] = {"user": "carol", "success": code == 235}
    msg = message(to, subject, "Sent over TLS on port %d." % port, attach)
    code, _ = m.mail("carol@example.test")
    s["commands"].append(["MAIL", code])
    code, _ = m.rcpt(to)
    s["commands"].append(["RCPT", code])
    code, _ = m.data(msg)
    s["commands"].append(["DATA", code])
    s["messages"].append(sha(msg))
    code, _ = m.quit()
    s["commands"].append(["QUIT", code])
    SESSIONS.append(s)


def pop3(port, implicit, cipher):
    s = {"proto": "pop3", "server_port": port, "commands": [], "messages": []}
    c = ctx(cipher)
    if implicit:
        p = poplib.POP3_SSL("127.0.0.1", port, context=c, timeout=30)
    else:
        p = poplib.POP3("127.0.0.1", port, timeout=30)
    s["client_port"] = p.sock.getsockname()[1]
    if not implicit:
        p.stls(context=c)
        s["commands"].append(["STLS", "+OK"])
    p.user("alice")
    s["commands"].append(["USER", "+OK"])
    p.pass_("secret")
    s["commands"].append(["PASS", "+OK"])
    s["auth"] = {"user": "alice", "success": True}
    p.stat()
    s["commands"].append(["STAT", "+OK"])
    _, lines, _ = p.retr(1)
    s["commands"].append(["RETR", "+OK"])
    s["messages"].append(sha(b"\r\n".join(lines) + b"\r\n"))
    p.dele(1)
    s["commands"].append(["DELE", "+OK"])
    p.quit()
    s["commands"].append(["QUIT", "+OK"])
    SESSIONS.append(s)


def imap(port, implicit, cipher, append):
    s = {"proto": "imap", "server_port": port, "commands": [], "messages": []}
    c = ctx(cipher)
    if implicit:
        m = imaplib.IMAP4_SSL("127.0.0.1", port, ssl_context=c, timeout=30)
    else:
        m = imaplib.IMAP4("127.0.0.1", port, timeout=30)
    s["client_port"] = m.sock.getsockname()[1]
    if not implicit:
        typ, _ = m.starttls(ssl_context=c)
        s["commands"].append(["STARTTLS", typ])
    typ, _ = m.login("bob", "secret")
    s["commands"].append(["LOGIN", typ])
    s["auth"] = {"user": "bob", "success": typ == "OK"}
    typ, _ = m.select("INBOX")
    s["commands"].append(["SELECT", typ])
    typ, data = m.fetch("1", "(BODY[])")
    s["commands"].append(["FETCH", typ])
    s["messages"].append(sha(data[0][1]))
    if append:
        msg = message("bob@example.test", "appended over TLS", "Appended with APPEND.")
        typ, _ = m.append("INBOX", None, None, msg)
        s["commands"].append(["APPEND", typ])
        s["messages"].append(sha(msg))
    typ, _ = m.logout()
    s["commands"].append(["LOGOUT", typ])
    SESSIONS.append(s)


def main():
    if PHASE == "send":
        att = bytes(range(256)) * 40
        smtp(25, False, None, "PLAIN", "alice@example.test", "starttls 25 tls13", ("data.bin", att))
        smtp(587, False, "ECDHE-RSA-AES128-GCM-SHA256", "LOGIN", "alice@example.test", "starttls 587 tls12 gcm")
        smtp(465, True, "ECDHE-RSA-CHACHA20-POLY1305", "PLAIN", "bob@example.test", "smtps 465 chacha")
        smtp(465, True, "ECDHE-RSA-AES128-SHA", None, "bob@example.test", "smtps 465 cbc")
    elif PHASE == "big":
        # A 2 MB message (a 1.5 MB attachment, base64) over SMTPS with TLS 1.3.
        att = b"".join(hashlib.sha256(b"%d" % i).digest() for i in range(48 * 1024))
        smtp(465, True, None, "PLAIN", "carol@example.test", "two megabytes over tls", ("big.bin", att))
    else:
        pop3(110, False, None)
        pop3(995, True, "ECDHE-RSA-AES256-GCM-SHA384")
        imap(143, False, None, True)
        imap(993, True, "ECDHE-RSA-CHACHA20-POLY1305", False)
    try:
        with open(TRUTH) as f:
            old = json.load(f)
    except FileNotFoundError:
        old = []
    with open(TRUTH, "w") as f:
        json.dump(old + SESSIONS, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
