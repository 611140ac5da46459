package rpc

import (
	"encoding/base64"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"

	"github.com/microcosm-cc/bluemonday"
	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"
)

// HTML mail is the sender's code; shown in the webmail's origin it could
// do anything the user can. bluemonday keeps an allowlist of elements,
// attributes, URL schemes and CSS properties and drops the rest: scripts,
// event handlers, javascript: URLs, SVG, forms, meta refresh, frames,
// <style> sheets and CSS expressions are all outside it. On top of that:
//   - cid: images (RFC 2392) are pointed at /rpc/blob, so the message's
//     own images show;
//   - images from other servers are removed unless the user asks for them,
//     as loading them tells the sender the message was opened (and when,
//     and from where);
//   - links open outside the webmail and send no Referer: every a and
//     area with an href gets target="_blank" and rel="noopener
//     noreferrer" (linksOut);
//   - no id or name attribute survives: either can clobber the DOM (a
//     named element becomes a property of window and document, shadowing
//     what the page's own code looks up) once the HTML is rendered.

// sanitizer is one policy with the state of the message it is working
// on. bluemonday calls the src rewriter from inside Sanitize, so that
// state lives with the policy, and a policy serves one message at a time.
type sanitizer struct {
	policy *bluemonday.Policy
	rw     srcRewrite
	// blocked counts the remote sources removed.
	blocked int
}

// srcRewrite says where a message's image sources point once it is
// cleaned.
type srcRewrite struct {
	// cid maps a Content-ID (RFC 2392, without the angle brackets) to the
	// URL of its part; false drops the source.
	cid func(id string) (string, bool)
	// remote maps an http or https source to the URL to load it by
	// (itself, or the image proxy's signed URL); nil, or "", blocks it.
	remote func(u *url.URL) string
}

// sanitizerPool hands out sanitizers; building a policy costs more than
// a small message takes to clean.
type sanitizerPool struct {
	pool sync.Pool
}

func (p *sanitizerPool) get() *sanitizer {
	if s, ok := p.pool.Get().(*sanitizer); ok {
		return s
	}
	return newSanitizer()
}

// sanitize returns safe HTML for src and whether remote resources were
// removed from it.
func (p *sanitizerPool) sanitize(src string, cids map[string]string, allowRemote bool) (string, bool) {
	rw := srcRewrite{cid: func(id string) (string, bool) { t, ok := cids[id]; return t, ok }}
	if allowRemote {
		rw.remote = func(u *url.URL) string { return u.String() }
	}
	out, blocked := p.sanitizeWith(src, rw)
	return out, blocked > 0
}

// sanitizeWith returns safe HTML for src with its image sources rewritten
// by rw, and how many remote sources were blocked.
func (p *sanitizerPool) sanitizeWith(src string, rw srcRewrite) (string, int) {
	s := p.get()
	s.rw, s.blocked = rw, 0
	out := linksOut(s.policy.Sanitize(src))
	blocked := s.blocked
	s.rw = srcRewrite{}
	p.pool.Put(s)
	return out, blocked
}

// Safe CSS: properties that lay out and colour text and boxes. Those that
// take a URL (background, background-image, list-style-image, content,
// cursor, behavior) are left out, so CSS cannot load remote images past
// the blocking; bluemonday checks each value against the property's
// grammar, so expression() and url() in a colour are dropped too.
var safeCSS = []string{
	"color", "background-color", "font", "font-family", "font-size", "font-style", "font-weight", "font-variant",
	"line-height", "letter-spacing", "word-spacing", "text-align", "text-decoration", "text-indent", "text-transform",
	"vertical-align", "white-space", "direction", "width", "height", "max-width", "min-width", "max-height", "min-height",
	"margin", "margin-top", "margin-right", "margin-bottom", "margin-left",
	"padding", "padding-top", "padding-right", "padding-bottom", "padding-left",
	"border", "border-top", "border-right", "border-bottom", "border-left", "border-color", "border-style", "border-width",
	"border-collapse", "border-spacing", "border-radius", "display", "float", "clear", "list-style-type", "table-layout",
}

var (
	colorValue = regexp.MustCompile(`^(#[0-9a-fA-F]{3,8}|[a-zA-Z]{1,30})$`)
	sizeValue  = regexp.MustCompile(`^[0-9]{1,5}%?$`)
)

