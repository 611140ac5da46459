"""A scripted IMAP session with Python's imaplib covering every command
Basalt's IMAP server implements. Usage:

    imaplib_session.py HOST PORT USER PASSWORD CAFILE

It raises (and exits non-zero) on the first answer it does not expect and
prints "ALL OK" at the end.
"""
import imaplib
import re
import socket
import ssl
import sys
import time

host, port, user, password, cafile = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]


def ok(res, what):
    typ, data = res
    if typ != "OK":
        raise SystemExit("%s: %s %r" % (what, typ, data))
    return data


def no(res, what):
    typ, data = res
    if typ == "OK":
        raise SystemExit("%s: unexpectedly OK %r" % (what, data))
    return data


def bad(fn, what):
    try:
        typ, data = fn()
    except imaplib.IMAP4.error as e:
        return str(e)
    raise SystemExit("%s: got %s %r, want BAD" % (what, typ, data))


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


ctx = ssl.create_default_context(cafile=cafile)
ctx.check_hostname = False  # the test certificate names imap.test

M = imaplib.IMAP4(host, port)
expect("IMAP4rev2" in M.capabilities or "IMAP4REV2" in M.capabilities, "IMAP4rev2 in the greeting")
ok(M.noop(), "NOOP")
expect("LOGINDISABLED" in M.capabilities and "STARTTLS" in M.capabilities, "LOGINDISABLED before STARTTLS: %r" % (M.capabilities,))
ok(M.starttls(ssl_context=ctx), "STARTTLS")
# No second greeting after STARTTLS (RFC 9051 6.2.1).
for r in M.untagged_responses.get("OK", []):
    expect(b"ready" not in r, "a greeting after STARTTLS: %r" % r)
expect("STARTTLS" not in M.capabilities and "LOGINDISABLED" not in M.capabilities and "AUTH=CRAM-MD5" in M.capabilities,
       "capabilities after STARTTLS: %r" % (M.capabilities,))
ok(M.capability(), "CAPABILITY")
# AUTHENTICATE CRAM-MD5 (RFC 2195) and LOGIN, then UNAUTHENTICATE
# (RFC 8437) back to the not authenticated state each time.
imaplib.Commands["UNAUTHENTICATE"] = ("AUTH", "SELECTED")
ok(M.login_cram_md5(user, password), "AUTHENTICATE CRAM-MD5")
ok(M._simple_command("UNAUTHENTICATE"), "UNAUTHENTICATE after CRAM-MD5")
M.state = "NONAUTH"
steps = iter([user.encode(), password.encode()])
ok(M.authenticate("LOGIN", lambda challenge: next(steps)), "AUTHENTICATE LOGIN")
ok(M._simple_command("UNAUTHENTICATE"), "UNAUTHENTICATE after LOGIN")
M.state = "NONAUTH"
ok(M.login(user, password), "LOGIN")
caps = flat(ok(M.capability(), "CAPABILITY after login"))
# imaplib keeps the capabilities it saw before login.
M.capabilities = tuple(caps.upper().split())
for c in ["IDLE", "MOVE", "UIDPLUS", "NAMESPACE", "ESEARCH", "SEARCHRES", "SPECIAL-USE", "CREATE-SPECIAL-USE",
          "LIST-EXTENDED", "LIST-STATUS", "STATUS=SIZE", "CHILDREN", "ENABLE", "LITERAL+", "UNSELECT", "UNAUTHENTICATE",
          "BINARY", "APPENDLIMIT="]:
    expect(c in caps, c + " advertised")
limit = int(re.search(r"APPENDLIMIT=(\d+)", caps).group(1))
ns = flat(ok(M.namespace(), "NAMESPACE"))
expect('(("" "/"))' in ns, "personal namespace: " + ns)

