"""Python's imaplib against what an IMAP conformance suite found wrong
(issue 9): ID, LIST patterns of any ASTRING-CHARs, LIST-EXTENDED
subscriptions and LSUB, COPY/MOVE into the selected mailbox, partial
BINARY, source routes in ENVELOPE and names refused by CREATE. Usage:

    imaplib_conformance.py HOST PORT USER PASSWORD

The server must trust loopback for plaintext login. It raises (and exits
non-zero) on the first answer it does not expect and prints "ALL OK".
"""
import imaplib
import sys

host, port, user, password = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]


def cmd(M, name, *args, want="OK"):
    typ, data = M._simple_command(name, *args)
    if typ != want:
        raise SystemExit("%s %s: %s %r" % (name, " ".join(args), typ, data))
    return data


def untagged(M, name):
    return [d if isinstance(d, bytes) else b"".join(x if isinstance(x, bytes) else x[0] + x[1] for x in d)
            for d in M.untagged_responses.pop(name, [])]


def expect(cond, what):
    if not cond:
        raise SystemExit("check failed: " + what)


M = imaplib.IMAP4(host, port)
# ID before login, and after (RFC 2971).
imaplib.Commands["ID"] = ("NONAUTH", "AUTH", "SELECTED")
cmd(M, "ID", '("name" "imaplib")')
expect(untagged(M, "ID") == [b'("name" "Basalt")'], "ID before login")
M.login(user, password)
cmd(M, "ID", "NIL")
expect(untagged(M, "ID") == [b'("name" "Basalt")'], "ID")

# A LIST pattern of every ASTRING-CHAR.
M.untagged_responses.pop("LIST", None)
cmd(M, "LIST", '""', "!#$&'+,-.0123456789:;<=>?@^_`|}%*")
expect(untagged(M, "LIST") == [], "LIST of ASTRING-CHARs")

# Names refused: LIST wildcards, "." and "..".
for name in ['"*"', '"%"', '"."', '"a/.."']:
    typ, data = M.create(name)
    expect(typ == "NO" and b"[CANNOT]" in data[0], "CREATE %s: %s %r" % (name, typ, data))

# Subscriptions: LSUB's \Noselect parent, a gone mailbox \NonExistent,
# RECURSIVEMATCH's CHILDINFO.
for name in ["Fruit/Banana", "Fruit/Peach"]:
    M.create(name)
M.unsubscribe("Fruit")
M.delete("Fruit/Peach")
typ, data = M.lsub('""', "Fruit%")
expect(data == [b'(\\Noselect) "/" "Fruit"'], "LSUB Fruit%%: %r" % data)
M.untagged_responses.pop("LIST", None)
cmd(M, "LIST", "(SUBSCRIBED)", '""', '"Fruit/*"')
got = untagged(M, "LIST")
expect(got == [b'(\\HasNoChildren \\Subscribed) "/" "Fruit/Banana"', b'(\\NonExistent \\Subscribed) "/" "Fruit/Peach"'], "LIST (SUBSCRIBED): %r" % got)
cmd(M, "LIST", "(SUBSCRIBED RECURSIVEMATCH)", '""', '"Fruit"', "RETURN", "(CHILDREN)")
got = untagged(M, "LIST")
expect(got == [b'(\\HasChildren) "/" "Fruit" (CHILDINFO ("SUBSCRIBED"))'], "RECURSIVEMATCH: %r" % got)

# COPY and MOVE into the selected mailbox (RFC 6851 3.3).
msg = (b"From: Bob <@hop:bob@example.org>\r\nTo: alice@example.org\r\nSubject: conformance\r\n"
       b"MIME-Version: 1.0\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\naGVsbG8gd29ybGQ=\r\n")
M.append("INBOX", None, None, msg)
M.select("INBOX")
typ, data = M.copy("1", "INBOX")
expect(typ == "OK" and b"[COPYUID " in data[0], "COPY into INBOX: %r" % data)
cmd(M, "MOVE", "1", "INBOX")
expect(any(b"COPYUID" in d for d in M.untagged_responses.pop("OK", [])), "MOVE's COPYUID")
typ, data = M.uid("FETCH", "1:*", "(UID)")
expect([d for d in data if d] == [b"1 (UID 2)", b"2 (UID 3)"], "UIDs after COPY and MOVE: %r" % data)

# Partial BINARY over the decoded content; the source route.
typ, data = M.fetch("1", "(BINARY.PEEK[1]<6.5> ENVELOPE)")
expect(data[0][0].endswith(b"BINARY[1]<6> ~{5}") and data[0][1] == b"world", "BINARY partial: %r" % data)
expect(b'ENVELOPE (NIL "conformance" (("Bob" "@hop" "bob" "example.org"))' in data[0][0], "ENVELOPE route: %r" % data)
M.logout()
print("ALL OK")
