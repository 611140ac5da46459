package rpc

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/emersion/go-message/mail"

	"basalt/store"
	"basalt/store/contacts"
)

// Compose helpers: identities (who a message is from, with a signature
// each) and address completion from the address book and the people the
// user has sent to.
//
// Identities are kept as one JSON list in the settings ("identities").
// With none saved, identities.list gives one made from settings.identity
// (display name and signature) and the primary address, id "primary", so
// the two methods agree. The signature is for the app to put in the
// editor when composing (it shows and can be edited there); messages.send
// takes the identity's name and address as the From, and does not add the
// signature again.

const (
	settingIdentities = "identities"
	maxIdentities     = 20
)

type identityItem struct {
	ID            string `json:"id" jsonschema:"maxLength=64"`
	Name          string `json:"name" jsonschema:"maxLength=200"`
	Address       string `json:"address" jsonschema:"maxLength=320"`
	SignatureText string `json:"signatureText" jsonschema:"maxLength=16384"`
	SignatureHTML string `json:"signatureHTML" jsonschema:"maxLength=16384"`
	Default       bool   `json:"default"`
}

type identitySave struct {
	// ID replaces that identity; absent: a new one.
	ID            string `json:"id,omitempty" jsonschema:"maxLength=64"`
	Name          string `json:"name,omitempty" jsonschema:"maxLength=200"`
	Address       string `json:"address" jsonschema:"minLength=3,maxLength=320"`
	SignatureText string `json:"signatureText,omitempty" jsonschema:"maxLength=16384"`
	SignatureHTML string `json:"signatureHTML,omitempty" jsonschema:"maxLength=65536"`
	Default       bool   `json:"default,omitempty"`
}

type identitySaveParams struct {
	Identity identitySave `json:"identity"`
}

type identityIDParams struct {
	ID string `json:"id" jsonschema:"minLength=1,maxLength=64"`
}

type identitiesResult struct {
	Identities []identityItem `json:"identities"`
}

type suggestParams struct {
	Prefix string `json:"prefix" jsonschema:"minLength=1,maxLength=320"`
	Limit  int    `json:"limit,omitempty" jsonschema:"minimum=1,maximum=50"`
}

type suggestion struct {
	Name    string `json:"name"`
	Address string `json:"address"`
	// Display is "Name <address>", ready for a To field.
	Display string `json:"display"`
	Uses    int64  `json:"uses"`
	Contact bool   `json:"contact"`
}

type suggestResult struct {
	Suggestions []suggestion `json:"suggestions"`
}

func (h *Handler) registerIdentities() {
	Register(h.engine, Spec{Name: "identities.list", Summary: "The identities the user sends as: name, address (one of the user's), signatures, which is the default."}, h.identitiesList)
	Register(h.engine, Spec{Name: "identities.save", Summary: "Add an identity, or replace one by id; its address must be one of the user's (see aliases). The result is the list after.",
		Description: "signatureHTML is sanitized as message HTML is. Marking one default unmarks the others."}, h.identitiesSave)
	Register(h.engine, Spec{Name: "identities.remove", Summary: "Remove an identity; the result is the list after."}, h.identitiesRemove)
	Register(h.engine, Spec{Name: "contacts.suggest", Summary: "Addresses to complete a To/Cc/Bcc field: contacts and recent recipients whose address, name or a word of it starts with prefix, most used first."}, h.contactsSuggest)
}

// loadIdentities returns the saved identities, or the one made from
// settings.identity when none are.
func (h *Handler) loadIdentities(ctx context.Context, c *Call) ([]identityItem, bool, error) {
	kv, err := settingsOf(ctx, c.account())
	if err != nil {
		return nil, false, err
	}
	var ids []identityItem
	if v := kv[settingIdentities]; v != "" {
		if err := json.Unmarshal([]byte(v), &ids); err == nil && len(ids) > 0 {
			return ids, true, nil
		}
	}
	u, err := h.st.UserByID(ctx, c.userID())
	if err != nil {
		return nil, false, err
	}
	return []identityItem{{ID: "primary", Name: kv[settingName], Address: u.Address, SignatureText: kv[settingSignature], Default: true}}, false, nil
}

func (h *Handler) identitiesList(ctx context.Context, c *Call, _ empty) (identitiesResult, error) {
	ids, _, err := h.loadIdentities(ctx, c)
	return identitiesResult{Identities: ids}, err
}

func (h *Handler) saveIdentities(ctx context.Context, c *Call, ids []identityItem) (identitiesResult, error) {
	b, err := json.Marshal(ids)
	if err != nil {
		return identitiesResult{}, err
	}
	if len(b) > 60<<10 {
		return identitiesResult{}, invalid("identity", "the identities are too large together")
	}
	if err := contacts.Of(c.account()).SaveSettings(ctx, map[string]string{settingIdentities: string(b)}); err != nil {
		return identitiesResult{}, err
	}
	return identitiesResult{Identities: ids}, nil
}