# Mailboxes.
ok(M.create("Py/Sub"), "CREATE with parent")
ok(M._simple_command("CREATE", '"Py Sent"', "(USE (\\Sent))"), "CREATE special-use")
no(M.create("Py"), "CREATE existing")
lst = flat(ok(M.list('""', "Py*"), "LIST"))
expect('"Py/Sub"' in lst and "\\HasChildren" in lst and "\\Sent" in lst, "LIST: " + lst)
ok(M.subscribe("Py/Sub"), "SUBSCRIBE")
ok(M.unsubscribe("Py"), "UNSUBSCRIBE")
lsub = flat(ok(M.lsub('""', "Py*"), "LSUB"))
expect("Py/Sub" in lsub and '"Py"' not in lsub, "LSUB: " + lsub)
typ, data = M._simple_command("LIST", '""', '"%"', "RETURN", "(STATUS (MESSAGES SIZE))")
ok((typ, data), "LIST-STATUS")
st = flat(M.untagged_responses.pop("STATUS", []))
expect("MESSAGES" in st and "SIZE" in st, "LIST-STATUS: " + st)
# LIST-EXTENDED (RFC 5258): selection and return options.
# RECURSIVEMATCH: "Py" has CHILDINFO only where its subscribed child is
# not matched itself (RFC 5258 section 5, example 9).
M.untagged_responses.pop("LIST", None)
ok(M._simple_command("LIST", "(SUBSCRIBED RECURSIVEMATCH)", '""', '"Py*"'), "LIST (SUBSCRIBED RECURSIVEMATCH)")
le = flat(M.untagged_responses.pop("LIST", []))
expect('"Py/Sub"' in le and "\\Subscribed" in le and '"Py"' not in le and "CHILDINFO" not in le, "LIST (SUBSCRIBED RECURSIVEMATCH) Py*: " + le)
ok(M._simple_command("LIST", "(SUBSCRIBED RECURSIVEMATCH)", '""', '"Py%"'), "LIST (SUBSCRIBED RECURSIVEMATCH)")
le = flat(M.untagged_responses.pop("LIST", []))
expect('(\\HasChildren) "/" "Py" (CHILDINFO ("SUBSCRIBED"))' in le and '"Py/Sub"' not in le, "LIST (SUBSCRIBED RECURSIVEMATCH) Py%: " + le)
ok(M._simple_command("LIST", "(SPECIAL-USE)", '""', "*", "RETURN", "(CHILDREN)"), "LIST (SPECIAL-USE)")
le = flat(M.untagged_responses.pop("LIST", []))
expect('"Py Sent"' in le and "INBOX" not in le and "Children" in le, "LIST (SPECIAL-USE): " + le)
ok(M.rename("Py/Sub", "Py/Renamed"), "RENAME")
st = flat(ok(M.status("Py/Renamed", "(MESSAGES UIDNEXT UIDVALIDITY UNSEEN SIZE APPENDLIMIT RECENT)"), "STATUS"))
expect("MESSAGES 0" in st and "SIZE 0" in st and "APPENDLIMIT %d" % limit in st, "STATUS: " + st)

