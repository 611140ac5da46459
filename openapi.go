// Package basalt holds what lives at the repository's root for the rest of
// the module: openapi.yaml, the admin API's contract, which package rest
// serves and renders and its tests validate every request and response
// against.
package basalt

import _ "embed"

//go:embed openapi.yaml
var openapi []byte

// OpenAPI returns openapi.yaml.
func OpenAPI() []byte { return append([]byte(nil), openapi...) }
