package rest

import (
	"bytes"
	"context"
	_ "embed"
	"fmt"
	"html/template"
	"net/http"
	"sort"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
)

//go:embed docs.css
var docsCSS []byte

// docsCSP: the page runs no script at all and loads only its own style.
const docsCSP = "default-src 'none'; style-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

type docOp struct {
	Method, Path, ID, Summary, Description, Scope string
	Params                                        []docParam
	Body                                          string
	Responses                                     []docResp
}

type docParam struct{ Name, In, Type, Description string }

type docResp struct{ Status, Description, Schema string }

type docSchema struct {
	Name   string
	Fields []docParam
}

var docsTmpl = template.Must(template.New("docs").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}} — reference</title><link rel="stylesheet" href="/api/docs.css"></head>
<body><header class="top"><h1>{{.Title}} <span class="ver">{{.Version}}</span></h1>
<p><a href="/api/v1/openapi.yaml">openapi.yaml</a></p></header>
<div class="layout"><nav aria-label="Operations"><ul>{{range .Ops}}<li><a href="#{{.ID}}"><span class="m m-{{.Method}}">{{.Method}}</span> {{.Path}}</a></li>{{end}}</ul>
<h2>Schemas</h2><ul>{{range .Schemas}}<li><a href="#schema-{{.Name}}">{{.Name}}</a></li>{{end}}</ul></nav>
<main><section class="intro">{{range .Intro}}<p>{{.}}</p>{{end}}</section>
{{range .Ops}}<section class="op" id="{{.ID}}"><h2><span class="m m-{{.Method}}">{{.Method}}</span> <code>{{.Path}}</code></h2>
<p class="summary">{{.Summary}}</p>{{if .Description}}<p>{{.Description}}</p>{{end}}
{{if .Params}}<h3>Parameters</h3><table><thead><tr><th>Name</th><th>In</th><th>Type</th><th>Description</th></tr></thead><tbody>
{{range .Params}}<tr><td><code>{{.Name}}</code></td><td>{{.In}}</td><td>{{.Type}}</td><td>{{.Description}}</td></tr>{{end}}</tbody></table>{{end}}
{{if .Body}}<h3>Body</h3><p>{{.Body}}</p>{{end}}
<h3>Responses</h3><table><thead><tr><th>Status</th><th>Description</th><th>Schema</th></tr></thead><tbody>
{{range .Responses}}<tr><td>{{.Status}}</td><td>{{.Description}}</td><td>{{if .Schema}}<a href="#schema-{{.Schema}}">{{.Schema}}</a>{{end}}</td></tr>{{end}}</tbody></table></section>{{end}}
<h2>Schemas</h2>{{range .Schemas}}<section class="schema" id="schema-{{.Name}}"><h3>{{.Name}}</h3>
{{if .Fields}}<table><thead><tr><th>Field</th><th>Type</th><th>Description</th></tr></thead><tbody>{{range .Fields}}<tr><td><code>{{.Name}}</code></td><td>{{.Type}}</td><td>{{.Description}}</td></tr>{{end}}</tbody></table>{{end}}</section>{{end}}
</main></div></body></html>
`))

// renderDocs renders the reference page from the spec, once: the page is
// Basalt's own HTML and CSS, with no script and nothing from elsewhere.
func renderDocs(spec []byte) ([]byte, error) {
	doc, err := openapi3.NewLoader().LoadFromData(spec)
	if err != nil {
		return nil, fmt.Errorf("load openapi.yaml: %w", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		return nil, fmt.Errorf("openapi.yaml: %w", err)
	}
	var ops []docOp
	for _, path := range doc.Paths.InMatchingOrder() {
		item := doc.Paths.Value(path)
		for method, op := range item.Operations() {
			d := docOp{Method: method, Path: path, ID: op.OperationID, Summary: op.Summary, Description: op.Description}
			for _, p := range append(append(openapi3.Parameters{}, item.Parameters...), op.Parameters...) {
				if p.Value == nil {
					continue
				}
				d.Params = append(d.Params, docParam{Name: p.Value.Name, In: p.Value.In, Type: schemaType(p.Value.Schema), Description: p.Value.Description})
			}
			if op.RequestBody != nil && op.RequestBody.Value != nil {
				for ct, mt := range op.RequestBody.Value.Content {
					d.Body = ct + ": " + schemaType(mt.Schema)
				}
			}
			codes := op.Responses.Map()
			keys := make([]string, 0, len(codes))
			for k := range codes {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				r := codes[k]
				if r.Value == nil {
					continue
				}
				dr := docResp{Status: k}
				if r.Value.Description != nil {
					dr.Description = *r.Value.Description
				}
				for _, mt := range r.Value.Content {
					dr.Schema = refName(mt.Schema)
				}
				d.Responses = append(d.Responses, dr)
			}
			ops = append(ops, d)
		}
	}
	sort.SliceStable(ops, func(i, j int) bool {
		if ops[i].Path != ops[j].Path {
			return ops[i].Path < ops[j].Path
		}
		return ops[i].Method < ops[j].Method
	})
	var schemas []docSchema
	names := make([]string, 0, len(doc.Components.Schemas))
	for n := range doc.Components.Schemas {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		s := doc.Components.Schemas[n].Value
		ds := docSchema{Name: n}
		props := make([]string, 0, len(s.Properties))
		for p := range s.Properties {
			props = append(props, p)
		}
		sort.Strings(props)
		for _, p := range props {
			ds.Fields = append(ds.Fields, docParam{Name: p, Type: schemaType(s.Properties[p]), Description: s.Properties[p].Value.Description})
		}
		schemas = append(schemas, ds)
	}
	var buf bytes.Buffer
	err = docsTmpl.Execute(&buf, map[string]any{"Title": doc.Info.Title, "Version": doc.Info.Version,
		"Intro": strings.Split(strings.TrimSpace(doc.Info.Description), "\n\n"), "Ops": ops, "Schemas": schemas})
	if err != nil {
		return nil, fmt.Errorf("render docs: %w", err)
	}
	return buf.Bytes(), nil
}

func refName(s *openapi3.SchemaRef) string {
	if s == nil {
		return ""
	}
	if s.Ref != "" {
		return s.Ref[strings.LastIndexByte(s.Ref, '/')+1:]
	}
	return ""
}

func schemaType(s *openapi3.SchemaRef) string {
	if s == nil {
		return ""
	}
	if n := refName(s); n != "" {
		return n
	}
	if s.Value == nil || s.Value.Type == nil {
		return "any"
	}
	t := strings.Join(s.Value.Type.Slice(), "|")
	if t == "array" && s.Value.Items != nil {
		return schemaType(s.Value.Items) + "[]"
	}
	if s.Value.Format != "" {
		t += " (" + s.Value.Format + ")"
	}
	return t
}

func (a *API) serveDocs(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", docsCSP)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	if strings.HasSuffix(r.URL.Path, ".css") {
		h.Set("Content-Type", "text/css; charset=utf-8")
		w.Write(docsCSS)
		return
	}
	h.Set("Content-Type", "text/html; charset=utf-8")
	w.Write(a.docs)
}
