"""Put three messages into a user's INBOX through Postfix (SMTP on 127.0.0.1:25, then
LMTP to Dovecot) before a POP3 or IMAP capture. Not recorded itself.

usage: deliver.py USER MAILDIR ATTACHMENT

Messages are sent one at a time and each is awaited in MAILDIR, so message numbers
1, 2, 3 always follow the order below.
"""
import os
import smtplib
import sys
import time
from email.message import EmailMessage

SUBJECTS = {
    "alice": [
        "POP3 one: plain text",
        "Grüße aus Köln – Rechnung März",
        "POP3 three: to be deleted",
    ],
    "bob": [
        "IMAP one: plain text",
        "Überweisung bestätigt – Anhang",
        "IMAP three: stays in INBOX",
    ],
}


def count(maildir):
    n = 0
    for sub in ("new", "cur"):
        try:
            n += len(os.listdir(os.path.join(maildir, sub)))
        except FileNotFoundError:
            pass
    return n


def build(user, i, subject, attachment):
    m = EmailMessage()
    m["From"] = "Dora Sender <dora@example.org>"
    m["To"] = f"{user.capitalize()} <{user}@example.test>"
    m["Subject"] = subject
    m["Message-ID"] = f"<{user}-seed-{i}@example.org>"
    if i == 1:
        # A line starting with a dot and a line that is only a dot: both are dot-stuffed
        # on the wire (DATA, RETR, but not IMAP).
        m.set_content(
            f"Hello {user},\n\nthis is message one.\n.leading dot line\n.\nend of message one.\n"
        )
    elif i == 2:
        m.set_content("Die Rechnung liegt bei.\nViele Grüße\nDora\n")
        with open(attachment, "rb") as f:
            m.add_attachment(
                f.read(), maintype="text", subtype="csv", filename="Übersicht.csv"
            )
    else:
        m.set_content(f"Message three for {user}.\n")
    return m


def main():
    user, maildir, attachment = sys.argv[1:4]
    subjects = SUBJECTS[user]
    with smtplib.SMTP("127.0.0.1", 25, local_hostname="seed.example.org", timeout=20) as s:
        for i, subject in enumerate(subjects, 1):
            before = count(maildir)
            s.send_message(build(user, i, subject, attachment),
                           from_addr="dora@example.org", to_addrs=[f"{user}@example.test"])
            deadline = time.time() + 30
            while count(maildir) <= before:
                if time.time() > deadline:
                    sys.exit(f"message {i} for {user} never reached {maildir}")
                time.sleep(0.1)
    print(f"delivered {len(subjects)} messages to {user}")


if __name__ == "__main__":
    main()
