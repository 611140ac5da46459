//go:build pprof

package main

import (
	"net/http"
	_ "net/http/pprof"
	"os"
)

// Built with -tags pprof, basalt serves Go's profiler on $BASALT_PPROF
// (e.g. 127.0.0.1:6060), for measuring the server under load.
func init() {
	if addr := os.Getenv("BASALT_PPROF"); addr != "" {
		go http.ListenAndServe(addr, nil)
	}
}
