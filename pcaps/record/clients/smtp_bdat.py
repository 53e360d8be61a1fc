"""real-postfix-bdat: SMTP CHUNKING (RFC 3030) by hand over a raw socket, since smtplib
has no BDAT.

Message 1 (one command at a time): MAIL, RCPT, "BDAT n1" and "BDAT n2 LAST". The chunk
boundary falls in the middle of a body line; the body holds a line that starts with a dot
and a line that is only a dot, which BDAT carries as-is (no dot-stuffing, no end marker).
Message 2 (pipelined in one write): MAIL, RCPT, "BDAT n" with the whole message, then
"BDAT 0 LAST". Then QUIT."""
import socket
import sys


class Conn:
    def __init__(self):
        self.s = socket.create_connection(("127.0.0.1", 25), timeout=20)
        self.buf = b""

    def reply(self):
        """Read one (possibly multi-line) reply; return (code, lines)."""
        lines = []
        while True:
            while b"\r\n" not in self.buf:
                data = self.s.recv(4096)
                if not data:
                    sys.exit("server closed the connection")
                self.buf += data
            line, self.buf = self.buf.split(b"\r\n", 1)
            lines.append(line.decode())
            if len(line) < 4 or line[3:4] != b"-":
                print("S:", " | ".join(lines))
                return int(line[:3]), lines

    def send(self, data):
        self.s.sendall(data)

    def cmd(self, line, want):
        print("C:", line)
        self.send(line.encode() + b"\r\n")
        code, lines = self.reply()
        if code != want:
            sys.exit(f"{line!r}: got {code}, want {want}")
        return lines


MSG1 = (
    b"From: BDAT Client <bdat@example.org>\r\n"
    b"To: Carol <carol@example.test>\r\n"
    b"Subject: BDAT message 1 in two chunks\r\n"
    b"Message-ID: <bdat-1@example.org>\r\n"
    b"MIME-Version: 1.0\r\n"
    b"Content-Type: text/plain; charset=us-ascii\r\n"
    b"\r\n"
    b"First body line.\r\n"
    b".this line starts with a dot and is not stuffed\r\n"
    b".\r\n"
    b"The line above is a lone dot; in BDAT it does not end the message.\r\n"
    b"Last line.\r\n"
)
SPLIT = MSG1.index(b"First body line.") + len(b"First body")

MSG2 = (
    b"From: BDAT Client <bdat@example.org>\r\n"
    b"To: Carol <carol@example.test>\r\n"
    b"Subject: BDAT message 2 pipelined\r\n"
    b"Message-ID: <bdat-2@example.org>\r\n"
    b"\r\n"
    b"Sent with MAIL, RCPT, BDAT and BDAT 0 LAST in one write.\r\n"
)


def main():
    c = Conn()
    code, _ = c.reply()
    assert code == 220, code
    caps = c.cmd("EHLO bdat.example.org", 250)
    if not any("CHUNKING" in l for l in caps):
        sys.exit("server does not offer CHUNKING")

    c.cmd("MAIL FROM:<bdat@example.org>", 250)
    c.cmd("RCPT TO:<carol@example.test>", 250)
    chunk1, chunk2 = MSG1[:SPLIT], MSG1[SPLIT:]
    print(f"C: BDAT {len(chunk1)} (+{len(chunk1)} octets)")
    c.send(b"BDAT %d\r\n" % len(chunk1) + chunk1)
    code, _ = c.reply()
    assert code == 250, code
    print(f"C: BDAT {len(chunk2)} LAST (+{len(chunk2)} octets)")
    c.send(b"BDAT %d LAST\r\n" % len(chunk2) + chunk2)
    code, _ = c.reply()
    assert code == 250, code

    print("C: (pipelined) MAIL, RCPT, BDAT %d, BDAT 0 LAST" % len(MSG2))
    c.send(
        b"MAIL FROM:<bdat@example.org>\r\n"
        b"RCPT TO:<carol@example.test>\r\n"
        + b"BDAT %d\r\n" % len(MSG2) + MSG2
        + b"BDAT 0 LAST\r\n"
    )
    for _ in range(4):
        code, _ = c.reply()
        assert code == 250, code
    c.cmd("QUIT", 221)
    c.s.close()


if __name__ == "__main__":
    main()
