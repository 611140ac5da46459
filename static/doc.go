// Package static is the browser webmail: a single-page app of plain ES
// modules (no build step), embedded in the binary and served by the HTTP
// core at /mail/. Handler serves it with its security headers (a CSP that
// forbids inline script and eval and requires Trusted Types), content
// hashes as ETags, gzip made once at start, and immutable caching of the
// assets under a version path derived from their content.
package static
