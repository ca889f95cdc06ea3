package keys_test

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/llmgate/gateway/keys"
)

// kek returns a KEK whose key bytes are all b.
func kek(id string, b byte) keys.KEK {
	k := keys.KEK{ID: id}
	for i := range k.Key {
		k.Key[i] = b
	}
	return k
}

func newSealer(t testing.TB, current keys.KEK, old ...keys.KEK) *keys.Sealer {
	t.Helper()
	s, err := keys.NewSealer(current, old...)
	require.NoError(t, err)
	return s
}

func TestSealOpen(t *testing.T) {
	s := newSealer(t, kek("k1", 1))
	aad := keys.AttachedAAD("key_a", "openai")
	for _, tc := range []struct {
		name      string
		plaintext []byte
	}{
		{"empty", nil},
		{"provider key", []byte("sk-proj-abcdefghijklmnopqrstuvwxyz0123456789")},
		{"binary", bytes.Repeat([]byte{0, 0xff}, 1000)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sealed, id, err := s.Seal(tc.plaintext, aad)
			require.NoError(t, err)
			require.Equal(t, "k1", id)
			require.Len(t, sealed, len(tc.plaintext)+1+12+16)
			require.Equal(t, byte(1), sealed[0])
			if len(tc.plaintext) > 4 {
				require.NotContains(t, string(sealed), string(tc.plaintext[:5]))
			}
			got, err := s.Open(sealed, id, aad)
			require.NoError(t, err)
			require.Equal(t, string(tc.plaintext), string(got))

			again, _, err := s.Seal(tc.plaintext, aad)
			require.NoError(t, err)
			require.NotEqual(t, sealed, again, "a fresh nonce each time")
		})
	}
}

func TestSealTamper(t *testing.T) {
	s := newSealer(t, kek("k1", 1))
	aad := keys.AttachedAAD("key_a", "openai")
	sealed, id, err := s.Seal([]byte("sk-secret-value"), aad)
	require.NoError(t, err)
	for i := range sealed {
		for _, bit := range []byte{1, 0x80} {
			c := bytes.Clone(sealed)
			c[i] ^= bit
			_, err := s.Open(c, id, aad)
			require.ErrorIs(t, err, keys.ErrUnseal, "byte %d bit %x", i, bit)
		}
	}
	for _, tc := range []struct {
		name   string
		sealed []byte
	}{
		{"nil", nil},
		{"version only", sealed[:1]},
		{"no tag", sealed[:1+12+15]},
		{"truncated", sealed[:len(sealed)-1]},
		{"extended", append(bytes.Clone(sealed), 0)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.Open(tc.sealed, id, aad)
			require.ErrorIs(t, err, keys.ErrUnseal)
		})
	}
}

func TestSealBinding(t *testing.T) {
	s := newSealer(t, kek("k1", 1), kek("k0", 2))
	sealed, id, err := s.Seal([]byte("sk-secret"), keys.AttachedAAD("key_a", "openai"))
	require.NoError(t, err)
	for _, tc := range []struct {
		name string
		aad  []byte
		kek  string
		want error
	}{
		{"other gateway key", keys.AttachedAAD("key_b", "openai"), id, keys.ErrUnseal},
		{"other provider", keys.AttachedAAD("key_a", "anthropic"), id, keys.ErrUnseal},
		{"ambiguous join", []byte("key_aopenai"), id, keys.ErrUnseal},
		{"no aad", nil, id, keys.ErrUnseal},
		{"other KEK", keys.AttachedAAD("key_a", "openai"), "k0", keys.ErrUnseal},
		{"unknown KEK", keys.AttachedAAD("key_a", "openai"), "k9", keys.ErrUnknownKEK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.Open(sealed, tc.kek, tc.aad)
			require.ErrorIs(t, err, tc.want)
		})
	}
	t.Run("same ID, other key", func(t *testing.T) {
		_, err := newSealer(t, kek("k1", 3)).Open(sealed, "k1", keys.AttachedAAD("key_a", "openai"))
		require.ErrorIs(t, err, keys.ErrUnseal)
	})
}

