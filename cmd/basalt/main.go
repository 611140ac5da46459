// Command basalt is the Basalt mail server: `basalt serve` runs the daemon,
// and the other subcommands administer its store directly (domains, users,
// aliases, migrations).
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/term"

	"basalt/server"
	"basalt/session"
	"basalt/store"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

const usage = `usage: basalt COMMAND [flags]

  serve                                  run the daemon
  migrate                                apply database migrations and exit
  version                                print the version
  domain add|del NAME | domain list      manage local domains
  user add ADDRESS [--password-stdin] [--secure] [--quota BYTES] [--plan NAME]
  user passwd ADDRESS [--password-stdin] [--reset-keys]
  user del ADDRESS | user show ADDRESS | user list [DOMAIN]
  alias add PATTERN TARGET | alias del PATTERN [TARGET] | alias list [DOMAIN]
  plan set NAME [--quota B] [--max-recv B] [--max-send B] [--daily-send B] [--daily-recv B] [--daily-recv-ip B]
  plan list                              limit classes for users (0 = server default)
  admin add NAME | admin list            admins of the REST API (/api/v1)
  admin grant NAME SCOPE... [--domain D]...
  admin key NAME [--scopes S,S] [--domain D]... [--network CIDR]... [--expires RFC3339|DAYSd] [--name LABEL]
                                         prints the new key's secret, which is shown this once

Every command takes -config FILE and -data DIR, anywhere after its words.
`

// exitError carries the exit status a failure should end with.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }

func usageErr(format string, a ...any) error {
	return &exitError{code: 2, err: fmt.Errorf(format, a...)}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdin, os.Stdout)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "basalt:", err)
		var ee *exitError
		if errors.As(err, &ee) {
			if ee.code == 2 {
				fmt.Fprint(os.Stderr, "\n"+usage)
			}
			os.Exit(ee.code)
		}
		os.Exit(1)
	}
}

// opts are the flags every subcommand accepts.
type opts struct {
	config, data  string
	passwordStdin bool
	secure        bool
	quota         string
	plan          string
	resetKeys     bool
	limits        map[string]*int64
	// admin grant and admin key.
	domains, networks listFlag
	scopes, expires   string
	name              string
}

// listFlag is a flag that may be given several times.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

// limitFlags are plan set's flags, by the Limits field they set.
var limitFlags = []struct{ flag, usage string }{
	{"max-recv", "largest message received, bytes"},
	{"max-send", "largest message sent, bytes"},
	{"daily-send", "bytes sent per day"},
	{"daily-recv", "bytes received per day"},
	{"daily-recv-ip", "bytes received per day from one IP"},
}

// parse reads flags interspersed with positional words, so that
// `user add -data D alice@x` and `user add alice@x -data D` both work.
func parse(args []string) (opts, []string, error) {
	var o opts
	fs := flag.NewFlagSet("basalt", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&o.config, "config", "", "configuration file")
	fs.StringVar(&o.data, "data", "", "data directory")
	fs.BoolVar(&o.passwordStdin, "password-stdin", false, "read the password from standard input")
	fs.BoolVar(&o.secure, "secure", false, "encrypt the user's mail at rest")
	fs.StringVar(&o.quota, "quota", "", "quota in bytes")
	fs.StringVar(&o.plan, "plan", "", "plan name")
	fs.BoolVar(&o.resetKeys, "reset-keys", false, "replace a secure user's keys (old mail becomes unreadable)")
	fs.Var(&o.domains, "domain", "a domain the grant or key is limited to (repeatable)")
	fs.Var(&o.networks, "network", "a network (CIDR) the key is valid from (repeatable)")
	fs.StringVar(&o.scopes, "scopes", "", "the key's scopes, comma-separated (default: its admin's)")
	fs.StringVar(&o.expires, "expires", "", "when the key expires: RFC 3339, or a number of days (30d)")
	fs.StringVar(&o.name, "name", "", "a label for the key")
	o.limits = map[string]*int64{}
	for _, l := range limitFlags {
		o.limits[l.flag] = fs.Int64(l.flag, 0, l.usage)
	}
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return o, nil, usageErr("%v", err)
	}
	return o, pos, nil
}

