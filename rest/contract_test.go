package rest_test

import (
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"basalt/internal/testsupport"
	"basalt/rest"
)

// TestSpecAndRoutes: openapi.yaml passes kin-openapi's validator, and its
// paths and methods are exactly the route table's.
func TestSpecAndRoutes(t *testing.T) {
	doc := loadSpec(t)
	v := newEnv(t, testsupport.Database{Driver: "sqlite", DSN: testsupport.SQLiteDSN(t)}, rest.Config{})
	inTable := map[string]bool{}
	for _, r := range v.api.Routes() {
		inTable[r.Method+" "+r.Path] = true
		if strings.HasSuffix(r.Scope, ":read") && r.Method != http.MethodGet {
			t.Errorf("%s %s changes something but needs only %s", r.Method, r.Path, r.Scope)
		}
		if r.Method != http.MethodGet && r.Scope == "" {
			t.Errorf("%s %s is open to anyone", r.Method, r.Path)
		}
		// A Listed route filters a collection by the key's domains; one
		// that names a row (a path parameter) must say how to find the
		// row's domain instead, or a limited key would read any row.
		if r.Domain.IsListed() && (r.Method != http.MethodGet || strings.Contains(r.Path, "{")) {
			t.Errorf("%s %s: Listed is for reading a collection (no path parameter)", r.Method, r.Path)
		}
		// Shared lets a key of any domain in: only for what belongs to
		// no domain, which is the plans (a new kind is added here, on
		// purpose).
		if r.Domain.IsShared() && (r.Method != http.MethodGet || r.Scope != "plans:read") {
			t.Errorf("%s %s: Shared is for reading plans only", r.Method, r.Path)
		}
	}
	inSpec := map[string]bool{}
	for path, item := range doc.Paths.Map() {
		for m := range item.Operations() {
			inSpec[m+" "+path] = true
		}
	}
	var missing, extra []string
	for k := range inTable {
		if !inSpec[k] {
			missing = append(missing, k)
		}
	}
	for k := range inSpec {
		if !inTable[k] {
			extra = append(extra, k)
		}
	}
	sort.Strings(missing)
	sort.Strings(extra)
	for _, k := range missing {
		t.Errorf("route %s is not in openapi.yaml", k)
	}
	for _, k := range extra {
		t.Errorf("openapi.yaml has %s, which no route serves", k)
	}
}

// problemSlug finds the slugs the package's problems are made with.
var problemSlug = regexp.MustCompile(`(?:NewProblem\(http\.Status\w+,|BadRequest\(|Conflict\()\s*"([a-z-]+)"`)

// TestProblemTypesDocumented: every problem type the package answers
// with is listed, with its status, in openapi.yaml's Problem schema,
// which is where a client learns what it may branch on; and the spec
// lists none the package never answers.
func TestProblemTypesDocumented(t *testing.T) {
	doc := loadSpec(t)
	desc := doc.Components.Schemas["Problem"].Value.Properties["type"].Value.Description
	listed := map[string]bool{}
	for _, m := range regexp.MustCompile("`([a-z-]+)`").FindAllStringSubmatch(desc, -1) {
		listed[m[1]] = true
	}
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	used := map[string]bool{}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range problemSlug.FindAllStringSubmatch(string(b), -1) {
			used[m[1]] = true
		}
	}
	if len(used) < 10 {
		t.Fatalf("found only %v: the pattern no longer matches how problems are made", used)
	}
	for s := range used {
		if !listed[s] {
			t.Errorf("problem type %q is not listed in openapi.yaml's Problem.type", s)
		}
	}
	for s := range listed {
		if !used[s] {
			t.Errorf("openapi.yaml lists problem type %q, which nothing answers", s)
		}
	}
}
