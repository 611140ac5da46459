package rpc

import (
	"strings"
	"testing"
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