func newSanitizer() *sanitizer {
	s := &sanitizer{}
	p := mailPolicy()
	p.AllowURLSchemes("http", "https", "mailto", "cid")
	p.AllowRelativeURLs(false)
	// An http(s) URL without a host ("http:0", "https:/rpc/x") is
	// relative to the document in a browser (URL Standard, special
	// relative state): in the frame it would reach the webmail's own
	// paths, or host 0, which is 0.0.0.0.
	for _, scheme := range []string{"http", "https"} {
		p.AllowURLSchemeWithCustomPolicy(scheme, func(u *url.URL) bool { return u.Host != "" && u.Opaque == "" })
	}
	// data: URLs (RFC 2397) of raster images only: bluemonday's schemes
	// are not per element, so this also lets a link to such an image
	// through, which opens nothing but the image. SVG is left out: it is
	// a document that can hold script, and as a link it would be one.
	p.AllowURLSchemeWithCustomPolicy("data", rasterDataURI)
	p.RequireNoReferrerOnLinks(true)
	p.AddTargetBlankToFullyQualifiedLinks(true)
	p.AllowStyles(safeCSS...).Globally()
	// The presentational attributes mail is written with.
	p.AllowAttrs("align").Matching(regexp.MustCompile(`^(?i)(left|right|center|justify)$`)).OnElements("p", "div", "table", "td", "th", "tr", "img", "h1", "h2", "h3", "h4", "h5", "h6")
	p.AllowAttrs("valign").Matching(regexp.MustCompile(`^(?i)(top|middle|bottom|baseline)$`)).OnElements("td", "th", "tr")
	p.AllowAttrs("bgcolor").Matching(colorValue).OnElements("table", "td", "th", "tr", "body")
	p.AllowAttrs("color").Matching(colorValue).OnElements("font")
	p.AllowAttrs("face").Matching(regexp.MustCompile(`^[A-Za-z0-9 ,'"-]{1,100}$`)).OnElements("font")
	p.AllowAttrs("size").Matching(regexp.MustCompile(`^[+-]?[1-7]$`)).OnElements("font")
	p.AllowAttrs("width", "height").Matching(sizeValue).OnElements("table", "td", "th", "img", "col")
	p.AllowAttrs("cellpadding", "cellspacing", "border").Matching(sizeValue).OnElements("table")
	p.AllowElements("font", "center")
	p.RewriteSrc(s.rewrite)
	s.policy = p
	return s
}

// mailPolicy is bluemonday's UGCPolicy without what names elements: its
// standard attributes bring id on every element, and map takes a name
// that img usemap refers to. Both let mail clobber the DOM it is shown
// in. bluemonday cannot take an attribute back from a policy, so the
// policy is built here, element by element as UGCPolicy builds it.
func mailPolicy() *bluemonday.Policy {
	p := bluemonday.NewPolicy()
	p.AllowAttrs("dir").Matching(bluemonday.Direction).Globally()
	p.AllowAttrs("lang").Matching(regexp.MustCompile(`^[a-zA-Z]{2,20}(-[a-zA-Z0-9]{1,8})*$`)).Globally()
	p.AllowAttrs("title").Matching(bluemonday.Paragraph).Globally()
	p.AllowStandardURLs()
	p.AllowElements("article", "aside", "figure", "section", "summary", "hgroup")
	p.AllowAttrs("open").Matching(regexp.MustCompile(`(?i)^(|open)$`)).OnElements("details")
	p.AllowElements("h1", "h2", "h3", "h4", "h5", "h6")
	p.AllowAttrs("cite").OnElements("blockquote", "q")
	p.AllowElements("br", "div", "hr", "p", "span", "wbr")
	p.AllowAttrs("href").OnElements("a", "area")
	p.AllowAttrs("alt").Matching(bluemonday.Paragraph).OnElements("area")
	p.AllowAttrs("coords").Matching(regexp.MustCompile(`^([0-9]+,)+[0-9]+$`)).OnElements("area")
	p.AllowAttrs("shape").Matching(regexp.MustCompile(`(?i)^(default|circle|rect|poly)$`)).OnElements("area")
	p.AllowElements("abbr", "acronym", "cite", "code", "dfn", "em", "figcaption", "mark", "s", "samp", "strong", "sub", "sup", "var")
	p.AllowAttrs("datetime").Matching(bluemonday.ISO8601).OnElements("time", "del", "ins")
	p.AllowElements("b", "i", "pre", "small", "strike", "tt", "u")
	p.AllowAttrs("dir").Matching(bluemonday.Direction).OnElements("bdi", "bdo")
	p.AllowElements("rp", "rt", "ruby")
	p.AllowAttrs("cite").Matching(bluemonday.Paragraph).OnElements("del", "ins")
	p.AllowLists()
	p.AllowTables()
	p.AllowAttrs("value", "min", "max", "low", "high", "optimum").Matching(bluemonday.Number).OnElements("meter")
	p.AllowAttrs("value", "max").Matching(bluemonday.Number).OnElements("progress")
	p.AllowImages()
	return p
}