# APPEND (APPENDUID), SELECT, FETCH, STORE, SEARCH.
msg = b"From: Py <py@example.org>\r\nTo: %s\r\nSubject: from imaplib\r\nDate: Mon, 02 Nov 2026 10:00:00 +0000\r\n\r\nHello from Python.\r\n" % user.encode()
typ, data = M.append("INBOX", "(\\Flagged)", imaplib.Time2Internaldate(time.time()), msg)
ok((typ, data), "APPEND")
expect(b"APPENDUID" in data[0], "APPENDUID: %r" % data)
ok(M.append("INBOX", None, None, msg.replace(b"imaplib", b"imaplib again")), "APPEND 2")
# LITERAL+ (RFC 7888): the message follows its size without waiting.
lit = msg.replace(b"imaplib", b"imaplib literal+")
tag = M._new_tag()
M.send(tag + b" APPEND Archive {%d+}\r\n" % len(lit) + lit + b"\r\n")
line = M.readline()
expect(line.startswith(tag + b" OK [APPENDUID"), "APPEND with LITERAL+: %r" % line)
# BINARY's literal8 (RFC 3516), and over APPENDLIMIT (RFC 7889).
bin8 = msg.replace(b"Hello from Python.", b"binary \x00\x01 bytes")
tag = M._new_tag()
M.send(tag + b" APPEND Archive ~{%d+}\r\n" % len(bin8) + bin8 + b"\r\n")
line = M.readline()
expect(line.startswith(tag + b" OK [APPENDUID"), "APPEND with literal8: %r" % line)
st = flat(ok(M.status("Archive", "(MESSAGES)"), "STATUS after LITERAL+ and literal8"))
expect("MESSAGES 2" in st, "STATUS Archive: " + st)
tag = M._new_tag()
M.send(tag + b" APPEND INBOX {%d}\r\n" % (limit + 1))
line = M.readline()
expect(line.startswith(tag + b" NO [TOOBIG]"), "APPEND over APPENDLIMIT: %r" % line)
typ, data = M.select("INBOX")
ok((typ, data), "SELECT")
n = int(data[0])
expect(n >= 2, "EXISTS %d" % n)
ok(M.check(), "CHECK")
# An IMAP4rev1 client (no ENABLE IMAP4rev2) gets RECENT (RFC 3501 7.3.2):
# the messages it appended are recent to it, the first to select INBOX.
expect(M.untagged_responses.get("RECENT") == [b"%d" % n], "RECENT: %r" % M.untagged_responses.get("RECENT"))
f = flat(ok(M.fetch("1:*", "(UID FLAGS RFC822.SIZE INTERNALDATE ENVELOPE BODYSTRUCTURE)"), "FETCH"))
expect("from imaplib" in f and "\\Flagged" in f and "BODYSTRUCTURE" in f, "FETCH: " + f)
f = flat(ok(M.fetch(str(n), "(BODY.PEEK[HEADER.FIELDS (SUBJECT)] BODY.PEEK[TEXT] BODY.PEEK[1]<0.5>)"), "FETCH sections"))
expect("Subject: from imaplib again" in f and "Hello" in f, "FETCH sections: " + f)
f = flat(ok(M.fetch(str(n), "(BINARY.PEEK[1] BINARY.SIZE[1])"), "FETCH BINARY"))
expect("BINARY.SIZE[1] 20" in f, "BINARY: " + f)
f = flat(ok(M.fetch(str(n), "(RFC822)"), "FETCH RFC822"))
expect("\\Seen" in f, "RFC822 sets \\Seen: " + f)
r = flat(ok(M.store(str(n), "+FLAGS", "(\\Answered $Py)"), "STORE"))
expect("\\Answered" in r and "$Py" in r, "STORE: " + r)
ok(M.store(str(n), "-FLAGS.SILENT", "($Py)"), "STORE -FLAGS.SILENT")
s = flat(ok(M.search(None, "FROM", "py@example.org", "UNANSWERED"), "SEARCH"))
expect(s.strip() == str(n - 1), "SEARCH: %r" % s)
s = flat(ok(M.uid("SEARCH", "SUBJECT", '"imaplib again"'), "UID SEARCH"))
expect(s.strip() != "", "UID SEARCH: %r" % s)
typ, data = M._simple_command("SEARCH", "RETURN", "(MIN MAX COUNT)", "ALL")
ok((typ, data), "ESEARCH")
es = flat(M.untagged_responses.pop("ESEARCH", []))
expect("COUNT %d" % n in es, "ESEARCH: " + es)
ok(M._simple_command("SEARCH", "RETURN", "(SAVE)", "FLAGGED"), "SEARCH SAVE")
f = flat(ok(M.fetch("$", "(FLAGS)"), "FETCH $"))
expect("\\Flagged" in f, "FETCH $: " + f)
f = flat(ok(M.uid("FETCH", "1:*", "(FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])"), "UID FETCH"))
expect("imaplib again" in f and "UID " in f, "UID FETCH: " + f)
r = flat(ok(M.uid("STORE", "$", "-FLAGS", "(\\Flagged)"), "UID STORE $"))
expect("\\Flagged" not in r and "UID " in r, "UID STORE $: " + r)

