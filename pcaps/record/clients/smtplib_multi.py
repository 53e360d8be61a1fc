"""real-postfix-smtplib-multi: Python smtplib sends three messages on one SMTP connection
(EHLO once, then MAIL/RCPT/DATA three times, QUIT). The second subject is non-ASCII, so
the email package writes it as an RFC 2047 encoded word."""
import smtplib
from email.message import EmailMessage

MESSAGES = [
    ("smtplib message 1 of 3", "First message on a shared connection.\n"),
    ("Prüfbericht für März – Nachricht 2", "Zweite Nachricht: Umlaute im Betreff.\n"),
    ("smtplib message 3 of 3", "Third and last message.\n"),
]


def main():
    with smtplib.SMTP("127.0.0.1", 25, local_hostname="smtplib.example.org", timeout=20) as s:
        s.ehlo()
        for i, (subject, body) in enumerate(MESSAGES, 1):
            m = EmailMessage()
            m["From"] = "Erik Sender <erik@example.org>"
            m["To"] = "Carol <carol@example.test>"
            m["Subject"] = subject
            m["Message-ID"] = f"<smtplib-multi-{i}@example.org>"
            m.set_content(body)
            refused = s.send_message(m, from_addr="erik@example.org",
                                     to_addrs=["carol@example.test"])
            print(f"message {i} sent, refused={refused}")


if __name__ == "__main__":
    main()