// parseInterspersed parses flags wherever they stand among the positional
// arguments (the standard flag package stops at the first of those), so
// `user add alice@x -data D` works; after "--" everything
// is positional.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		if args[0] == "--" {
			return append(pos, args[1:]...), nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

func run(ctx context.Context, args []string, stdin io.Reader, stdout io.Writer) error {
	if len(args) == 0 {
		return usageErr("no command given")
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "-h", "--help", "help":
		fmt.Fprint(stdout, usage)
		return nil
	case "version":
		fmt.Fprintln(stdout, "basalt", version)
		return nil
	case "signup": // signup.go
		return signupCommand(ctx, rest, stdout)
	}
	switch cmd {
	case "serve", "migrate", "domain", "user", "alias", "plan", "admin":
	default:
		// Before any configuration is read or database opened.
		return usageErr("unknown command %q", cmd)
	}
	o, pos, err := parse(rest)
	if err != nil {
		return err
	}
	cfg, err := server.LoadConfig(o.config, o.data)
	if err != nil {
		return err
	}
	if cmd == "serve" {
		if len(pos) > 0 {
			return usageErr("serve takes no arguments")
		}
		return server.Run(ctx, cfg)
	}
	// Administrative commands log only warnings, so their output stays
	// what scripts read.
	if cfg.Log.Level == "" {
		cfg.Log.Level = "warn"
	}
	svc, err := server.Open(ctx, cfg, cfg.NewLogger())
	if err != nil {
		return err
	}
	defer svc.Close()
	a := &admin{svc: svc, o: o, in: bufio.NewReader(stdin), out: stdout, stdin: stdin}
	switch cmd {
	case "migrate":
		v, err := svc.DB.Version(ctx)
		if err == nil {
			fmt.Fprintf(stdout, "schema version %d\n", v)
		}
		return err
	case "domain":
		return a.domain(ctx, pos)
	case "user":
		return a.user(ctx, pos)
	case "alias":
		return a.alias(ctx, pos)
	case "admin":
		return a.admins(store.WithActor(ctx, store.Actor{Name: "cli"}), pos)
	default: // "plan"; the list above is checked before anything is opened
		return a.plans(ctx, pos)
	}
}

type admin struct {
	svc   *server.Services
	o     opts
	in    *bufio.Reader
	stdin io.Reader
	out   io.Writer
}

func words(pos []string, min, max int, what string) error {
	if len(pos) < min || len(pos) > max {
		return usageErr("%s", what)
	}
	return nil
}

func (a *admin) domain(ctx context.Context, pos []string) error {
	if len(pos) == 0 {
		return usageErr("domain: add, del or list")
	}
	st := a.svc.Store
	switch pos[0] {
	case "add":
		if err := words(pos, 2, 2, "domain add NAME"); err != nil {
			return err
		}
		_, err := st.AddDomain(ctx, pos[1])
		return err
	case "del":
		if err := words(pos, 2, 2, "domain del NAME"); err != nil {
			return err
		}
		return st.DeleteDomain(ctx, pos[1])
	case "list":
		if err := words(pos, 1, 1, "domain list"); err != nil {
			return err
		}
		ds, err := st.Domains(ctx)
		if err != nil {
			return err
		}
		for _, d := range ds {
			fmt.Fprintln(a.out, d.Name)
		}
		return nil
	}
	return usageErr("domain: unknown action %q", pos[0])
}

