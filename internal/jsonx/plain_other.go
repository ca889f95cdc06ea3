//go:build !amd64 || purego

package jsonx

// scanPlain passes nothing: the Scanner's own loop reads the whole
// string (see plain_amd64.go).
func scanPlain(_ []byte, i int) (j int, f StringFlags) { return i, 0 }

// plainFast reports whether scanPlain reads anything.
const plainFast = false
