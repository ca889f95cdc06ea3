package keys_test

import (
	"encoding/base64"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/llmgate/gateway/keys"
)

func TestListLimit(t *testing.T) {
	for _, tc := range []struct {
		limit, want int
		ok          bool
	}{
		{0, keys.MaxListLimit, true},
		{1, 1, true},
		{keys.MaxListLimit, keys.MaxListLimit, true},
		{keys.MaxListLimit + 1, 0, false},
		{-1, 0, false},
	} {
		got, err := keys.ListLimit(&keys.ListOptions{Limit: tc.limit})
		if !tc.ok {
			var ve *keys.ValidationError
			require.ErrorAs(t, err, &ve)
			require.Equal(t, "limit", ve.Field)
			require.ErrorIs(t, err, keys.ErrInvalid)
			continue
		}
		require.NoError(t, err)
		require.Equal(t, tc.want, got)
	}
}

func TestCursor(t *testing.T) {
	k, _, err := keys.NewKey("ep")
	require.NoError(t, err)
	at := time.Date(2026, 12, 6, 22, 0, 0, 123456000, time.UTC)
	c := keys.EncodeCursor(at, k.ID)
	gotAt, gotID, err := keys.DecodeCursor(c)
	require.NoError(t, err)
	require.Equal(t, at, gotAt)
	require.Equal(t, k.ID, gotID)

	for name, bad := range map[string]string{
		"empty":       "",
		"not base64":  "!!",
		"short":       base64.RawURLEncoding.EncodeToString([]byte{1, 2, 3}),
		"time only":   base64.RawURLEncoding.EncodeToString(make([]byte, 8)),
		"bad ID":      base64.RawURLEncoding.EncodeToString(append(make([]byte, 8), "key_x"...)),
		"padded":      c + "==",
		"std base64+": "+" + c[1:],
	} {
		t.Run(name, func(t *testing.T) {
			_, _, err := keys.DecodeCursor(bad)
			var ve *keys.ValidationError
			require.ErrorAs(t, err, &ve)
			require.Equal(t, "cursor", ve.Field)
		})
	}
}
