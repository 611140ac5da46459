package templates

import (
	"bytes"
	"embed"
	"fmt"
	"io/fs"
	"net/http"
	"strings"

	"github.com/PuerkitoBio/goquery"
	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"
)

//go:embed html/*.html
var pageFiles embed.FS

// pageNames are the pages besides the layout; each is html/<name>.html.
var pageNames = []string{"home", "login", "register", "plan", "done", "password", "contact", "error"}

// loadPages parses the layout and every page once, puts each page into a
// copy of the layout, and sets the branding that is the same for every
// request: what is left per request is cloning and filling in.
func loadPages(cfg Config) (map[string]*goquery.Document, error) {
	lb, err := fs.ReadFile(pageFiles, "html/layout.html")
	if err != nil {
		return nil, fmt.Errorf("read layout: %w", err)
	}
	layout, err := goquery.NewDocumentFromReader(bytes.NewReader(lb))
	if err != nil {
		return nil, fmt.Errorf("parse layout: %w", err)
	}
	brand(layout, cfg)
	body := &html.Node{Type: html.ElementNode, Data: "body", DataAtom: atom.Body}
	pages := make(map[string]*goquery.Document, len(pageNames))
	for _, name := range pageNames {
		b, err := fs.ReadFile(pageFiles, "html/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("read page %s: %w", name, err)
		}
		nodes, err := html.ParseFragment(bytes.NewReader(b), body)
		if err != nil {
			return nil, fmt.Errorf("parse page %s: %w", name, err)
		}
		doc := goquery.CloneDocument(layout)
		main := doc.Find("#main")
		for _, n := range nodes {
			main.AppendNodes(n)
		}
		sec := main.Children().First()
		title, _ := sec.Attr("data-title")
		doc.Find("#title").SetText(title + " — " + cfg.Name)
		if nav, _ := sec.Attr("data-nav"); nav != "" {
			link := doc.Find("#" + nav)
			link.AddClass("active")
			link.SetAttr("aria-current", "page")
		}
		sec.RemoveAttr("data-title").RemoveAttr("data-nav")
		// Links to the webmail follow where it is mounted.
		doc.Find(`a[href="/mail/"]`).SetAttr("href", cfg.WebmailPath)
		pages[name] = doc
	}
	return pages, nil
}

// brand sets the operator's branding into the layout.
func brand(doc *goquery.Document, cfg Config) {
	doc.Find("#site-name, #footer-name").SetText(cfg.Name)
	if cfg.LogoURL != "" {
		doc.Find("#logo").SetAttr("src", cfg.LogoURL)
		doc.Find("#icon").SetAttr("href", cfg.LogoURL)
	}
	doc.Find("#brand").SetAttr("aria-label", cfg.Name+", home")
	list := doc.Find("#footer-links")
	for _, l := range cfg.Footer {
		li := &html.Node{Type: html.ElementNode, Data: "li", DataAtom: atom.Li}
		a := &html.Node{Type: html.ElementNode, Data: "a", DataAtom: atom.A, Attr: []html.Attribute{{Key: "href", Val: l.URL}}}
		a.AppendChild(&html.Node{Type: html.TextNode, Data: l.Title})
		li.AppendChild(a)
		list.AppendNodes(li)
	}
}

// view is one request's copy of a page.
type view struct {
	doc    *goquery.Document
	status int
	// errs counts the field errors set; the first wrong field gets the
	// focus (autofocus: no script needed).
	errs int
	// listed are the field errors, in order, for the summary's list.
	listed [][2]string
}

func (s *Site) view(name string) *view {
	return &view{doc: goquery.CloneDocument(s.pages[name]), status: http.StatusOK}
}

// byID selects the element with id (ids in the pages are plain words).
func (v *view) byID(id string) *goquery.Selection { return v.doc.Find("#" + id) }

// text sets an element's text (escaped by the DOM when rendered).
func (v *view) text(id, s string) { v.byID(id).SetText(s) }

// show un-hides an element.
func (v *view) show(id string) { v.byID(id).RemoveAttr("hidden") }

// remove takes out the elements a selector matches.
func (v *view) remove(sel string) { v.doc.Find(sel).Remove() }

// value fills in a form field by name: an input's value, a textarea's
// text, a select's chosen option.
func (v *view) value(name, val string) {
	f := v.doc.Find(`[name="` + name + `"]`)
	switch goquery.NodeName(f) {
	case "textarea":
		f.SetText(val)
	case "select":
		f.Find("option").Each(func(_ int, o *goquery.Selection) {
			if ov, _ := o.Attr("value"); ov == val {
				o.SetAttr("selected", "")
			} else {
				o.RemoveAttr("selected")
			}
		})
	default:
		f.SetAttr("value", val)
	}
}

// summary shows msg at the top of the page (#error), where a screen
// reader announces it (role=alert); without field errors it takes the
// focus.
func (v *view) summary(msg string) {
	v.text("error", msg)
	v.show("error")
}

// problems shows a form's failed check: errs' message under each of
// fields that has one, in the form's order (the first takes the focus),
// and msg, when there is one, above the form.
func (v *view) problems(msg string, errs map[string]string, fields ...string) {
	for _, f := range fields {
		if m, ok := errs[f]; ok {
			v.fieldError(f, m)
		}
	}
	if msg != "" {
		v.summary(msg)
	}
}

// fieldError shows msg right under field (its id), marks the field
// invalid and ties the message to it; the first wrong field takes the
// focus.
func (v *view) fieldError(field, msg string) {
	errID := field + "-error"
	v.text(errID, msg)
	v.show(errID)
	f := v.byID(field)
	f.SetAttr("aria-invalid", "true")
	desc, _ := f.Attr("aria-describedby")
	f.SetAttr("aria-describedby", strings.TrimSpace(desc+" "+errID))
	if v.errs == 0 {
		v.doc.Find("[autofocus]").RemoveAttr("autofocus")
		f.SetAttr("autofocus", "")
	}
	v.errs++
	v.listed = append(v.listed, [2]string{field, msg})
}

// listErrors puts the field errors under the summary as links to their
// fields, so the summary alone says what to correct and leads there.
func (v *view) listErrors() {
	sum := v.byID("error")
	if len(v.listed) == 0 || sum.Length() == 0 {
		return
	}
	ul := &html.Node{Type: html.ElementNode, Data: "ul", DataAtom: atom.Ul}
	for _, e := range v.listed {
		li := &html.Node{Type: html.ElementNode, Data: "li", DataAtom: atom.Li}
		a := &html.Node{Type: html.ElementNode, Data: "a", DataAtom: atom.A, Attr: []html.Attribute{{Key: "href", Val: "#" + e[0]}}}
		a.AppendChild(&html.Node{Type: html.TextNode, Data: e[1]})
		li.AppendChild(a)
		ul.AppendChild(li)
	}
	sum.AppendNodes(ul)
}

// render writes the page, with the CSRF token in every form.
func (v *view) render(w http.ResponseWriter, csrf string) {
	v.doc.Find(`input[name="csrf"]`).SetAttr("value", csrf)
	v.listErrors()
	if sum := v.byID("error"); sum.Length() > 0 && v.errs == 0 {
		if _, hidden := sum.Attr("hidden"); !hidden {
			v.doc.Find("[autofocus]").RemoveAttr("autofocus")
			sum.SetAttr("autofocus", "")
		}
	}
	var buf bytes.Buffer
	if err := goquery.Render(&buf, v.doc.Selection); err != nil {
		http.Error(w, "render failed", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(v.status)
	w.Write(buf.Bytes())
}
