//go:build amd64 && !purego

package jsonx

// scanPlain advances from d[i], inside a string literal, over plain
// content and simple escapes (a backslash and one of " \ b f n r t),
// 16 bytes at a time with SSE2, which every amd64 processor has. It stops
// at the first quote, control character or other escape, or where fewer
// than 16 bytes are left, and returns where it stopped with StrEscaped and
// StrNonASCII for what it passed. The Scanner's own loop takes over from
// there; on other architectures (and with the purego build tag) scanPlain
// passes nothing and that loop does all the work.
//
//go:noescape
func scanPlain(d []byte, i int) (j int, f StringFlags)

// The assembly sets StrEscaped as 1 and StrNonASCII as 2, and compares
// the escapes table's entries with escSimple as 1.
const (
	_ = uint8(StrEscaped-1) + uint8(1-StrEscaped)
	_ = uint8(StrNonASCII-2) + uint8(2-StrNonASCII)
	_ = uint8(escSimple-1) + uint8(1-escSimple)
)

// plainFast reports whether scanPlain reads anything.
const plainFast = true
