// Package layering holds the test that enforces the architecture's
// dependency rules; it has no code of its own.
package layering
