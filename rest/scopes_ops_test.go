package rest_test

import "testing"

// opsFixtures make the rows of the Target kinds of opsRoutes (routes_ops.go)
// in other.test, as fixtures does for the rest: kind -> path parameters.
func opsFixtures(t *testing.T, v *env) map[string]map[string]string { return nil }
