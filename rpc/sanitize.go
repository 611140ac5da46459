package rpc

import (
	"encoding/base64"
	"net/url"
	"regexp"
	"strings"
	"sync"

	"github.com/microcosm-cc/bluemonday"
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
//   - links open outside the webmail and send no Referer.

// sanitizer is one policy with the state of the message it is working
// on. bluemonday calls the src rewriter from inside Sanitize, so that
// state lives with the policy, and a policy serves one message at a time.
type sanitizer struct {
	policy      *bluemonday.Policy
	cids        map[string]string
	allowRemote bool
	blocked     bool
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
	s := p.get()
	s.cids, s.allowRemote, s.blocked = cids, allowRemote, false
	out := s.policy.Sanitize(src)
	blocked := s.blocked
	s.cids = nil
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
	p := bluemonday.UGCPolicy()
	p.AllowURLSchemes("http", "https", "mailto", "cid")
	p.AllowRelativeURLs(false)
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
		if target, ok := s.cids[id]; ok {
			*u = url.URL{Path: target}
			return
		}
		*u = url.URL{}
	case "http", "https":
		if !s.allowRemote {
			s.blocked = true
			*u = url.URL{}
		}
	case "data":
	default:
		// Relative URLs mean nothing in mail; in the webmail they would
		// reach its own paths.
		*u = url.URL{}
	}
}
