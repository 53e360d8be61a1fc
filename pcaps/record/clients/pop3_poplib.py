"""real-dovecot-poplib: Python poplib against Dovecot as alice (three seeded messages):
USER/PASS, STAT, LIST, UIDL, RETR 1, TOP 2 5, DELE 3, QUIT (so message 3 is deleted)."""
import poplib


def main():
    p = poplib.POP3("127.0.0.1", 110, timeout=20)
    print(p.getwelcome().decode())
    print(p.user("alice").decode())
    print(p.pass_("secret").decode())
    print("STAT", p.stat())
    resp, listing, _ = p.list()
    print(resp.decode(), [l.decode() for l in listing])
    resp, uidls, _ = p.uidl()
    print(resp.decode(), [l.decode() for l in uidls])
    resp, lines, octets = p.retr(1)
    print(resp.decode(), len(lines), "lines", octets, "octets")
    resp, lines, octets = p.top(2, 5)
    print(resp.decode(), len(lines), "lines")
    print(p.dele(3).decode())
    print(p.quit().decode())


if __name__ == "__main__":
    main()
