package keys_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/llmgate/gateway/keys"
)

func TestValidateAttached(t *testing.T) {
	k, _, err := keys.NewKey("ep")
	require.NoError(t, err)
	valid := func() keys.AttachedKey {
		return keys.AttachedKey{ID: keys.NewAttachedID(), KeyID: k.ID, Provider: "openai", Redacted: "…ab", Sealed: []byte{1}, KEKID: "kek-1"}
	}
	a := valid()
	require.NoError(t, keys.ValidateAttached(&a))
	for _, tc := range []struct {
		name   string
		change func(a *keys.AttachedKey)
		field  string
	}{
		{"ID", func(a *keys.AttachedKey) { a.ID = "pk_short" }, "id"},
		{"key ID", func(a *keys.AttachedKey) { a.KeyID = "nope" }, "key_id"},
		{"no provider", func(a *keys.AttachedKey) { a.Provider = "" }, "provider"},
		{"long provider", func(a *keys.AttachedKey) { a.Provider = strings.Repeat("p", 256) }, "provider"},
		{"bad UTF-8 provider", func(a *keys.AttachedKey) { a.Provider = "\xff" }, "provider"},
		{"redacted", func(a *keys.AttachedKey) { a.Redacted = "" }, "redacted"},
		{"sealed", func(a *keys.AttachedKey) { a.Sealed = []byte{} }, "sealed"},
		{"KEK ID", func(a *keys.AttachedKey) { a.KEKID = "k\x00" }, "kek_id"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := valid()
			tc.change(&a)
			err := keys.ValidateAttached(&a)
			require.ErrorIs(t, err, keys.ErrInvalid)
			var ve *keys.ValidationError
			require.ErrorAs(t, err, &ve)
			require.Equal(t, tc.field, ve.Field)
		})
	}
}

func TestTooManyAttached(t *testing.T) {
	err := keys.TooManyAttached()
	require.ErrorIs(t, err, keys.ErrInvalid)
	require.Equal(t, "provider", err.Field)
	require.Equal(t, "too_many_attached", err.Code)
}
