package postgres_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/llmgate/gateway/keys"
)

func TestCreateConflict(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	k, err := s.Create(ctx, testKey(1))
	require.NoError(t, err)
	for _, tc := range []struct {
		name       string
		key        keys.Key
		constraint string
	}{
		{"same ID", func() keys.Key { c := testKey(2); c.ID = k.ID; return c }(), "gateway_keys_pkey"},
		{"same hash", func() keys.Key { c := testKey(2); c.Hash = k.Hash; return c }(), "gateway_keys_hash_key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.Create(ctx, tc.key)
			require.ErrorIs(t, err, keys.ErrConflict)
			require.NotErrorIs(t, err, keys.ErrUnavailable)
			require.ErrorContains(t, err, tc.constraint)
		})
	}
}

func TestStoredForm(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	k := testKey(1)
	k.ExpiresAt = time.Date(2030, 1, 2, 3, 4, 5, 999999999, time.FixedZone("Y", -7*3600))
	k.AllowedProviders = []string{} // empty: no restriction, returned nil
	k.AllowedModels = []string{"openai:gpt-4o"}
	created, err := s.Create(ctx, k)
	require.NoError(t, err)
	// The test clock's first reading, truncated to the microsecond.
	require.Equal(t, time.Date(2026, 3, 1, 12, 0, 1, 123456000, time.UTC), created.CreatedAt)
	require.Equal(t, created.CreatedAt, created.UpdatedAt)
	require.Equal(t, time.Date(2030, 1, 2, 10, 4, 5, 999999000, time.UTC), created.ExpiresAt)
	require.Nil(t, created.AllowedProviders)
	got, err := s.Get(ctx, k.ID)
	require.NoError(t, err)
	require.Equal(t, created, got)
	looked, attached, err := s.Lookup(ctx, k.Hash)
	require.NoError(t, err)
	require.Equal(t, created, looked)
	require.Empty(t, attached)

	t.Run("update", func(t *testing.T) {
		u, err := s.Update(ctx, k.ID, keys.Update{ExpiresAt: new(time.Time{}), AllowedModels: new([]string(nil))})
		require.NoError(t, err)
		require.True(t, u.ExpiresAt.IsZero(), "expiry removed")
		require.Nil(t, u.AllowedModels, "restriction removed")
		require.True(t, u.UpdatedAt.After(created.UpdatedAt))
		got, err := s.Get(ctx, k.ID)
		require.NoError(t, err)
		require.Equal(t, u, got)
	})
}

func TestTouchBatch(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	k1, err := s.Create(ctx, testKey(1))
	require.NoError(t, err)
	k2, err := s.Create(ctx, testKey(2))
	require.NoError(t, err)
	t0 := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	require.NoError(t, s.Touch(ctx, []keys.Use{
		{ID: k1.ID, At: t0.Add(time.Minute)},
		{ID: k1.ID, At: t0.Add(3 * time.Minute)}, // the latest of the batch wins
		{ID: k1.ID, At: t0.Add(2 * time.Minute)},
		{ID: k2.ID, At: time.Time{}},     // ignored
		{ID: testID("key_", 99), At: t0}, // unknown: ignored
		{ID: "not an id", At: t0},        // ignored
	}))
	require.NoError(t, s.Touch(ctx, []keys.Use{{ID: k1.ID, At: t0}})) // earlier: no change
	require.NoError(t, s.Touch(ctx, nil))
	got, err := s.Get(ctx, k1.ID)
	require.NoError(t, err)
	require.Equal(t, t0.Add(3*time.Minute), got.LastUsed)
	require.Equal(t, k1.UpdatedAt, got.UpdatedAt, "Touch leaves UpdatedAt")
	got, err = s.Get(ctx, k2.ID)
	require.NoError(t, err)
	require.True(t, got.LastUsed.IsZero())
}

func TestListCursor(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	for i := range 5 {
		_, err := s.Create(ctx, testKey(i))
		require.NoError(t, err)
	}
	p, err := s.List(ctx, keys.ListOptions{Limit: 2})
	require.NoError(t, err)
	require.Equal(t, []string{testID("key_", 4), testID("key_", 3)}, []string{p.Keys[0].ID, p.Keys[1].ID})
	p, err = s.List(ctx, keys.ListOptions{Limit: 2, Cursor: p.NextCursor, Endpoint: "default"})
	require.NoError(t, err)
	require.Equal(t, []string{testID("key_", 2), testID("key_", 1)}, []string{p.Keys[0].ID, p.Keys[1].ID})
	for _, c := range []string{"!", "AAAA", keys.EncodeCursor(time.Now(), "nope")} {
		_, err := s.List(ctx, keys.ListOptions{Cursor: c})
		var ve *keys.ValidationError
		require.ErrorAs(t, err, &ve, c)
		require.Equal(t, "cursor", ve.Field)
	}
}

func BenchmarkLookup(b *testing.B) {
	ctx := context.Background()
	s := newStore(b)
	const n = 1000
	for i := range n {
		k, err := s.Create(ctx, testKey(i))
		require.NoError(b, err)
		for j := range 2 { // two attached keys each
			_, err := s.Attach(ctx, testAttached(k.ID, "openai", i*2+j))
			require.NoError(b, err)
		}
	}
	hashes := make([][32]byte, n)
	for i := range hashes {
		hashes[i] = sha256.Sum256([]byte(fmt.Sprint("token-", i)))
	}
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			_, att, err := s.Lookup(ctx, hashes[i%n])
			if err != nil || len(att) != 2 {
				b.Fatal(err, len(att))
			}
			i++
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				if _, _, err := s.Lookup(ctx, hashes[i%n]); err != nil {
					b.Error(err)
					return
				}
				i++
			}
		})
	})
	b.Run("not found", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, _, err := s.Lookup(ctx, [32]byte{1}); !errors.Is(err, keys.ErrNotFound) {
				b.Fatal(err)
			}
		}
	})
}
