"""real-dovecot-imaplib: Python imaplib against Dovecot as bob (three seeded messages,
UIDs 1-3). One connection: CAPABILITY, LOGIN, LIST, SELECT INBOX, FETCH of full bodies,
SEARCH, STORE \\Seen, CREATE Archive, COPY, UID MOVE, CREATE/RENAME/DELETE, APPEND,
NOOP, STORE \\Deleted + EXPUNGE, EXAMINE Archive + FETCH, LOGOUT.

End state: INBOX holds seeded message 3 (UID 3) and the appended one (UID 4); Archive
holds copies of seeded messages 1 (copied) and 2 (moved)."""
import imaplib
import sys

APPENDED = (
    b"From: Bob <bob@example.test>\r\n"
    b"To: Bob <bob@example.test>\r\n"
    b"Subject: Appended by imaplib\r\n"
    b"Message-ID: <imaplib-append@example.test>\r\n"
    b"Date: Fri, 01 Mar 2024 10:00:00 +0100\r\n"
    b"MIME-Version: 1.0\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"Content-Transfer-Encoding: 8bit\r\n"
    b"\r\n"
    b"A draft kept with APPEND.\r\n"
    b"Gr\xc3\xbc\xc3\x9fe, Bob\r\n"
)


def ok(what, res, want="OK"):
    typ, data = res
    print(what, typ, data)
    if typ != want:
        sys.exit(f"{what}: {typ} {data}")
    return data


def main():
    m = imaplib.IMAP4("127.0.0.1", 143, timeout=20)
    ok("CAPABILITY", m.capability())
    ok("LOGIN", m.login("bob", "secret"))
    ok("LIST", m.list())
    ok("SELECT", m.select("INBOX"))
    data = ok("FETCH", m.fetch("1:3", "(UID FLAGS RFC822.SIZE BODY.PEEK[])"))
    if sum(1 for d in data if isinstance(d, tuple)) != 3:
        sys.exit("want three bodies")
    ok("SEARCH", m.search(None, "UNSEEN"))
    ok("STORE", m.store("1", "+FLAGS", "(\\Seen)"))
    ok("CREATE", m.create("Archive"))
    ok("COPY", m.copy("1", "Archive"))
    ok("UID MOVE", m.uid("MOVE", "2", "Archive"))
    ok("CREATE", m.create("Scratch"))
    ok("RENAME", m.rename("Scratch", "Projects"))
    ok("DELETE", m.delete("Projects"))
    ok("APPEND", m.append("INBOX", "(\\Seen)", '"01-Mar-2024 10:00:00 +0100"', APPENDED))
    ok("NOOP", m.noop())
    ok("STORE", m.store("1", "+FLAGS", "(\\Deleted)"))
    ok("EXPUNGE", m.expunge())
    ok("EXAMINE", m.select("Archive", readonly=True))
    ok("FETCH", m.fetch("1:*", "(UID FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])"))
    ok("LOGOUT", m.logout(), want="BYE")


if __name__ == "__main__":
    main()
