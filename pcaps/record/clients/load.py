"""Load clients for load.sh: loop until STOPFILE exists, then finish the session in
progress and exit. Standard library only.

usage: load.py submit STOPFILE SEED   SMTP AUTH submissions to Postfix on 127.0.0.1:25
       load.py bulk STOPFILE SEED     SMTP sessions to smtp-sink on 127.0.0.1:2525
       load.py pop3 STOPFILE SEED     poplib sessions against Dovecot on 127.0.0.1:110
       load.py imap STOPFILE SEED     imaplib sessions against Dovecot on 127.0.0.1:143

submit: one session = EHLO, AUTH PLAIN or LOGIN as carol (alternating), 1-5 messages
(plain text, or multipart with a base64 attachment of 1 KB - 1 MB) to alice, bob or
carol, QUIT. The envelope is always carol -> alice/bob/carol, but the header fields
vary as real mail's do: From, To, Cc and Reply-To name people drawn from a pool of
about 30,000 (first name x last name x domain), with or without display names, some
with quoted commas or non-ASCII names (RFC 2047 encoded words), 1-4 To and 0-5 Cc
addresses; so that an address field value rarely repeats, unlike smtp-source's. bulk:
sessions of 1-50 plain-text messages of 1-16 KB (a few of 64 KB) from and to such people
(1-3 envelope recipients), as an MTA relaying everyone's mail sends them; smtp-sink
accepts them all. pop3: USER/PASS as alice, STAT, LIST, UIDL, RETR of up to 40 messages, DELE
of each retrieved one (so the mailbox stays small), QUIT. imap: LOGIN as bob or carol,
SELECT INBOX, UID FETCH BODY.PEEK[] of up to 30 messages, and when the mailbox holds more
than 200: STORE \\Deleted on the oldest 100 and EXPUNGE; LOGOUT. Prints one line of totals.
"""
import imaplib
import os
import poplib
import random
import smtplib
import sys
import time
from email.headerregistry import Address
from email.utils import format_datetime, formataddr, localtime
from email.message import EmailMessage

WORDS = ("the quarterly figures are attached please review before friday meeting "
         "invoice shipment delayed warehouse customer account balance report draft "
         "Grüße Überweisung naïve café résumé déjà vu").split()


def text(rng, n):
    out, size = [], 0
    while size < n:
        line = " ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 14)))
        if rng.random() < 0.02:
            line = "." + line  # dot-stuffed on the wire
        out.append(line)
        size += len(line) + 1
    return "\n".join(out) + "\n"


FIRST = ("Alice Bob Carol Dave Erin Frank Grace Heidi Ivan Judy Karl Laura Mallory Niaj Olivia "
         "Peggy Quentin Rupert Sybil Trent Uma Victor Walter Xena Yusuf Zoë Jürgen Sören Åsa "
         "Chloé José Łukasz Renée Siobhán Anaïs Björn Dana Eli Fatima Hiro Ines Jun Kofi Lena "
         "Mateo Noor Omar Priya").split()
LAST = ("Smith Jones Müller Dubois García Rossi Nowak Kim Nguyen Papadopoulos O'Brien Tanaka "
        "Silva Novák Ivanov Schmidt Johansson Costa Yılmaz Kowalski Andersen Moreau Fischer "
        "Lopez Brown Wilson Taylor Martin Lee Clark Lewis Walker Hall Young King Wright Scott "
        "Green Baker Adams Nelson Hill Campbell Mitchell Roberts Carter Phillips Evans "
        "Turner Torres").split()
DOMAINS = ("example.com example.org example.net mail.example.test corp.example.com "
           "lists.example.org eu.example.net example.co.uk sub.dept.example.com "
           "uni.example.edu xn--mnchen-3ya.example").split()


def person(rng):
    """An address as mail clients write it: with or without a display name."""
    first, last = rng.choice(FIRST), rng.choice(LAST)
    local = rng.choice((f"{first}.{last}", f"{first[0]}{last}", f"{first}_{last}{rng.randint(1, 99)}",
                        f"{last}+{rng.choice(WORDS)}"))
    local = "".join(c for c in local.lower() if c.isascii() and (c.isalnum() or c in "._+-"))
    domain = rng.choice(DOMAINS)
    shape = rng.random()
    if shape < 0.2:
        return Address(addr_spec=f"{local}@{domain}")
    if shape < 0.3:
        return Address(f"{last}, {first}", local, domain)  # quoted: has a comma
    return Address(f"{first} {last}", local, domain)  # encoded word if not ASCII