func (a *admin) user(ctx context.Context, pos []string) error {
	if len(pos) == 0 {
		return usageErr("user: add, passwd, del, list or show")
	}
	st := a.svc.Store
	switch pos[0] {
	case "add":
		if err := words(pos, 2, 2, "user add ADDRESS"); err != nil {
			return err
		}
		nu := session.NewUser{Address: pos[1], Secure: a.o.secure, Plan: a.o.plan}
		if a.o.quota != "" {
			q, err := strconv.ParseInt(a.o.quota, 10, 64)
			if err != nil || q < 0 {
				return usageErr("--quota: %q is not a number of bytes", a.o.quota)
			}
			nu.Overrides.QuotaBytes = &q
		}
		pw, err := a.password("Password: ")
		if err != nil {
			return err
		}
		nu.Password = pw
		_, err = a.svc.Session.CreateUser(ctx, nu)
		return err
	case "passwd":
		if err := words(pos, 2, 2, "user passwd ADDRESS"); err != nil {
			return err
		}
		u, err := st.UserByAddress(ctx, pos[1])
		if err != nil {
			return err
		}
		if u.Secure && !a.o.resetKeys {
			// The key can be re-sealed only with the old password.
			old, err := a.password("Current password: ")
			if err != nil {
				return err
			}
			pw, err := a.password("New password: ")
			if err != nil {
				return err
			}
			return a.svc.Session.ChangePassword(ctx, u.ID, old, pw)
		}
		pw, err := a.password("New password: ")
		if err != nil {
			return err
		}
		return a.svc.Session.ResetPassword(ctx, u.ID, pw, a.o.resetKeys)
	case "del":
		if err := words(pos, 2, 2, "user del ADDRESS"); err != nil {
			return err
		}
		u, err := st.UserByAddress(ctx, pos[1])
		if err != nil {
			return err
		}
		return st.DeleteUser(ctx, u.ID)
	case "list":
		if err := words(pos, 1, 2, "user list [DOMAIN]"); err != nil {
			return err
		}
		q := store.UserQuery{Limit: 1000}
		if len(pos) == 2 {
			q.Domain = pos[1]
		}
		for {
			us, err := st.Users(ctx, q)
			if err != nil {
				return err
			}
			for _, u := range us {
				fmt.Fprintln(a.out, u.Address)
			}
			if len(us) < q.Limit {
				return nil
			}
			q.After = us[len(us)-1].Address
		}
	case "show":
		if err := words(pos, 2, 2, "user show ADDRESS"); err != nil {
			return err
		}
		return a.show(ctx, pos[1])
	}
	return usageErr("user: unknown action %q", pos[0])
}

func (a *admin) show(ctx context.Context, addr string) error {
	st := a.svc.Store
	u, err := st.UserByAddress(ctx, addr)
	if err != nil {
		return err
	}
	lim, err := st.Limits(ctx, u)
	if err != nil {
		return err
	}
	ids, err := st.Identifiers(ctx, u.ID)
	if err != nil {
		return err
	}
	mbs, err := st.Account(u.ID, nil).Mailboxes(ctx)
	if err != nil {
		return err
	}
	p := func(k string, v any) { fmt.Fprintf(a.out, "%-16s %v\n", k+":", v) }
	p("address", u.Address)
	p("id", u.ID)
	p("secure", u.Secure)
	p("logins", strings.Join(ids, " "))
	p("messages", u.MessageCount)
	p("used bytes", u.UsedBytes)
	p("quota bytes", limitText(lim.QuotaBytes))
	p("max recv size", limitText(lim.MaxRecvSize))
	p("max send size", limitText(lim.MaxSendSize))
	p("daily recv", limitText(lim.DailyRecvBytes))
	p("daily send", limitText(lim.DailySendBytes))
	if u.Locked(time.Now()) {
		p("locked until", time.Unix(u.LockedUntil, 0).UTC().Format(time.RFC3339)+" "+u.LockReason)
	}
	p("created", time.Unix(u.CreatedAt, 0).UTC().Format(time.RFC3339))
	sort.Slice(mbs, func(i, j int) bool { return mbs[i].Name < mbs[j].Name })
	for _, m := range mbs {
		fmt.Fprintf(a.out, "mailbox          %s (%d messages, %d unseen, %d bytes)\n", m.Name, m.Messages, m.Unseen, m.Size)
	}
	return nil
}

