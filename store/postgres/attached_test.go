package postgres_test

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/llmgate/gateway/keys"
)

func TestAttached(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	k, err := s.Create(ctx, testKey(1))
	require.NoError(t, err)
	var want []keys.AttachedKey
	for i := range 3 {
		a, err := s.Attach(ctx, testAttached(k.ID, "openai", i))
		require.NoError(t, err)
		want = append([]keys.AttachedKey{a}, want...) // newest first
	}

	t.Run("lookup returns them newest first", func(t *testing.T) {
		_, got, err := s.Lookup(ctx, k.Hash)
		require.NoError(t, err)
		require.Equal(t, want, got)
		got, err = s.Attached(ctx, k.ID)
		require.NoError(t, err)
		require.Equal(t, want, got)
	})
	t.Run("rewrap is all or nothing", func(t *testing.T) {
		boom := errors.New("boom")
		calls := 0
		n, err := s.Rewrap(ctx, "kek1", func(a keys.AttachedKey) ([]byte, string, error) {
			calls++
			if calls == 2 {
				return nil, "", boom
			}
			return []byte("new"), "kek2", nil
		})
		require.ErrorIs(t, err, boom)
		require.Zero(t, n)
		got, err := s.Attached(ctx, k.ID)
		require.NoError(t, err)
		require.Equal(t, want, got, "nothing rewrapped")
	})
	t.Run("rewrap refuses an invalid result", func(t *testing.T) {
		_, err := s.Rewrap(ctx, "kek1", func(a keys.AttachedKey) ([]byte, string, error) {
			return []byte("new"), "bad kek", nil
		})
		require.ErrorIs(t, err, keys.ErrInvalid)
	})
	t.Run("rewrap", func(t *testing.T) {
		n, err := s.Rewrap(ctx, "kek1", func(a keys.AttachedKey) ([]byte, string, error) {
			require.Equal(t, k.ID, a.KeyID)
			return append([]byte("re:"), a.Sealed...), "kek2", nil
		})
		require.NoError(t, err)
		require.Equal(t, 3, n)
		got, err := s.Attached(ctx, k.ID)
		require.NoError(t, err)
		for i, a := range got {
			require.Equal(t, "kek2", a.KEKID)
			require.Equal(t, append([]byte("re:"), want[i].Sealed...), a.Sealed)
		}
	})
	t.Run("deleting the key deletes them", func(t *testing.T) {
		require.NoError(t, s.Delete(ctx, k.ID))
		_, err := s.Attached(ctx, k.ID)
		require.ErrorIs(t, err, keys.ErrNotFound)
		_, err = s.Create(ctx, testKey(2))
		require.NoError(t, err)
		_, err = s.Attach(ctx, want[0]) // its ID is free again
		require.ErrorIs(t, err, keys.ErrNotFound, "the gateway key is gone")
		a := want[0]
		a.KeyID = testKey(2).ID
		_, err = s.Attach(ctx, a)
		require.NoError(t, err)
	})
}