func TestSealRotation(t *testing.T) {
	aad := keys.AttachedAAD("key_a", "openai")
	before := newSealer(t, kek("2025", 1))
	sealed, id, err := before.Seal([]byte("sk-rotate-me"), aad)
	require.NoError(t, err)

	during := newSealer(t, kek("2026", 2), kek("2025", 1))
	require.Equal(t, "2026", during.Current())
	require.Equal(t, []string{"2025"}, during.Old())
	got, err := during.Open(sealed, id, aad)
	require.NoError(t, err)
	require.Equal(t, "sk-rotate-me", string(got))

	resealed, newID, err := during.Rewrap(sealed, id, aad)
	require.NoError(t, err)
	require.Equal(t, "2026", newID)

	_, _, err = during.Rewrap(sealed, id, keys.AttachedAAD("key_b", "openai"))
	require.ErrorIs(t, err, keys.ErrUnseal, "rewrap checks the binding")

	after := newSealer(t, kek("2026", 2))
	got, err = after.Open(resealed, newID, aad)
	require.NoError(t, err)
	require.Equal(t, "sk-rotate-me", string(got))
	_, err = after.Open(sealed, id, aad)
	require.ErrorIs(t, err, keys.ErrUnknownKEK)
}

func TestSealerAttached(t *testing.T) {
	ctx := t.Context()
	store := keys.NewMemoryStore()
	k, _, err := keys.NewKey("ep")
	require.NoError(t, err)
	_, err = store.Create(ctx, k)
	require.NoError(t, err)

	old := newSealer(t, kek("old", 1))
	const secret = "sk-ant-api03-0123456789abcdefghijklmnopqrstuvwxyz"
	a, err := old.NewAttached(k.ID, "anthropic", secret)
	require.NoError(t, err)
	require.Equal(t, keys.Redact(secret), a.Redacted)
	require.True(t, keys.ValidAttachedID(a.ID))
	a, err = store.Attach(ctx, a)
	require.NoError(t, err)

	got, err := old.OpenAttached(&a)
	require.NoError(t, err)
	require.Equal(t, secret, got)

	// Moved to another gateway key, it no longer opens.
	moved := a
	moved.KeyID = "key_" + strings.Repeat("b", 26)
	_, err = old.OpenAttached(&moved)
	require.ErrorIs(t, err, keys.ErrUnseal)

	rotated := newSealer(t, kek("new", 2), kek("old", 1))
	for _, id := range rotated.Old() {
		n, err := store.Rewrap(ctx, id, rotated.RewrapAttached)
		require.NoError(t, err)
		require.Equal(t, 1, n)
	}
	l, err := store.Attached(ctx, k.ID)
	require.NoError(t, err)
	require.Equal(t, "new", l[0].KEKID)
	got, err = newSealer(t, kek("new", 2)).OpenAttached(&l[0])
	require.NoError(t, err)
	require.Equal(t, secret, got)
}

func TestNewSealerInvalid(t *testing.T) {
	for _, tc := range []struct {
		name    string
		current keys.KEK
		old     []keys.KEK
		fields  []string
	}{
		{"no ID", kek("", 1), nil, []string{"current.id"}},
		{"long ID", kek(strings.Repeat("k", 65), 1), nil, []string{"current.id"}},
		{"non-ASCII ID", kek("clé", 1), nil, []string{"current.id"}},
		{"space in ID", kek("k 1", 1), nil, []string{"current.id"}},
		{"zero key", keys.KEK{ID: "k1"}, nil, []string{"current.key"}},
		{"duplicate", kek("k1", 1), []keys.KEK{kek("k0", 2), kek("k1", 3)}, []string{"old[1].id"}},
		{"every problem", kek("", 1), []keys.KEK{{ID: "k0"}, kek("k0", 2), kek("k0", 3)}, []string{"current.id", "old[0].key", "old[2].id"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := keys.NewSealer(tc.current, tc.old...)
			require.Nil(t, s)
			require.ErrorIs(t, err, keys.ErrInvalid)
			var fields []string
			for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
				var ve *keys.ValidationError
				require.True(t, errors.As(e, &ve))
				fields = append(fields, ve.Field)
			}
			require.Equal(t, tc.fields, fields)
		})
	}
	t.Run("longest ID", func(t *testing.T) {
		_, err := keys.NewSealer(kek(strings.Repeat("k", 64), 1))
		require.NoError(t, err)
	})
}

