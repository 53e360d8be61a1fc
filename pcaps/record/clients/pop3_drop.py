"""real-dovecot-pop3-nodelete-drop: alice logs in, marks message 1 for deletion (DELE 1)
and the client closes the socket without QUIT. RFC 1939: without QUIT there is no UPDATE
state, so nothing is deleted. A second connection shows it: STAT and LIST still count the
same messages, then QUIT."""
import poplib
import time


def main():
    p = poplib.POP3("127.0.0.1", 110, timeout=20)
    p.user("alice")
    p.pass_("secret")
    before = p.stat()
    print("STAT", before)
    print(p.dele(1).decode())
    # Drop the connection: no QUIT.
    p.file.close()
    p.sock.close()
    time.sleep(1)

    p = poplib.POP3("127.0.0.1", 110, timeout=20)
    p.user("alice")
    p.pass_("secret")
    after = p.stat()
    print("STAT", after)
    resp, listing, _ = p.list()
    print(resp.decode(), [l.decode() for l in listing])
    print(p.quit().decode())
    if after != before:
        raise SystemExit(f"messages changed without QUIT: {before} -> {after}")


if __name__ == "__main__":
    main()
