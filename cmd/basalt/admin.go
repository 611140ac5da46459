package main

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	adminstore "basalt/store/admin"
)

// admins is `basalt admin`: the REST API's first admins and keys. It acts
// with no key of its own (a nil principal), as whoever can run it can
// read the database anyway; keys made through the API are bounded by the
// key that makes them.
func (a *admin) admins(ctx context.Context, pos []string) error {
	if len(pos) == 0 {
		return usageErr("admin: add, list, grant or key")
	}
	st := a.svc.Admin
	switch pos[0] {
	case "add":
		if err := words(pos, 2, 2, "admin add NAME"); err != nil {
			return err
		}
		_, err := st.CreateAdmin(ctx, nil, pos[1])
		return err
	case "list":
		if err := words(pos, 1, 1, "admin list"); err != nil {
			return err
		}
		var after int64
		for {
			as, err := st.Admins(ctx, after, 100)
			if err != nil {
				return err
			}
			for _, x := range as {
				var gs []string
				for _, g := range x.Grants {
					gs = append(gs, grantText(g.Authority))
				}
				fmt.Fprintf(a.out, "%s %s\n", x.Name, strings.Join(gs, "; "))
				after = x.ID
			}
			if len(as) < 100 {
				return nil
			}
		}
	case "grant":
		if len(pos) < 3 {
			return usageErr("admin grant NAME SCOPE... [--domain D]...")
		}
		x, err := st.AdminByName(ctx, pos[1])
		if err != nil {
			return err
		}
		_, err = st.AddGrant(ctx, nil, x.ID, adminstore.Authority{Scopes: pos[2:], Domains: lower(a.o.domains)})
		return err
	case "key":
		if err := words(pos, 2, 2, "admin key NAME [--scopes S,S] [--domain D]... [--network CIDR]... [--expires WHEN]"); err != nil {
			return err
		}
		x, err := st.AdminByName(ctx, pos[1])
		if err != nil {
			return err
		}
		auth, err := a.keyAuthority(x)
		if err != nil {
			return err
		}
		k, secret, err := st.CreateKey(ctx, nil, adminstore.NewKey{AdminID: x.ID, Name: a.o.name, Authority: auth})
		if err != nil {
			return err
		}
		fmt.Fprintf(a.out, "key %d for %s: %s\n", k.ID, x.Name, grantText(k.Authority))
		fmt.Fprintln(a.out, secret)
		return nil
	}
	return usageErr("admin: unknown action %q", pos[0])
}

// keyAuthority is what `admin key` asks for: the flags, or by default all
// its admin's grants give (their scopes, over every domain when one grant
// is over every domain, else over theirs).
func (a *admin) keyAuthority(x adminstore.Admin) (adminstore.Authority, error) {
	var auth adminstore.Authority
	if a.o.scopes != "" {
		auth.Scopes = strings.Split(a.o.scopes, ",")
	}
	auth.Domains = lower(a.o.domains)
	if auth.Scopes == nil || (auth.Domains == nil && a.o.scopes == "") {
		every := false
		var ds []string
		for _, g := range x.Grants {
			for _, s := range g.Scopes {
				if a.o.scopes == "" && !slices.Contains(auth.Scopes, s) {
					auth.Scopes = append(auth.Scopes, s)
				}
			}
			every = every || len(g.Domains) == 0
			ds = append(ds, g.Domains...)
		}
		if auth.Domains == nil && !every {
			slices.Sort(ds)
			auth.Domains = slices.Compact(ds)
		}
	}
	if len(auth.Scopes) == 0 {
		return auth, usageErr("admin key: %s has no grants; give it one first (admin grant)", x.Name)
	}
	nets, err := adminstore.ParseNetworks(a.o.networks)
	if err != nil {
		return auth, usageErr("admin key: %v", err)
	}
	auth.Networks = nets
	if e := a.o.expires; e != "" {
		if d, ok := strings.CutSuffix(e, "d"); ok {
			n, err := strconv.Atoi(d)
			if err != nil || n <= 0 {
				return auth, usageErr("admin key: --expires %q: a number of days (30d) or an RFC 3339 time", e)
			}
			auth.Expires = time.Now().Add(time.Duration(n) * 24 * time.Hour).Unix()
		} else {
			t, err := time.Parse(time.RFC3339, e)
			if err != nil {
				return auth, usageErr("admin key: --expires %q: a number of days (30d) or an RFC 3339 time", e)
			}
			auth.Expires = t.Unix()
		}
	}
	return auth, nil
}

func lower(ss []string) []string {
	var out []string
	for _, s := range ss {
		out = append(out, strings.ToLower(strings.TrimSpace(s)))
	}
	return out
}

func grantText(a adminstore.Authority) string {
	s := strings.Join(a.Scopes, ",")
	if len(a.Domains) > 0 {
		s += " over " + strings.Join(a.Domains, ",")
	} else {
		s += " over every domain"
	}
	return s
}
