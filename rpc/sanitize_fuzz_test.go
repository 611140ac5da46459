package rpc

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"
)

// The fuzz targets' property: what the sanitizer or the linkifier writes,
// parsed as a browser parses the frame's body, holds nothing that can run
// script, load or submit anything, or take over the page. The seeds are
// the classic tricks; testdata/fuzz holds inputs the fuzzer found worth
// keeping.

// activeElements are the elements that run script, load documents, submit
// or change how the document is read.
var activeElements = map[atom.Atom]bool{
	atom.Script: true, atom.Style: true, atom.Iframe: true, atom.Frame: true, atom.Frameset: true, atom.Object: true,
	atom.Embed: true, atom.Applet: true, atom.Form: true, atom.Input: true, atom.Button: true, atom.Select: true,
	atom.Textarea: true, atom.Base: true, atom.Meta: true, atom.Link: true, atom.Svg: true, atom.Math: true,
	atom.Template: true, atom.Noscript: true, atom.Audio: true, atom.Video: true, atom.Source: true, atom.Track: true,
	atom.Xmp: true, atom.Plaintext: true, atom.Noembed: true, atom.Noframes: true,
	atom.Keygen: true, atom.Isindex: true, atom.Dialog: true,
}

// urlAttrs are the attributes whose value a browser loads or navigates to.
var urlAttrs = map[string]bool{"href": true, "src": true, "cite": true, "action": true, "formaction": true, "background": true,
	"poster": true, "data": true, "codebase": true, "longdesc": true, "usemap": true, "xlink:href": true, "ping": true, "lowsrc": true, "dynsrc": true}

// safeURL: the schemes the sanitizer lets through, as a browser reads the
// value (it drops tabs and newlines anywhere and trims the rest of the
// controls and spaces, URL Standard 4.4).
var safeURL = regexp.MustCompile(`^(?i)(https?://|mailto:|cid:|data:image/(gif|jpeg|png|webp);base64,|/rpc/(inline|image)[/?]|$)`)

var badStyle = regexp.MustCompile(`(?i)(url\(|expression|@import|behavior|binding|var\(|\\|javascript|position|/\*)`)

// browserURL is an attribute's value as the URL parser sees it.
func browserURL(v string) string {
	v = strings.Map(func(r rune) rune {
		if r == '\t' || r == '\n' || r == '\r' {
			return -1
		}
		return r
	}, v)
	return strings.TrimFunc(v, func(r rune) bool { return r <= ' ' })
}