// linksOut gives every link (a or area with an href) target="_blank" and
// a rel with noopener and noreferrer: what is linked opens outside the
// webmail, learns nothing of it (no window.opener, no Referer). bluemonday
// does this only for links with a host (AddTargetBlankToFullyQualifiedLinks),
// not mailto:. Every other token is copied as bluemonday wrote it.
func linksOut(s string) string {
	if !strings.Contains(s, "<a") {
		return s // "<area" too
	}
	z := html.NewTokenizer(strings.NewReader(s))
	var b strings.Builder
	b.Grow(len(s) + 64)
	for {
		tt := z.Next()
		if tt == html.ErrorToken {
			return b.String()
		}
		if tt != html.StartTagToken && tt != html.SelfClosingTagToken {
			b.Write(z.Raw())
			continue
		}
		raw := string(z.Raw())
		tok := z.Token()
		if tok.DataAtom != atom.A && tok.DataAtom != atom.Area {
			b.WriteString(raw)
			continue
		}
		var attrs []html.Attribute
		rel := []string{}
		href := false
		for _, at := range tok.Attr {
			switch at.Key {
			case "target":
			case "rel":
				rel = strings.Fields(at.Val)
			default:
				href = href || at.Key == "href"
				attrs = append(attrs, at)
			}
		}
		if href {
			for _, r := range []string{"noopener", "noreferrer"} {
				if !slices.Contains(rel, r) {
					rel = append(rel, r)
				}
			}
			attrs = append(attrs, html.Attribute{Key: "rel", Val: strings.Join(rel, " ")}, html.Attribute{Key: "target", Val: "_blank"})
		} else if len(rel) > 0 {
			attrs = append(attrs, html.Attribute{Key: "rel", Val: strings.Join(rel, " ")})
		}
		tok.Attr = attrs
		b.WriteString(tok.String())
	}
}

var rasterImage = regexp.MustCompile(`^(?i)image/(gif|jpeg|png|webp);base64,`)

// rasterDataURI admits a data: URL of a raster image in base64.
func rasterDataURI(u *url.URL) bool {
	prefix := rasterImage.FindString(u.Opaque)
	if prefix == "" {
		return false
	}
	_, err := base64.StdEncoding.DecodeString(u.Opaque[len(prefix):])
	return err == nil
}

// rewrite sees every src the policy kept: cid: becomes the part's URL,
// remote ones are emptied unless allowed (an empty src loads nothing).
func (s *sanitizer) rewrite(u *url.URL) {
	switch strings.ToLower(u.Scheme) {
	case "cid":
		id, _ := url.PathUnescape(u.Opaque)
		if s.rw.cid != nil {
			if target, ok := s.rw.cid(id); ok {
				*u = *mustURL(target)
				return
			}
		}
		*u = url.URL{}
	case "http", "https":
		target := ""
		if s.rw.remote != nil {
			target = s.rw.remote(u)
		}
		if target == "" {
			s.blocked++
			*u = url.URL{}
			return
		}
		*u = *mustURL(target)
	case "data":
	default:
		// Relative URLs mean nothing in mail; in the webmail they would
		// reach its own paths.
		*u = url.URL{}
	}
}

// mustURL parses a URL this package made; one that does not parse loads
// nothing.
func mustURL(s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		return &url.URL{}
	}
	return u
}
