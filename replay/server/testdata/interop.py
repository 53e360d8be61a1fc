"""Real-client checks for the built-in mail server, run by interop_test.go.

Usage: python3 interop.py MODE HOST SMTP_PORT POP3_PORT IMAP_PORT [ARGS...]

Modes:
  roundtrip  send with smtplib (STARTTLS, AUTH), read back with poplib (STLS,
             APOP) and imaplib (STARTTLS), change flags and move with imaplib,
             and check that POP3 and IMAP see each other's changes.
  fetch OUTDIR ATTACHMENT_NAME
             fetch INBOX message 1 of alice with imaplib (BODY.PEEK[]) and
             poplib (RETR 1), write imap.eml and pop3.eml, and write the
             decoded attachment named ATTACHMENT_NAME to attachment.bin.
Exit status 0 means every check passed; failures are printed.
"""
import email
import email.policy
import hashlib
import imaplib
import os
import poplib
import smtplib
import ssl
import sys

ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE


def check(cond, what):
    if not cond:
        print("FAIL:", what)
        sys.exit(1)


def imap_login(host, port):
    m = imaplib.IMAP4(host, port)
    check("STARTTLS" in m.capabilities, "IMAP advertises STARTTLS")
    m.starttls(ssl_context=ctx)
    typ, _ = m.login("alice", "secret")
    check(typ == "OK", "IMAP LOGIN")
    return m


def roundtrip(host, smtp_port, pop3_port, imap_port):
    body = ("From: Sender <sender@example.org>\r\nTo: alice@example.com\r\n"
            "Subject: interop\r\nMessage-ID: <interop@example.org>\r\n\r\n"
            "Hello from smtplib.\r\n.leading dot\r\n")
    with smtplib.SMTP(host, smtp_port) as s:
        s.ehlo("client.example")
        check(s.has_extn("pipelining") and s.has_extn("chunking"), "EHLO keywords")
        s.starttls(context=ctx)
        s.ehlo("client.example")
        s.login("alice", "secret")
        refused = s.sendmail("sender@example.org", ["alice@example.com"], body)
        check(not refused, "recipient accepted")
        try:
            s.sendmail("sender@example.org", ["nobody@example.com"], body)
            check(False, "unknown recipient must be refused")
        except smtplib.SMTPRecipientsRefused as e:
            code = e.recipients["nobody@example.com"][0]
            check(code == 550, "550 for unknown user, got %r" % (code,))

    p = poplib.POP3(host, pop3_port)
    check("STLS" in p.capa(), "POP3 CAPA STLS")
    p.stls(context=ctx)
    p.apop("alice", "secret")
    count, _ = p.stat()
    check(count == 1, "POP3 STAT count %d" % count)
    _, lines, _ = p.retr(1)
    raw = b"\r\n".join(lines) + b"\r\n"
    check(raw.endswith(body.encode()), "POP3 RETR returns the message as sent")
    _, top, _ = p.top(1, 0)
    check(b"Subject: interop" in top and b"Hello from smtplib." not in top, "POP3 TOP 0")
    p.quit()

    m = imap_login(host, imap_port)
    typ, data = m.select("INBOX")
    check(typ == "OK" and data[0] == b"1", "IMAP SELECT INBOX")
    typ, data = m.fetch("1", "(FLAGS BODY.PEEK[])")
    check(b"\\Seen" in data[0][0], "POP3 RETR set \\Seen, seen by IMAP")
    check(data[0][1] == raw, "IMAP and POP3 bytes identical")
    m.store("1", "+FLAGS", "(\\Flagged)")
    typ, data = m.search(None, "FLAGGED", "SUBJECT", "interop")
    check(data[0] == b"1", "IMAP SEARCH FLAGGED")
    typ, data = m.uid("MOVE", "1", "Trash")
    check(typ == "OK", "IMAP UID MOVE")
    m.logout()

    p = poplib.POP3(host, pop3_port)
    p.user("alice")
    p.pass_("secret")
    check(p.stat()[0] == 0, "POP3 no longer sees the moved message")
    p.quit()

    m = imap_login(host, imap_port)
    typ, data = m.select("Trash")
    typ, data = m.fetch("1", "(FLAGS)")
    check(b"\\Flagged" in data[0] and b"\\Seen" in data[0], "flags kept by MOVE")
    m.logout()
    print("ok")


def fetch(host, pop3_port, imap_port, outdir, attname):
    m = imap_login(host, imap_port)
    m.select("INBOX", readonly=True)
    typ, data = m.fetch("1", "(BODY.PEEK[])")
    check(typ == "OK", "IMAP FETCH")
    imap_raw = data[0][1]
    m.logout()

    p = poplib.POP3(host, pop3_port)
    p.user("alice")
    p.pass_("secret")
    _, lines, _ = p.retr(1)
    pop_raw = b"\r\n".join(lines) + b"\r\n"
    p.quit()

    with open(os.path.join(outdir, "imap.eml"), "wb") as f:
        f.write(imap_raw)
    with open(os.path.join(outdir, "pop3.eml"), "wb") as f:
        f.write(pop_raw)
    msg = email.message_from_bytes(imap_raw, policy=email.policy.default)
    for part in msg.iter_attachments():
        if part.get_filename() == attname:
            with open(os.path.join(outdir, "attachment.bin"), "wb") as f:
                f.write(part.get_content())
            print("attachment sha256", hashlib.sha256(part.get_content()).hexdigest())
            break
    else:
        check(False, "attachment %s not found" % attname)
    print("ok")


def main():
    mode, host = sys.argv[1], sys.argv[2]
    smtp_port, pop3_port, imap_port = (int(x) for x in sys.argv[3:6])
    if mode == "roundtrip":
        roundtrip(host, smtp_port, pop3_port, imap_port)
    elif mode == "fetch":
        fetch(host, pop3_port, imap_port, sys.argv[6], sys.argv[7])
    else:
        check(False, "unknown mode " + mode)


if __name__ == "__main__":
    main()