func (h *Handler) identitiesSave(ctx context.Context, c *Call, p identitySaveParams) (identitiesResult, error) {
	in := p.Identity
	ad, err := mail.ParseAddress(in.Address)
	if err != nil {
		return identitiesResult{}, invalid("identity.address", fmt.Sprintf("%q is not an address", in.Address))
	}
	own, err := h.aliases(ctx, c, empty{})
	if err != nil {
		return identitiesResult{}, err
	}
	addr := strings.ToLower(ad.Address)
	if !slices.ContainsFunc(own.Aliases, func(a aliasItem) bool { return strings.EqualFold(a.Address, addr) }) {
		return identitiesResult{}, &Error{Code: CodeForbiddenFrom, Message: "the address is not one of yours", Data: ErrorData{Type: "forbiddenFrom", Field: "identity.address"}}
	}
	name := strings.TrimSpace(in.Name)
	if name == "" {
		name = ad.Name
	}
	if strings.ContainsAny(name, "\r\n\x00") {
		return identitiesResult{}, invalid("identity.name", "a name is one line")
	}
	sigHTML := ""
	if in.SignatureHTML != "" {
		sigHTML, _ = h.sanitizers.sanitize(in.SignatureHTML, nil, false)
	}
	ids, saved, err := h.loadIdentities(ctx, c)
	if err != nil {
		return identitiesResult{}, err
	}
	if !saved {
		ids = ids[:0] // the one made from settings.identity is not kept unless saved
	}
	it := identityItem{ID: in.ID, Name: name, Address: addr, SignatureText: in.SignatureText, SignatureHTML: sigHTML, Default: in.Default}
	if it.ID == "" {
		b := make([]byte, 6)
		rand.Read(b)
		it.ID = hex.EncodeToString(b)
		if len(ids) >= maxIdentities {
			return identitiesResult{}, invalid("identity", fmt.Sprintf("at most %d identities", maxIdentities))
		}
		ids = append(ids, it)
	} else {
		k := slices.IndexFunc(ids, func(x identityItem) bool { return x.ID == it.ID })
		if k < 0 {
			if saved || it.ID != "primary" {
				return identitiesResult{}, errNotFound
			}
			ids = append(ids, it) // the made-up one, saved for the first time
		} else {
			ids[k] = it
		}
	}
	if it.Default || !slices.ContainsFunc(ids, func(x identityItem) bool { return x.Default }) {
		for i := range ids {
			ids[i].Default = ids[i].ID == it.ID
		}
	}
	return h.saveIdentities(ctx, c, ids)
}

func (h *Handler) identitiesRemove(ctx context.Context, c *Call, p identityIDParams) (identitiesResult, error) {
	ids, saved, err := h.loadIdentities(ctx, c)
	if err != nil {
		return identitiesResult{}, err
	}
	k := slices.IndexFunc(ids, func(x identityItem) bool { return x.ID == p.ID })
	if !saved || k < 0 {
		return identitiesResult{}, errNotFound
	}
	wasDefault := ids[k].Default
	ids = slices.Delete(ids, k, k+1)
	if len(ids) == 0 {
		if err := contacts.Of(c.account()).SaveSettings(ctx, map[string]string{settingIdentities: ""}); err != nil {
			return identitiesResult{}, err
		}
		return h.identitiesList(ctx, c, empty{})
	}
	if wasDefault {
		ids[0].Default = true
	}
	return h.saveIdentities(ctx, c, ids)
}

// withIdentity fills the From of a send from its identity (or the default
// one, when neither from nor identity is given).
func (h *Handler) withIdentity(ctx context.Context, c *Call, p sendParams) (messageParams, error) {
	mp := p.messageParams
	if mp.From != "" && p.Identity == "" {
		return mp, nil
	}
	ids, saved, err := h.loadIdentities(ctx, c)
	if err != nil {
		return mp, err
	}
	var it *identityItem
	for i := range ids {
		if (p.Identity != "" && ids[i].ID == p.Identity) || (p.Identity == "" && ids[i].Default) {
			it = &ids[i]
		}
	}
	switch {
	case it == nil && p.Identity != "":
		return mp, &Error{Code: CodeNotFound, Message: "no such identity", Data: ErrorData{Type: "notFound", Field: "identity"}}
	case it == nil || (!saved && p.Identity == ""):
		return mp, nil // build's default: the primary address, settings.identity's name
	case mp.From != "":
		return mp, nil
	}
	mp.From = (&mail.Address{Name: it.Name, Address: it.Address}).String()
	return mp, nil
}

// noteRecipients remembers who a message went to, for contacts.suggest.
// It is a convenience: a failure is logged, never the send's.
func (h *Handler) noteRecipients(ctx context.Context, a *store.Account, b *built) {
	var rs []contacts.Recipient
	for _, ad := range b.named {
		rs = append(rs, contacts.Recipient{Address: ad.Address, Name: ad.Name})
	}
	if err := contacts.Of(a).NoteRecipients(ctx, rs); err != nil {
		h.log.Warn("note recipients", "user", a.UserID(), "err", err)
	}
}

func (h *Handler) contactsSuggest(ctx context.Context, c *Call, p suggestParams) (suggestResult, error) {
	limit := p.Limit
	if limit == 0 {
		limit = 10
	}
	ss, err := contacts.Of(c.account()).Suggest(ctx, p.Prefix, limit)
	if err != nil {
		return suggestResult{}, err
	}
	out := suggestResult{Suggestions: []suggestion{}}
	for _, s := range ss {
		out.Suggestions = append(out.Suggestions, suggestion{Name: s.Name, Address: s.Address, Uses: s.Uses, Contact: s.Contact,
			Display: (&mail.Address{Name: s.Name, Address: s.Address}).String()})
	}
	return out, nil
}
