package keys

import (
	"encoding/base64"
	"encoding/binary"
	"time"
)

// ListLimit returns the page size o asks for: MaxListLimit when o.Limit is
// 0, o.Limit when it is 1 to MaxListLimit, and an error wrapping ErrInvalid
// (field "limit") otherwise.
func ListLimit(o *ListOptions) (int, error) {
	switch {
	case o.Limit == 0:
		return MaxListLimit, nil
	case o.Limit < 0 || o.Limit > MaxListLimit:
		return 0, &ValidationError{"limit", "invalid_limit", "must be 0 (the default) to 100"}
	}
	return o.Limit, nil
}

// EncodeCursor returns an opaque list cursor pointing after the key with
// that CreatedAt and ID: base64url of the creation time in Unix
// microseconds and the ID. Stores may use it; a cursor is meaningful only
// to the store that made it.
func EncodeCursor(createdAt time.Time, id string) string {
	b := make([]byte, 8, 8+len(id))
	binary.BigEndian.PutUint64(b, uint64(createdAt.UnixMicro()))
	return base64.RawURLEncoding.EncodeToString(append(b, id...))
}

// DecodeCursor parses a cursor made by EncodeCursor; the time is UTC. A
// malformed cursor is an error wrapping ErrInvalid (field "cursor").
func DecodeCursor(cursor string) (createdAt time.Time, id string, err error) {
	b, err := base64.RawURLEncoding.DecodeString(cursor)
	if err != nil || len(b) < 8 || !ValidID(string(b[8:])) {
		return time.Time{}, "", &ValidationError{"cursor", "invalid_cursor", "is not a cursor of this list"}
	}
	return time.UnixMicro(int64(binary.BigEndian.Uint64(b))).UTC(), string(b[8:]), nil
}
