"""real-dovecot-imap-idle: bob IDLEs on INBOX (raw socket: imaplib has no IDLE) while
(1) Postfix delivers a message sent with smtplib on port 25 (recorded in the same
capture) and (2) a second IMAP connection (imaplib) APPENDs one. Each arrival shows up
in the IDLE as "* N EXISTS"; then DONE, FETCH of the two new messages' subjects, LOGOUT.

INBOX starts with two messages (left by the imaplib session), so the arrivals are
messages 3 and 4."""
import imaplib
import smtplib
import socket
import sys
import time
from email.message import EmailMessage


class Conn:
    def __init__(self):
        self.s = socket.create_connection(("127.0.0.1", 143), timeout=20)
        self.buf = b""

    def _raw(self):
        while b"\r\n" not in self.buf:
            data = self.s.recv(65536)
            if not data:
                sys.exit("server closed the connection")
            self.buf += data
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def line(self, timeout=20):
        """One response line; a literal {N} at its end is read with what follows it."""
        self.s.settimeout(timeout)
        line = self._raw()
        while line.endswith(b"}") and b"{" in line:
            n = int(line[line.rindex(b"{") + 1:-1])
            while len(self.buf) < n:
                data = self.s.recv(65536)
                if not data:
                    sys.exit("server closed the connection")
                self.buf += data
            lit, self.buf = self.buf[:n], self.buf[n:]
            line = line + b"\r\n" + lit + self._raw()
        print("S:", line.decode(errors="replace"))
        return line

    def send(self, text):
        print("C:", text)
        self.s.sendall(text.encode() + b"\r\n")

    def until(self, prefix, timeout=20):
        """Read lines until one starts with prefix; return it."""
        deadline = time.time() + timeout
        while True:
            left = deadline - time.time()
            if left <= 0:
                sys.exit(f"no {prefix!r} in {timeout}s")
            line = self.line(left)
            if line.startswith(prefix):
                return line

    def tagged(self, tag, cmd):
        self.send(f"{tag} {cmd}")
        line = self.until(tag.encode() + b" ")
        if not line.startswith(tag.encode() + b" OK"):
            sys.exit(f"{cmd}: {line!r}")


def deliver():
    m = EmailMessage()
    m["From"] = "Dora Sender <dora@example.org>"
    m["To"] = "Bob <bob@example.test>"
    m["Subject"] = "Delivered during IDLE"
    m["Message-ID"] = "<idle-smtp@example.org>"
    m.set_content("This message arrived through Postfix while bob was idling.\n")
    with smtplib.SMTP("127.0.0.1", 25, local_hostname="idle.example.org", timeout=20) as s:
        s.send_message(m, from_addr="dora@example.org", to_addrs=["bob@example.test"])


def append_from_second_client():
    msg = (
        b"From: Bob <bob@example.test>\r\n"
        b"To: Bob <bob@example.test>\r\n"
        b"Subject: Appended during IDLE\r\n"
        b"Message-ID: <idle-append@example.test>\r\n"
        b"\r\n"
        b"Appended by a second IMAP connection.\r\n"
    )
    m = imaplib.IMAP4("127.0.0.1", 143, timeout=20)
    m.login("bob", "secret")
    typ, data = m.append("INBOX", None, None, msg)
    if typ != "OK":
        sys.exit(f"APPEND: {typ} {data}")
    m.logout()


def main():
    c = Conn()
    c.until(b"* OK")
    c.tagged("a1", "LOGIN bob secret")
    c.tagged("a2", "SELECT INBOX")
    c.send("a3 IDLE")
    c.until(b"+ ")
    deliver()
    c.until(b"* 3 EXISTS")
    append_from_second_client()
    c.until(b"* 4 EXISTS")
    c.send("DONE")
    c.until(b"a3 OK")
    c.tagged("a4", "FETCH 3:4 (UID FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    c.tagged("a5", "LOGOUT")
    c.s.close()


if __name__ == "__main__":
    main()
