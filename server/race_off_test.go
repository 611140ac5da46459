//go:build !race

package server

// raceBuild: see race_on_test.go.
const raceBuild = false