func limitText(v int64) string {
	if v == 0 {
		return "unlimited"
	}
	return strconv.FormatInt(v, 10)
}

func (a *admin) alias(ctx context.Context, pos []string) error {
	if len(pos) == 0 {
		return usageErr("alias: add, del or list")
	}
	st := a.svc.Store
	switch pos[0] {
	case "add":
		if err := words(pos, 3, 3, "alias add PATTERN TARGET"); err != nil {
			return err
		}
		_, err := st.AddAlias(ctx, pos[1], pos[2])
		return err
	case "del":
		if err := words(pos, 2, 3, "alias del PATTERN [TARGET]"); err != nil {
			return err
		}
		target := ""
		if len(pos) == 3 {
			target = pos[2]
		}
		return st.DeleteAlias(ctx, pos[1], target)
	case "list":
		if err := words(pos, 1, 2, "alias list [DOMAIN]"); err != nil {
			return err
		}
		domain := ""
		if len(pos) == 2 {
			domain = pos[1]
		}
		as, err := st.Aliases(ctx, domain)
		if err != nil {
			return err
		}
		for _, al := range as {
			fmt.Fprintf(a.out, "%s %s\n", al.Pattern, al.Target)
		}
		return nil
	}
	return usageErr("alias: unknown action %q", pos[0])
}

func (a *admin) plans(ctx context.Context, pos []string) error {
	if len(pos) == 0 {
		return usageErr("plan: set or list")
	}
	st := a.svc.Store
	switch pos[0] {
	case "set":
		if err := words(pos, 2, 2, "plan set NAME [limit flags]"); err != nil {
			return err
		}
		var quota int64
		if a.o.quota != "" {
			q, err := strconv.ParseInt(a.o.quota, 10, 64)
			if err != nil {
				return usageErr("--quota: %q is not a number of bytes", a.o.quota)
			}
			quota = q
		}
		_, err := st.SavePlan(ctx, pos[1], store.Limits{
			QuotaBytes: quota, MaxRecvSize: *a.o.limits["max-recv"], MaxSendSize: *a.o.limits["max-send"],
			DailySendBytes: *a.o.limits["daily-send"], DailyRecvBytes: *a.o.limits["daily-recv"],
			DailyRecvPerIP: *a.o.limits["daily-recv-ip"],
		})
		return err
	case "list":
		if err := words(pos, 1, 1, "plan list"); err != nil {
			return err
		}
		ps, err := st.Plans(ctx)
		if err != nil {
			return err
		}
		for _, p := range ps {
			fmt.Fprintf(a.out, "%s quota=%d max-recv=%d max-send=%d daily-send=%d daily-recv=%d daily-recv-ip=%d\n", p.Name,
				p.QuotaBytes, p.MaxRecvSize, p.MaxSendSize, p.DailySendBytes, p.DailyRecvBytes, p.DailyRecvPerIP)
		}
		return nil
	}
	return usageErr("plan: unknown action %q", pos[0])
}

// password reads one password: a line of standard input with
// --password-stdin, else a prompt on the terminal without echo.
func (a *admin) password(prompt string) (string, error) {
	if !a.o.passwordStdin {
		f, ok := a.stdin.(*os.File)
		if !ok || !term.IsTerminal(int(f.Fd())) {
			return "", usageErr("no terminal to ask for a password on: use --password-stdin")
		}
		fmt.Fprint(os.Stderr, prompt)
		b, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(os.Stderr)
		if err != nil {
			return "", fmt.Errorf("read password: %w", err)
		}
		return string(b), nil
	}
	line, err := a.in.ReadString('\n')
	if err != nil && !(errors.Is(err, io.EOF) && line != "") {
		return "", fmt.Errorf("read password from standard input: %w", err)
	}
	return strings.TrimRight(line, "\r\n"), nil
}
