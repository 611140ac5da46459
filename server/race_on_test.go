//go:build race

package server

// raceBuild: the race detector slows the embedded SQLite (pure Go, every
// memory access checked) some twentyfold, so tests that seed in bulk
// seed less under it.
const raceBuild = true
