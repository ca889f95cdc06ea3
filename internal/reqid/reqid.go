// Package reqid makes llmgate's request IDs.
package reqid

import (
	"crypto/rand"
	"encoding/base32"
	"encoding/binary"
	"time"
)

// New returns "req_" and 26 lowercase base32hex characters: the time in
// milliseconds (48 bits) then 80 random bits, so that request IDs sort by
// the time they were made (the stores' usage records, keyed by the request
// ID, then grow at the end of their index instead of touching a random
// page per request).
func New() string {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], uint64(time.Now().UnixMilli())<<16)
	_, _ = rand.Read(b[6:])
	var out [4 + 26]byte
	copy(out[:], "req_")
	base32.HexEncoding.WithPadding(base32.NoPadding).Encode(out[4:], b[:])
	for i := 4; i < len(out); i++ {
		if c := out[i]; c >= 'A' && c <= 'Z' {
			out[i] = c + ('a' - 'A')
		}
	}
	return string(out[:])
}
