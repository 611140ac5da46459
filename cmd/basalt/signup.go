package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"basalt/server"
	"basalt/store"
	"basalt/store/signup"
)

const signupUsage = `usage: basalt signup ACTION [flags]

  ban NETWORK [--reason TEXT] [--days N]   refuse registrations from a network
                                          (CIDR, or one address; N days, 0 = for good)
  unban NETWORK|ID                         lift a ban
  bans                                     list the bans in force
  invite [--uses N] [--note TEXT] [--days N]   make an invite code (printed)
  uninvite CODE                            withdraw an invite code
  invites                                  list the invite codes still good
  pending                                  list the accounts waiting for approval
  approve ADDRESS|ID                       let a waiting account log in

Every action takes -config FILE and -data DIR too.
`

// signupOpts are signup's flags.
type signupOpts struct {
	config, data, reason, note string
	days, uses                 int
}

// parseSignup reads signup's flags among its words (as parse does for
// the other commands).
func parseSignup(args []string) (signupOpts, []string, error) {
	o := signupOpts{uses: 1}
	fs := flag.NewFlagSet("basalt signup", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&o.config, "config", "", "configuration file")
	fs.StringVar(&o.data, "data", "", "data directory")
	fs.StringVar(&o.reason, "reason", "", "why the network is banned")
	fs.StringVar(&o.note, "note", "", "what the invite code is for")
	fs.IntVar(&o.days, "days", 0, "days the ban or invite code lasts (0: no end)")
	fs.IntVar(&o.uses, "uses", 1, "registrations the invite code is good for")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return o, nil, signupErr("%v", err)
	}
	return o, pos, nil
}

// signupErr is a usage error that shows signup's own usage.
func signupErr(format string, a ...any) error {
	return &exitError{code: 1, err: fmt.Errorf(format+"\n\n"+signupUsage, a...)}
}

// signupCommand manages what guards the site's registration: banned
// networks, invite codes, accounts waiting for approval (store/signup;
// the same the admin API manages).
func signupCommand(ctx context.Context, args []string, stdout io.Writer) error {
	o, pos, err := parseSignup(args)
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		return signupErr("signup: no action given")
	}
	if o.days < 0 || o.uses < 1 {
		return signupErr("signup: --days is 0 or more, --uses 1 or more")
	}
	argc := map[string]int{"ban": 2, "unban": 2, "bans": 1, "invite": 1, "uninvite": 2, "invites": 1, "pending": 1, "approve": 2}
	n, ok := argc[pos[0]]
	if !ok {
		return signupErr("signup: unknown action %q", pos[0])
	}
	if len(pos) != n {
		return signupErr("signup %s: wrong number of arguments", pos[0])
	}
	cfg, err := server.LoadConfig(o.config, o.data)
	if err != nil {
		return err
	}
	if cfg.Log.Level == "" {
		cfg.Log.Level = "warn"
	}
	svc, err := server.Open(ctx, cfg, cfg.NewLogger())
	if err != nil {
		return err
	}
	defer svc.Close()
	g := signup.New(svc.Store)
	var until time.Time
	if o.days > 0 {
		until = time.Now().Add(time.Duration(o.days) * 24 * time.Hour)
	}
	switch pos[0] {
	case "ban":
		p, err := parseNetwork(pos[1])
		if err != nil {
			return signupErr("signup ban: %v", err)
		}
		b, err := g.Ban(ctx, p, o.reason, until)
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout, formatBan(b))
		return nil
	case "unban":
		return unban(ctx, g, pos[1])
	case "bans":
		bs, err := g.Bans(ctx)
		if err != nil {
			return err
		}
		for _, b := range bs {
			fmt.Fprintln(stdout, formatBan(b))
		}
		return nil
	case "invite":
		inv, err := g.CreateInvite(ctx, o.uses, o.note, until)
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout, inv.Code)
		return nil
	case "uninvite":
		return g.DeleteInvite(ctx, pos[1])
	case "invites":
		is, err := g.Invites(ctx)
		if err != nil {
			return err
		}
		for _, i := range is {
			fmt.Fprintf(stdout, "%s uses=%d expires=%s note=%q\n", i.Code, i.UsesLeft, when(i.Expires), i.Note)
		}
		return nil
	case "pending":
		us, err := g.Pending(ctx)
		if err != nil {
			return err
		}
		for _, u := range us {
			fmt.Fprintf(stdout, "%d %s\n", u.ID, u.Address)
		}
		return nil
	default: // "approve"; argc above lists every action
		id, err := userID(ctx, svc.Store, pos[1])
		if err != nil {
			return err
		}
		return g.Approve(ctx, id)
	}
}

// parseNetwork reads a CIDR network, or one address as the network of
// that address alone.
func parseNetwork(s string) (netip.Prefix, error) {
	if p, err := netip.ParsePrefix(s); err == nil {
		return p, nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is neither a network (192.0.2.0/24, 2001:db8::/48) nor an address", s)
	}
	a = a.Unmap().WithZone("")
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// unban lifts the ban with the id, or on the network, given.
func unban(ctx context.Context, g *signup.Signup, arg string) error {
	if id, err := strconv.ParseInt(arg, 10, 64); err == nil {
		return g.Unban(ctx, id)
	}
	p, err := parseNetwork(arg)
	if err != nil {
		return signupErr("signup unban: %v", err)
	}
	bs, err := g.Bans(ctx)
	if err != nil {
		return err
	}
	for _, b := range bs {
		if b.Network == signup.Canonical(p).String() {
			return g.Unban(ctx, b.ID)
		}
	}
	return fmt.Errorf("unban %s: %w", arg, store.ErrNotFound)
}

// userID is the id of the user an address or a number names.
func userID(ctx context.Context, st *store.Store, arg string) (int64, error) {
	if id, err := strconv.ParseInt(arg, 10, 64); err == nil {
		return id, nil
	}
	u, err := st.UserByAddress(ctx, strings.ToLower(arg))
	if err != nil {
		return 0, err
	}
	return u.ID, nil
}

func formatBan(b signup.Ban) string {
	return fmt.Sprintf("%d %s expires=%s reason=%q", b.ID, b.Network, when(b.Expires), b.Reason)
}

// when spells a Unix time (0: never).
func when(t int64) string {
	if t == 0 {
		return "never"
	}
	return time.Unix(t, 0).UTC().Format(time.RFC3339)
}
