package message

import (
	"reflect"
	"testing"
)

func TestParseAddressList(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []Address
	}{
		{"empty", "", nil},
		{"blank", "  ", nil},
		{"bare addr-spec", "alice@example.com", []Address{{Mailbox: "alice", Host: "example.com"}}},
		{"name and angle-addr", "Alice Example <alice@example.com>", []Address{{Name: "Alice Example", Mailbox: "alice", Host: "example.com"}}},
		{"quoted name with comma", `"Doe, John" <j@x.org>`, []Address{{Name: "Doe, John", Mailbox: "j", Host: "x.org"}}},
		{"quoted-pair in name", `"say \"hi\"" <q@x>`, []Address{{Name: `say "hi"`, Mailbox: "q", Host: "x"}}},
		{"comment as name", "alice@example.com (Alice Smith)", []Address{{Name: "Alice Smith", Mailbox: "alice", Host: "example.com"}}},
		{"phrase beats comment", "Alice <a@x> (work)", []Address{{Name: "Alice", Mailbox: "a", Host: "x"}}},
		{"encoded name", "=?utf-8?B?w6k=?= <e@x>", []Address{{Name: "é", Mailbox: "e", Host: "x"}}},
		{"encoded name in quotes", `"=?utf-8?Q?J=C3=B6rg?=" <j@x>`, []Address{{Name: "Jörg", Mailbox: "j", Host: "x"}}},
		{"two encoded words", "=?utf-8?Q?A?= =?utf-8?Q?B?= <ab@x>", []Address{{Name: "AB", Mailbox: "ab", Host: "x"}}},
		{"raw utf-8 name", "Jörg Müller <jm@x.de>", []Address{{Name: "Jörg Müller", Mailbox: "jm", Host: "x.de"}}},
		{"list with empty members", "a@b, , c@d,", []Address{{Mailbox: "a", Host: "b"}, {Mailbox: "c", Host: "d"}}},
		{"obsolete route", "<@r1.example,@r2.example:user@host.example>", []Address{{ADL: "@r1.example,@r2.example", Mailbox: "user", Host: "host.example"}}},
		{"route with a name", "Bob <@route:bob@x.org>", []Address{{Name: "Bob", ADL: "@route", Mailbox: "bob", Host: "x.org"}}},
		{"route without its colon", "<@route>", nil},
		{"domain literal", "user@[192.0.2.1]", []Address{{Mailbox: "user", Host: "[192.0.2.1]"}}},
		{"quoted local part", `"john doe"@example.com`, []Address{{Mailbox: "john doe", Host: "example.com"}}},
		{"unterminated angle-addr", "A <a@b, C <c@d>", []Address{{Name: "A", Mailbox: "a", Host: "b"}, {Name: "C", Mailbox: "c", Host: "d"}}},
		{"phrase without address", "John Doe", []Address{{Mailbox: "John Doe", Host: MissingHost}}},
		{"no domain", "<postmaster>", []Address{{Mailbox: "postmaster", Host: MissingHost}}},
		{"null address dropped", "<>", nil},
		{"null address with name", "Name <>", []Address{{Name: "Name", Host: MissingHost}}},
		{"empty group", "undisclosed-recipients:;", []Address{{Mailbox: "undisclosed-recipients"}, {}}},
		{"group with members", `Team: a@x, "B" <b@y>;`, []Address{{Mailbox: "Team"}, {Mailbox: "a", Host: "x"}, {Name: "B", Mailbox: "b", Host: "y"}, {}}},
		{"group then address", "G: a@x;, b@y", []Address{{Mailbox: "G"}, {Mailbox: "a", Host: "x"}, {}, {Mailbox: "b", Host: "y"}}},
		{"unterminated group", "G: a@x", []Address{{Mailbox: "G"}, {Mailbox: "a", Host: "x"}, {}}},
		{"quoted group name", `"My Group": a@x;`, []Address{{Mailbox: "My Group"}, {Mailbox: "a", Host: "x"}, {}}},
		{"nameless group keeps members only", ": a@x;", []Address{{Mailbox: "a", Host: "x"}}},
		{"stray specials", "; > a@x ,", []Address{{Mailbox: "a", Host: "x"}}},
		{"two at signs", "<a@b@c>", []Address{{Mailbox: "a@b", Host: "c"}}},
		{"nested comment", "a@x (Outer (inner) name)", []Address{{Name: "Outer (inner) name", Mailbox: "a", Host: "x"}}},
		{"stray close parenthesis", "a)b@x, c]@y", []Address{{Mailbox: "a)b", Host: "x"}, {Mailbox: "c]", Host: "y"}}},
		{"words before bare addr-spec", "John john@x", []Address{{Name: "John", Mailbox: "john", Host: "x"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := parseAddressList(tt.in)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("parseAddressList(%q) =\n%+v\nwant\n%+v", tt.in, got, tt.want)
			}
			for _, a := range got {
				if a.Host == "" && a.Name != "" {
					t.Errorf("%+v: a named address must have a host, or it reads as a group marker", a)
				}
			}
		})
	}
}
