"""Python's imaplib in another user's shared folder. Usage:

    imaplib_shared.py HOST PORT USER PASSWORD CAFILE FOLDER

FOLDER is the shared folder's full name ("Other Users/<owner>/<name>"),
holding at least one message the user has not seen. The user lists it,
reads a message (which sets the user's own \\Seen), flags it, and copies
it into INBOX. Raises on the first answer it does not expect and prints
"ALL OK" at the end.
"""
import imaplib
import ssl
import sys

host, port, user, password, cafile, folder = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6]


def ok(res, what):
    typ, data = res
    if typ != "OK":
        raise SystemExit("%s: %s %r" % (what, typ, data))
    return data


def expect(cond, what):
    if not cond:
        raise SystemExit("check failed: " + what)


def flat(data):
    out = b""
    for d in data:
        if isinstance(d, tuple):
            out += d[0] + d[1]
        elif d:
            out += d
    return out.decode("utf-8", "replace")


def quoted(name):
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


ctx = ssl.create_default_context(cafile=cafile)
ctx.check_hostname = False  # the test certificate names imap.test

M = imaplib.IMAP4(host, port)
ok(M.starttls(ssl_context=ctx), "STARTTLS")
ok(M.login(user, password), "LOGIN")
ns = flat(ok(M.namespace(), "NAMESPACE"))
expect('(("Other Users/" "/"))' in ns and '(("Shared Folders/" "/"))' in ns, "NAMESPACE: " + ns)

# The folder is listed with the levels above it, which cannot be selected.
lst = flat(ok(M.list('""', '"*"'), "LIST"))
expect(quoted(folder) in lst, "LIST lacks the shared folder: " + lst)
expect('(\\Noselect \\HasChildren) "/" "Other Users"' in lst, "LIST lacks the Other Users level: " + lst)
top = flat(ok(M.list('""', '"%"'), "LIST %"))
expect(quoted(folder) not in top, "LIST % went below the top level: " + top)
st = flat(ok(M.status(quoted(folder), "(MESSAGES UNSEEN)"), "STATUS"))
expect("UNSEEN 1" in st, "STATUS: " + st)

typ, data = M.select(quoted(folder))
ok((typ, data), "SELECT")
expect(int(data[0]) >= 1, "EXISTS %r" % data)
unseen = flat(ok(M.search(None, "UNSEEN"), "SEARCH UNSEEN")).split()
expect(unseen == ["1"], "SEARCH UNSEEN: %r" % unseen)
body = flat(ok(M.fetch("1", "(RFC822)"), "FETCH RFC822"))
expect("Subject: shared with alice" in body and "\\Seen" in body, "FETCH: " + body)
expect(flat(ok(M.search(None, "UNSEEN"), "SEARCH UNSEEN after reading")).split() == [], "still unseen")
r = flat(ok(M.store("1", "+FLAGS", "(\\Flagged)"), "STORE"))
expect("\\Flagged" in r, "STORE: " + r)
typ, data = M.copy("1", "INBOX")
ok((typ, data), "COPY")
expect(b"COPYUID" in data[0], "COPYUID: %r" % data)
typ, data = M.expunge()
expect(typ == "NO" and b"NOPERM" in data[0], "EXPUNGE without the e right: %s %r" % (typ, data))
ok(M.close(), "CLOSE")
ok(M.select("INBOX"), "SELECT INBOX")
f = flat(ok(M.fetch("1:*", "(FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])"), "FETCH INBOX"))
expect("shared with alice" in f, "INBOX: " + f)
M.logout()
print("ALL OK")