// checkInert reports what in out could act, "" when nothing.
func checkInert(out string) string {
	body := &html.Node{Type: html.ElementNode, Data: "body", DataAtom: atom.Body}
	nodes, err := html.ParseFragment(strings.NewReader(out), body)
	if err != nil {
		return fmt.Sprintf("output does not parse: %v", err)
	}
	var bad string
	var walk func(n *html.Node)
	walk = func(n *html.Node) {
		if bad != "" {
			return
		}
		if n.Type == html.ElementNode {
			if n.Namespace != "" || activeElements[n.DataAtom] || n.DataAtom == 0 && n.Data != "" && !strings.Contains("font center", n.Data) {
				bad = fmt.Sprintf("element %s:%s", n.Namespace, n.Data)
				return
			}
			for _, a := range n.Attr {
				k := strings.ToLower(a.Key)
				switch {
				case strings.HasPrefix(k, "on"), k == "srcset", k == "srcdoc", k == "id", k == "name", k == "http-equiv", k == "formaction":
					bad = fmt.Sprintf("attribute %s=%q on %s", a.Key, a.Val, n.Data)
				case urlAttrs[k] && !safeURL.MatchString(browserURL(a.Val)):
					bad = fmt.Sprintf("URL %s=%q on %s", a.Key, a.Val, n.Data)
				case k == "style" && badStyle.MatchString(a.Val):
					bad = fmt.Sprintf("style %q on %s", a.Val, n.Data)
				case k == "target" && a.Val != "_blank":
					bad = fmt.Sprintf("target %q", a.Val)
				}
				if bad != "" {
					return
				}
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	for _, n := range nodes {
		walk(n)
	}
	return bad
}

var hostileSeeds = []string{
	`<a href="jav&#x09;ascript:alert(1)">x</a>`,
	`<a href="&#106;&#97;&#118;&#97;&#115;&#99;&#114;&#105;&#112;&#116;&#58;alert(1)">x</a>`,
	`<a href=" JaVaScRiPt:alert(1)">x</a><a href="&#0;javascript:alert(1)">y</a>`,
	`<a href="vbscript:msgbox(1)">v</a><a href="data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==">d</a>`,
	`<img src="data:image/svg+xml;base64,PHN2Zz48L3N2Zz4="><img src=x onerror=alert(1)><img srcset="https://evil.example/a.png 1x">`,
	`<p style="background:url(https://evil.example/a)">a</p><p style="width:expression(alert(1))">b</p><p style="behavior:url(x.htc)">c</p>`,
	`<svg><animate attributeName=href to=javascript:alert(1) /><set attributeName=onload to=alert(1) /><use xlink:href="data:image/svg+xml,<svg id=x></svg>#x"/><foreignObject><img src=x onerror=alert(1)></foreignObject></svg>`,
	`<math><mtext><table><mglyph><style><img src=x onerror=alert(1)></style></mglyph></table></mtext></math>`,
	`<base href="https://evil.example/"><meta http-equiv="refresh" content="0;url=javascript:alert(1)"><form action="https://evil.example"><input name=p></form>`,
	`<!--><img src=x onerror=alert(1)>--><![CDATA[><img src=x onerror=alert(2)>]]><noscript><p title="</noscript><img src=x onerror=alert(3)>">`,
	`<style>@import "https://evil.example/x.css";</style><xmp><img src=x onerror=alert(1)></xmp><template><script>alert(1)</script></template>`,
	`<a href="https://example.org/" target="_top" rel="opener">o</a><area href="javascript:alert(1)"><blockquote cite="javascript:alert(1)">q</blockquote>`,
	`<p id="location" name="cookie">c</p><img name="getElementById" src="cid:a@b">`,
	"<a href=\"java\x00script:alert(1)\">n</a><a href=\"\x01javascript:alert(1)\">c</a><a href=\"java\nscript:alert(1)\">l</a>",
}

// FuzzSanitize: whatever the mail's HTML, the sanitized body is inert.
func FuzzSanitize(f *testing.F) {
	for _, s := range hostileSeeds {
		f.Add(s)
	}
	var pool sanitizerPool
	f.Fuzz(func(t *testing.T, src string) {
		for _, remote := range []bool{false, true} {
			out, _ := pool.sanitize(src, map[string]string{"a@b": "/rpc/inline/1-2/2?s=x"}, remote)
			if bad := checkInert(out); bad != "" {
				t.Fatalf("sanitize(%q, remote %v) = %q: %s", src, remote, out, bad)
			}
		}
		// As the frame does it: remote images through the proxy's URL.
		out, _ := pool.sanitizeWith(src, srcRewrite{remote: func(u *url.URL) string { return "/rpc/image?u=" + url.QueryEscape(u.String()) }})
		if bad := checkInert(out); bad != "" {
			t.Fatalf("sanitizeWith(%q) = %q: %s", src, out, bad)
		}
	})
}

// FuzzLinkify: whatever the plain text, the linkified body is inert and
// links only http, https and mailto.
func FuzzLinkify(f *testing.F) {
	for _, s := range []string{
		"see https://example.org/a?b=1&c=<2> and (http://example.org/x)!",
		"javascript:alert(1) http://a\"onmouseover=alert(1)// mailto:a@b?subject=\"x\"",
		"https://exa<script>mple.org/</script> HTTPS://EXAMPLE.ORG/ https://[::1]:80/ http://%0a/ mailto:",
		"http://x.org/\x00\x01 https://x.org/'onerror='alert(1) https://x.org/&quot;&gt;",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		out := linkify(text)
		if bad := checkInert(out); bad != "" {
			t.Fatalf("linkify(%q) = %q: %s", text, out, bad)
		}
		body := &html.Node{Type: html.ElementNode, Data: "body", DataAtom: atom.Body}
		nodes, _ := html.ParseFragment(strings.NewReader(out), body)
		var walk func(n *html.Node)
		walk = func(n *html.Node) {
			if n.Type == html.ElementNode {
				if n.DataAtom != atom.A {
					t.Fatalf("linkify(%q) = %q: element %s", text, out, n.Data)
				}
				for _, a := range n.Attr {
					if a.Key == "href" && !regexp.MustCompile(`^(?i)(https?://|mailto:)`).MatchString(browserURL(a.Val)) {
						t.Fatalf("linkify(%q) = %q: href %q", text, out, a.Val)
					}
				}
			}
			for c := n.FirstChild; c != nil; c = c.NextSibling {
				walk(c)
			}
		}
		for _, n := range nodes {
			walk(n)
		}
	})
}

// TestCheckInert: the fuzz property catches what it is there to catch.
func TestCheckInert(t *testing.T) {
	for _, bad := range []string{
		`<a href="javascript:alert(1)">x</a>`, `<a href=" java&#x09;script:alert(1)">x</a>`, `<img src=x onerror=alert(1)>`,
		`<svg></svg>`, `<math></math>`, `<p style="background:url(x)">p</p>`, `<base href="https://e/">`, `<img srcset="a 1x">`,
		`<a href="https://e/" target="_top">t</a>`, `<img src="data:image/svg+xml;base64,PHN2Zz4=">`, `<p id="x">i</p>`,
	} {
		if checkInert(bad) == "" {
			t.Errorf("checkInert(%q) found nothing", bad)
		}
	}
	for _, ok := range []string{`<a href="https://e/" rel="noopener noreferrer" target="_blank">x</a>`, `<img src="/rpc/image?u=x">`, `<p style="color: red">p</p>`} {
		if bad := checkInert(ok); bad != "" {
			t.Errorf("checkInert(%q): %s", ok, bad)
		}
	}
}
