package rpc

import (
	"basalt/store/contacts"
	"basalt/store/webmail"
	"context"
	"errors"
	"io"
	"strings"

	"github.com/emersion/go-vcard"
)

// A contact is kept as a vCard 4.0 (RFC 6350) in the store's Data, with
// its name and first address beside it for listing; the API speaks the
// fields below, and imports and exports whole vCards (go-vcard parses and
// writes them). Editing changes only the fields the API knows: the rest
// of an imported card (photos, addresses, custom X- properties) stays.

type typedValue struct {
	Value string `json:"value" jsonschema:"minLength=1,maxLength=320"`
	// Type is a vCard TYPE: home, work, cell, ...
	Type string `json:"type,omitempty" jsonschema:"maxLength=50"`
}

type contactFields struct {
	Name         string       `json:"name" jsonschema:"minLength=1,maxLength=255"`
	Emails       []typedValue `json:"emails,omitempty" jsonschema:"maxItems=50"`
	Phones       []typedValue `json:"phones,omitempty" jsonschema:"maxItems=50"`
	Organization string       `json:"organization,omitempty" jsonschema:"maxLength=255"`
	Title        string       `json:"title,omitempty" jsonschema:"maxLength=255"`
	Notes        string       `json:"notes,omitempty" jsonschema:"maxLength=65536"`
}

type contactItem struct {
	ContactID int64 `json:"contactID"`
	FolderID  int64 `json:"folderID"`
	contactFields
	// Email is the preferred address, for lists and completion.
	Email string `json:"email"`
}

type contactsListParams struct {
	// FolderID lists one folder; absent: every contact.
	FolderID int64 `json:"folderID,omitempty" jsonschema:"minimum=1"`
}

type contactsListResult struct {
	Contacts []contactItem `json:"contacts"`
	State    string        `json:"state"`
}

type contactIDParams struct {
	ContactID int64 `json:"contactID" jsonschema:"minimum=1"`
}

type contactLoadResult struct {
	contactItem
	VCard string `json:"vcard"`
}

type contactAddParams struct {
	FolderID int64 `json:"folderID,omitempty" jsonschema:"minimum=1"`
	contactFields
}

type contactEditParams struct {
	ContactID int64 `json:"contactID" jsonschema:"minimum=1"`
	// FolderID moves the contact too, when given.
	FolderID int64 `json:"folderID,omitempty" jsonschema:"minimum=1"`
	contactFields
}

type contactIDResult struct {
	ContactID int64 `json:"contactID"`
}

type contactIDsParams struct {
	ContactIDs []int64 `json:"contactIDs" jsonschema:"minItems=1,maxItems=1000"`
}

type contactsToParams struct {
	ContactIDs []int64 `json:"contactIDs" jsonschema:"minItems=1,maxItems=1000"`
	FolderID   int64   `json:"folderID" jsonschema:"minimum=1"`
}

type contactIDsResult struct {
	ContactIDs []int64 `json:"contactIDs"`
}

type importParams struct {
	FolderID int64  `json:"folderID,omitempty" jsonschema:"minimum=1"`
	VCard    string `json:"vcard" jsonschema:"minLength=1"`
}

type importResult struct {
	ContactIDs []int64 `json:"contactIDs"`
	// Skipped counts cards that could not be read or had no name.
	Skipped int `json:"skipped"`
}

type exportParams struct {
	FolderID   int64   `json:"folderID,omitempty" jsonschema:"minimum=1"`
	ContactIDs []int64 `json:"contactIDs,omitempty" jsonschema:"maxItems=10000"`
}

type exportResult struct {
	VCard string `json:"vcard"`
	Count int    `json:"count"`
}

// maxImport bounds the cards one import takes.
const maxImport = 5000

func (h *Handler) registerContacts() {
	Register(h.engine, Spec{Name: "contacts.list", Summary: "The contacts of a folder, or all of them, by name."}, h.contactsList)
	Register(h.engine, Spec{Name: "contacts.load", Summary: "One contact, with its vCard."}, h.contactsLoad)
	Register(h.engine, Spec{Name: "contacts.add", Summary: "Create a contact (in the default folder unless one is given)."}, h.contactsAdd)
	Register(h.engine, Spec{Name: "contacts.edit", Summary: "Replace a contact's fields; the rest of its vCard stays."}, h.contactsEdit)
	Register(h.engine, Spec{Name: "contacts.remove", Summary: "Delete contacts."}, h.contactsRemove)
	Register(h.engine, Spec{Name: "contacts.move", Summary: "Move contacts to a folder."}, h.contactsMove)
	Register(h.engine, Spec{Name: "contacts.copy", Summary: "Copy contacts to a folder."}, h.contactsCopy)
	Register(h.engine, Spec{Name: "contacts.import", Summary: "Import vCards (RFC 6350, and 3.0)."}, h.contactsImport)
	Register(h.engine, Spec{Name: "contacts.export", Summary: "Export contacts as vCards."}, h.contactsExport)
}