func TestZeroSealer(t *testing.T) {
	for name, s := range map[string]*keys.Sealer{"zero": {}, "nil": nil} {
		t.Run(name, func(t *testing.T) {
			_, _, err := s.Seal([]byte("x"), nil)
			require.ErrorIs(t, err, keys.ErrUnknownKEK)
			_, err = s.Open(make([]byte, 40), "", nil)
			require.ErrorIs(t, err, keys.ErrUnknownKEK)
			require.NotPanics(t, func() { _ = fmt.Sprint(s) })
		})
	}
}

func TestSecretsDoNotPrint(t *testing.T) {
	k := kek("kek-2026", 0xab)
	s := newSealer(t, k, kek("kek-2025", 0xcd))
	keyHex := hex.EncodeToString(k.Key[:])
	j, err := json.Marshal(struct{ K keys.KEK }{k})
	require.NoError(t, err)
	outs := []string{k.String(), k.GoString(), s.String(), string(j)}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d"} {
		outs = append(outs,
			fmt.Sprintf(verb, k), fmt.Sprintf(verb, &k), fmt.Sprintf(verb, []keys.KEK{k}),
			fmt.Sprintf(verb, struct{ K keys.KEK }{k}), fmt.Sprintf(verb, s), fmt.Sprintf(verb, *s),
			fmt.Sprintf(verb, struct{ S keys.Sealer }{*s}))
	}
	for _, out := range outs {
		require.Contains(t, out, "kek-20")
		require.NotContains(t, strings.ToLower(out), keyHex[:8], out)
		require.NotContains(t, out, "171", out) // 0xab in decimal
		require.NotContains(t, out, string(k.Key[:4]), out)
	}

	// Errors carry neither plaintext nor keys.
	sealed, id, err := s.Seal([]byte("sk-plaintext-secret"), []byte("aad"))
	require.NoError(t, err)
	sealed[len(sealed)-1] ^= 1
	_, err = s.Open(sealed, id, []byte("aad"))
	require.Error(t, err)
	require.NotContains(t, err.Error(), "sk-plaintext")
	require.NotContains(t, err.Error(), keyHex[:8])
}

func FuzzOpen(f *testing.F) {
	s, err := keys.NewSealer(kek("k1", 1), kek("k0", 2))
	require.NoError(f, err)
	sealed, _, err := s.Seal([]byte("sk-seed"), []byte("key_a\x00openai"))
	require.NoError(f, err)
	f.Add(sealed, "k1", []byte("key_a\x00openai"))
	f.Add(sealed[:29], "k0", []byte(nil))
	f.Add([]byte{}, "", []byte{})
	f.Add([]byte{2, 0, 0}, "k1", []byte("x"))
	f.Fuzz(func(t *testing.T, data []byte, kekID string, aad []byte) {
		plaintext, err := s.Open(data, kekID, aad)
		if err == nil {
			// Only a genuine seal opens (the seed; each fuzzing process
			// makes its own).
			require.Equal(t, "sk-seed", string(plaintext))
			return
		}
		require.True(t, errors.Is(err, keys.ErrUnseal) || errors.Is(err, keys.ErrUnknownKEK), err)
	})
}

func FuzzSealRoundTrip(f *testing.F) {
	s, err := keys.NewSealer(kek("k1", 1))
	require.NoError(f, err)
	f.Add([]byte("sk-x"), []byte("key_a\x00openai"))
	f.Fuzz(func(t *testing.T, plaintext, aad []byte) {
		sealed, id, err := s.Seal(plaintext, aad)
		require.NoError(t, err)
		got, err := s.Open(sealed, id, aad)
		require.NoError(t, err)
		require.Equal(t, string(plaintext), string(got))
	})
}

func BenchmarkOpen(b *testing.B) {
	s, err := keys.NewSealer(kek("k1", 1))
	require.NoError(b, err)
	aad := keys.AttachedAAD("key_aaaaaaaaaaaaaaaaaaaaaaaaaa", "openai")
	sealed, id, err := s.Seal([]byte("sk-proj-0123456789abcdefghijklmnopqrstuvwxyz0123456789"), aad)
	require.NoError(b, err)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Open(sealed, id, aad); err != nil {
			b.Fatal(err)
		}
	}
}