# COPY (COPYUID), MOVE, UID commands, EXPUNGE.
typ, data = M.copy("1", "Py/Renamed")
ok((typ, data), "COPY")
typ, data = M.uid("COPY", "1:*", "Archive")
ok((typ, data), "UID COPY")
ok(M._simple_command("MOVE", "1", '"Py Sent"'), "MOVE")
ok(M.uid("MOVE", "1:*", "Archive"), "UID MOVE")
ok(M.select("Archive"), "SELECT Archive")
ok(M.store("1:*", "+FLAGS.SILENT", "(\\Deleted)"), "STORE \\Deleted")
ok(M.uid("EXPUNGE", "1"), "UID EXPUNGE")
typ, data = M.expunge()
ok((typ, data), "EXPUNGE")
st = flat(ok(M.status("Archive", "(MESSAGES)"), "STATUS Archive"))
expect("MESSAGES 0" in st, "after EXPUNGE: " + st)
ok(M.select("Py/Renamed", readonly=True), "EXAMINE")
no(M.store("1", "+FLAGS", "(\\Seen)"), "STORE in EXAMINE")
ok(M.unselect(), "UNSELECT")
ok(M.select("Py/Renamed"), "SELECT")
ok(M.store("1", "+FLAGS", "(\\Deleted)"), "STORE")
ok(M.close(), "CLOSE")

# IDLE: another connection's APPEND reaches it.
ok(M.select("INBOX"), "SELECT for IDLE")
tag = M._new_tag()
M.send(tag + b" IDLE\r\n")
expect(M.readline().startswith(b"+"), "IDLE continuation")
N = imaplib.IMAP4(host, port)
ok(N.starttls(ssl_context=ctx), "second STARTTLS")
ok(N.authenticate("PLAIN", lambda _: b"\0" + user.encode() + b"\0" + password.encode()), "AUTHENTICATE PLAIN")
ok(N.append("INBOX", None, None, msg), "APPEND from the other connection")
M.sock.settimeout(5)
line = M.readline()
expect(re.match(rb"\* \d+ EXISTS", line) is not None, "IDLE got %r" % line)
ok(N.select("INBOX"), "SELECT from the other connection")
ok(N.store("1", "+FLAGS", "(\\Flagged)"), "STORE from the other connection")
line = M.readline()
if re.match(rb"\* \d+ RECENT", line):
    line = M.readline()
expect(re.match(rb"\* 1 FETCH \(UID \d+ FLAGS \(.*\\Flagged", line) is not None, "IDLE got %r" % line)
M.send(b"DONE\r\n")
while True:
    line = M.readline()
    if line.startswith(tag):
        expect(b" OK" in line, "IDLE end %r" % line)
        break
N.logout()

# ENABLE IMAP4rev2: SEARCH answers ESEARCH from now on. (Not earlier:
# imaplib's ENABLE UTF8=ACCEPT would put "UTF8 (" inside APPEND literals.)
ok(M.unselect(), "UNSELECT before ENABLE")
e = flat(ok(M.enable("IMAP4rev2"), "ENABLE"))
ok(M.select("INBOX"), "SELECT after ENABLE")
ok(M._simple_command("SEARCH", "ALL"), "SEARCH after ENABLE")
expect("ESEARCH" in M.untagged_responses, "ESEARCH after ENABLE IMAP4rev2: %r" % M.untagged_responses)

# Clean up, UNAUTHENTICATE, LOGOUT.
ok(M.delete("Py/Renamed"), "DELETE child")
ok(M.delete("Py"), "DELETE parent")
no(M.delete("INBOX"), "DELETE INBOX")
ok(M._simple_command("UNAUTHENTICATE"), "UNAUTHENTICATE")
bad(lambda: M._simple_command("SELECT", "INBOX"), "SELECT after UNAUTHENTICATE")
M.state = "NONAUTH"
ok(M.login(user, password), "LOGIN again")
M.logout()
print("ALL OK")