def message(rng, i, seed, to):
    m = EmailMessage()
    m["From"] = person(rng)
    m["To"] = [Address(to.split("@")[0].title(), *to.split("@"))] + \
        [person(rng) for _ in range(rng.randint(0, 3))]
    if rng.random() < 0.5:
        m["Cc"] = [person(rng) for _ in range(rng.randint(1, 5))]
    if rng.random() < 0.1:
        m["Reply-To"] = person(rng)
    m["Subject"] = f"load {seed}-{i}: " + " ".join(rng.choice(WORDS) for _ in range(5))
    m["Message-ID"] = f"<load-{seed}-{i}@example.test>"
    m.set_content(text(rng, rng.choice((300, 2000, 8000, 30000))))
    if rng.random() < 0.4:
        size = rng.choice((1024, 20000, 100000, 400000, 1000000))
        m.add_attachment(rng.randbytes(size), maintype="application",
                         subtype="octet-stream", filename=f"blob-{i}.bin")
    return m


def addresses(people):
    """A header field value naming people, RFC 2047-encoded where not ASCII."""
    return ", ".join(formataddr((a.display_name, a.addr_spec), "utf-8") for a in people)


def bulk(stop, seed):
    rng = random.Random(seed)
    sessions = msgs = 0
    while not os.path.exists(stop):
        with smtplib.SMTP("127.0.0.1", 2525, local_hostname="relay.example.org", timeout=60) as s:
            s.ehlo()
            for _ in range(rng.choice((1, 1, 1, 2, 5, 20, 50))):
                sender = person(rng)
                rcpts = [person(rng) for _ in range(rng.randint(1, 3))]
                cc = [person(rng) for _ in range(rng.randint(1, 4))] if rng.random() < 0.3 else []
                head = [
                    "From: " + addresses([sender]),
                    "To: " + addresses(rcpts),
                ]
                if cc:
                    head.append("Cc: " + addresses(cc))
                head += [
                    "Subject: " + " ".join(rng.choice(WORDS[:30]) for _ in range(rng.randint(2, 7))),
                    "Date: " + format_datetime(localtime()),
                    f"Message-ID: <bulk-{seed}-{msgs}@relay.example.org>",
                    "MIME-Version: 1.0",
                    'Content-Type: text/plain; charset="utf-8"',
                    "Content-Transfer-Encoding: 8bit",
                ]
                size = rng.choice((1000, 2000, 3000, 5000, 8000, 16000)) if rng.random() < 0.97 else 64000
                body = "\r\n".join(head) + "\r\n\r\n" + text(rng, size).replace("\n", "\r\n")
                s.sendmail(sender.addr_spec, [r.addr_spec for r in rcpts], body.encode())
                msgs += 1
        sessions += 1
    print(f"bulk: {sessions} sessions, {msgs} messages")


def submit(stop, seed):
    rng = random.Random(seed)
    sessions = msgs = 0
    while not os.path.exists(stop):
        with smtplib.SMTP("127.0.0.1", 25, local_hostname="load.example.org", timeout=60) as s:
            s.ehlo()
            if sessions % 2:
                s.user, s.password = "carol", "secret"
                s.auth("LOGIN", s.auth_login, initial_response_ok=False)
            else:
                s.login("carol", "secret")
            for _ in range(rng.randint(1, 5)):
                to = rng.choice(("alice", "bob", "carol"))
                s.send_message(message(rng, msgs, seed, f"{to}@example.test"),
                               from_addr="carol@example.test", to_addrs=[f"{to}@example.test"])
                msgs += 1
        sessions += 1
    print(f"submit: {sessions} sessions, {msgs} messages")


def pop3(stop, seed):
    sessions = retr = 0
    while not os.path.exists(stop):
        p = poplib.POP3("127.0.0.1", 110, timeout=60)
        p.user("alice")
        p.pass_("secret")
        count, _ = p.stat()
        p.list()
        p.uidl()
        for n in range(1, min(count, 40) + 1):
            p.retr(n)
            p.dele(n)
            retr += 1
        p.quit()
        sessions += 1
        if count == 0:
            time.sleep(0.2)
    print(f"pop3: {sessions} sessions, {retr} messages retrieved")


def imap(stop, seed):
    rng = random.Random(seed)
    sessions = fetched = 0
    while not os.path.exists(stop):
        user = rng.choice(("bob", "carol"))
        m = imaplib.IMAP4("127.0.0.1", 143, timeout=60)
        m.login(user, "secret")
        typ, data = m.select("INBOX")
        exists = int(data[0])
        if exists:
            typ, data = m.uid("SEARCH", None, "ALL")
            uids = data[0].split()
            pick = uids[-30:] if rng.random() < 0.5 else uids[:30]
            typ, data = m.uid("FETCH", b",".join(pick), "(UID RFC822.SIZE BODY.PEEK[])")
            fetched += len(pick)
            if exists > 200:
                m.uid("STORE", b",".join(uids[:100]), "+FLAGS.SILENT", r"(\Deleted)")
                m.expunge()
        m.logout()
        sessions += 1
        if not exists:
            time.sleep(0.2)
    print(f"imap: {sessions} sessions, {fetched} messages fetched")


def main():
    mode, stop, seed = sys.argv[1], sys.argv[2], int(sys.argv[3])
    {"submit": submit, "bulk": bulk, "pop3": pop3, "imap": imap}[mode](stop, seed)


if __name__ == "__main__":
    main()