// card returns a contact's vCard: the stored one, or one made from the
// name and address of a contact saved without one.
func card(c contacts.Contact) vcard.Card {
	if c.Data != "" {
		if cd, err := vcard.NewDecoder(strings.NewReader(c.Data)).Decode(); err == nil {
			return cd
		}
	}
	cd := vcard.Card{}
	cd.SetValue(vcard.FieldVersion, "4.0")
	cd.SetValue(vcard.FieldFormattedName, c.Name)
	if c.Email != "" {
		cd.AddValue(vcard.FieldEmail, c.Email)
	}
	return cd
}

func typed(fs []*vcard.Field) []typedValue {
	var out []typedValue
	for _, f := range fs {
		if f.Value == "" {
			continue
		}
		out = append(out, typedValue{Value: f.Value, Type: strings.ToLower(f.Params.Get(vcard.ParamType))})
	}
	return out
}

func fromCard(fc contacts.FiledContact) contactItem {
	cd := card(fc.Contact)
	it := contactItem{ContactID: fc.ID, FolderID: fc.FolderID, Email: fc.Email}
	it.Name = fc.Name
	it.Emails, it.Phones = typed(cd[vcard.FieldEmail]), typed(cd[vcard.FieldTelephone])
	it.Organization = cd.Value(vcard.FieldOrganization)
	it.Title = cd.Value(vcard.FieldTitle)
	it.Notes = cd.Value(vcard.FieldNote)
	if it.Emails == nil {
		it.Emails = []typedValue{}
	}
	if it.Phones == nil {
		it.Phones = []typedValue{}
	}
	return it
}

// apply sets the API's fields on a card, leaving its other properties.
func apply(cd vcard.Card, f contactFields) {
	if cd.Value(vcard.FieldVersion) == "" {
		cd.SetValue(vcard.FieldVersion, "4.0")
	}
	vcard.ToV4(cd)
	cd.SetValue(vcard.FieldFormattedName, strings.TrimSpace(f.Name))
	if cd.Get(vcard.FieldName) == nil {
		// N is required in 3.0 and common in 4.0: the whole name as the
		// family name is what a reader can make of it.
		cd.SetName(&vcard.Name{FamilyName: strings.TrimSpace(f.Name)})
	}
	set := func(k string, vs []typedValue) {
		delete(cd, k)
		for _, v := range vs {
			fl := &vcard.Field{Value: strings.TrimSpace(v.Value), Params: vcard.Params{}}
			if v.Type != "" {
				fl.Params.Set(vcard.ParamType, v.Type)
			}
			cd.Add(k, fl)
		}
	}
	set(vcard.FieldEmail, f.Emails)
	set(vcard.FieldTelephone, f.Phones)
	for k, v := range map[string]string{vcard.FieldOrganization: f.Organization, vcard.FieldTitle: f.Title, vcard.FieldNote: f.Notes} {
		if v == "" {
			delete(cd, k)
		} else {
			cd.SetValue(k, v)
		}
	}
}

func encodeCard(cd vcard.Card) (string, error) {
	var b strings.Builder
	if err := vcard.NewEncoder(&b).Encode(cd); err != nil {
		return "", err
	}
	return b.String(), nil
}

// stored makes the store's contact of a card.
func stored(id int64, cd vcard.Card) (contacts.Contact, error) {
	data, err := encodeCard(cd)
	if err != nil {
		return contacts.Contact{}, err
	}
	c := contacts.Contact{ID: id, Name: cd.Value(vcard.FieldFormattedName), Data: data}
	if e := cd.Preferred(vcard.FieldEmail); e != nil {
		c.Email = e.Value
	}
	if len(c.Name) > 255 || len(c.Email) > 320 {
		return contacts.Contact{}, invalid("name", "name or address too long")
	}
	return c, nil
}

func (h *Handler) contactsList(ctx context.Context, c *Call, p contactsListParams) (contactsListResult, error) {
	a := c.account()
	state, err := webmail.Of(a).State(ctx)
	if err != nil {
		return contactsListResult{}, err
	}
	cs, err := contacts.Of(a).ContactsIn(ctx, p.FolderID)
	if err != nil {
		return contactsListResult{}, err
	}
	out := contactsListResult{Contacts: make([]contactItem, 0, len(cs)), State: state}
	for _, fc := range cs {
		out.Contacts = append(out.Contacts, fromCard(fc))
	}
	return out, nil
}

func (h *Handler) contactsLoad(ctx context.Context, c *Call, p contactIDParams) (contactLoadResult, error) {
	fc, err := contacts.Of(c.account()).FiledContact(ctx, p.ContactID)
	if err != nil {
		return contactLoadResult{}, err
	}
	data, err := encodeCard(card(fc.Contact))
	if err != nil {
		return contactLoadResult{}, err
	}
	return contactLoadResult{contactItem: fromCard(fc), VCard: data}, nil
}

func (h *Handler) contactsAdd(ctx context.Context, c *Call, p contactAddParams) (contactIDResult, error) {
	cd := vcard.Card{}
	apply(cd, p.contactFields)
	sc, err := stored(0, cd)
	if err != nil {
		return contactIDResult{}, err
	}
	fc, err := contacts.Of(c.account()).SaveContactIn(ctx, p.FolderID, sc)
	return contactIDResult{ContactID: fc.ID}, err
}

func (h *Handler) contactsEdit(ctx context.Context, c *Call, p contactEditParams) (okResult, error) {
	a := c.account()
	fc, err := contacts.Of(a).FiledContact(ctx, p.ContactID)
	if err != nil {
		return okResult{}, err
	}
	cd := card(fc.Contact)
	apply(cd, p.contactFields)
	sc, err := stored(p.ContactID, cd)
	if err != nil {
		return okResult{}, err
	}
	if _, err := contacts.Of(a).SaveContactIn(ctx, p.FolderID, sc); err != nil {
		return okResult{}, err
	}
	return okResult{OK: true}, nil
}

func (h *Handler) contactsRemove(ctx context.Context, c *Call, p contactIDsParams) (okResult, error) {
	return okResult{OK: true}, contacts.Of(c.account()).DeleteContacts(ctx, p.ContactIDs)
}

func (h *Handler) contactsMove(ctx context.Context, c *Call, p contactsToParams) (okResult, error) {
	return okResult{OK: true}, contacts.Of(c.account()).MoveContacts(ctx, p.ContactIDs, p.FolderID)
}

func (h *Handler) contactsCopy(ctx context.Context, c *Call, p contactsToParams) (contactIDsResult, error) {
	ids, err := contacts.Of(c.account()).CopyContacts(ctx, p.ContactIDs, p.FolderID)
	return contactIDsResult{ContactIDs: ids}, err
}

func (h *Handler) contactsImport(ctx context.Context, c *Call, p importParams) (importResult, error) {
	a := c.account()
	out := importResult{ContactIDs: []int64{}}
	dec := vcard.NewDecoder(strings.NewReader(p.VCard))
	for {
		cd, err := dec.Decode()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			if cd == nil {
				break
			}
			out.Skipped++
			continue
		}
		if len(out.ContactIDs) >= maxImport {
			return importResult{}, invalid("vcard", "too many cards in one import")
		}
		name := strings.TrimSpace(cd.Value(vcard.FieldFormattedName))
		if name == "" {
			if n := cd.Name(); n != nil {
				name = strings.TrimSpace(strings.Join(strings.Fields(n.GivenName+" "+n.AdditionalName+" "+n.FamilyName), " "))
			}
		}
		if name == "" {
			out.Skipped++
			continue
		}
		vcard.ToV4(cd)
		cd.SetValue(vcard.FieldFormattedName, name)
		sc, err := stored(0, cd)
		if err != nil {
			out.Skipped++
			continue
		}
		fc, err := contacts.Of(a).SaveContactIn(ctx, p.FolderID, sc)
		if err != nil {
			return importResult{}, err
		}
		out.ContactIDs = append(out.ContactIDs, fc.ID)
	}
	return out, nil
}

func (h *Handler) contactsExport(ctx context.Context, c *Call, p exportParams) (exportResult, error) {
	a := c.account()
	var cs []contacts.FiledContact
	if len(p.ContactIDs) > 0 {
		for _, id := range p.ContactIDs {
			fc, err := contacts.Of(a).FiledContact(ctx, id)
			if err != nil {
				return exportResult{}, err
			}
			cs = append(cs, fc)
		}
	} else {
		var err error
		if cs, err = contacts.Of(a).ContactsIn(ctx, p.FolderID); err != nil {
			return exportResult{}, err
		}
	}
	var b strings.Builder
	enc := vcard.NewEncoder(&b)
	for _, fc := range cs {
		if err := enc.Encode(card(fc.Contact)); err != nil {
			return exportResult{}, err
		}
	}
	return exportResult{VCard: b.String(), Count: len(cs)}, nil
}
