package keys_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/llmgate/gateway/keys"
	"github.com/llmgate/gateway/keys/keystoretest"
)

func TestMemoryStoreConformance(t *testing.T) {
	t.Run("wall clock", func(t *testing.T) {
		keystoretest.Run(t, func(t *testing.T) keys.KeyStore { return keys.NewMemoryStore() })
	})
	// A stopped clock makes every time equal, so every order falls back
	// to IDs: the tie-breaks are tested.
	t.Run("stopped clock", func(t *testing.T) {
		keystoretest.Run(t, func(t *testing.T) keys.KeyStore {
			s := keys.NewMemoryStore()
			at := time.Date(2030, 1, 2, 3, 4, 5, 6, time.Local)
			s.Now = func() time.Time { return at }
			return s
		})
	})
	t.Run("zero value", func(t *testing.T) {
		keystoretest.Run(t, func(t *testing.T) keys.KeyStore { return new(keys.MemoryStore) })
	})
}

// stepClock is a clock advancing by step at every reading.
type stepClock struct {
	mu   sync.Mutex
	at   time.Time
	step time.Duration
}

func (c *stepClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.at = c.at.Add(c.step)
	return c.at
}

func TestMemoryStoreClock(t *testing.T) {
	ctx := context.Background()
	start := time.Date(2030, 1, 1, 0, 0, 0, 0, time.FixedZone("X", 3600))
	c := &stepClock{at: start, step: 1500 * time.Nanosecond}
	s := keys.NewMemoryStore()
	s.Now = c.now

	k, _, err := keys.NewKey("ep")
	require.NoError(t, err)
	created, err := s.Create(ctx, k)
	require.NoError(t, err)
	want := start.Add(1500 * time.Nanosecond).UTC().Truncate(time.Microsecond)
	require.Equal(t, want, created.CreatedAt)
	require.Equal(t, want, created.UpdatedAt)

	updated, err := s.Update(ctx, k.ID, keys.Update{})
	require.NoError(t, err)
	require.Equal(t, start.Add(3*time.Microsecond).UTC(), updated.UpdatedAt)
	require.Equal(t, want, updated.CreatedAt)

	// A clock stepping back never moves UpdatedAt back.
	c.step = -time.Hour
	again, err := s.Update(ctx, k.ID, keys.Update{})
	require.NoError(t, err)
	require.Equal(t, updated.UpdatedAt, again.UpdatedAt)
}

func TestMemoryStoreRewrapAllOrNothing(t *testing.T) {
	ctx := context.Background()
	s := keys.NewMemoryStore()
	k, _, err := keys.NewKey("ep")
	require.NoError(t, err)
	_, err = s.Create(ctx, k)
	require.NoError(t, err)
	for range 3 {
		_, err := s.Attach(ctx, keys.AttachedKey{ID: keys.NewAttachedID(), KeyID: k.ID, Provider: "openai", Redacted: "…ab", Sealed: []byte{1}, KEKID: "old"})
		require.NoError(t, err)
	}
	calls := 0
	_, err = s.Rewrap(ctx, "old", func(a keys.AttachedKey) ([]byte, string, error) {
		if calls++; calls == 3 {
			return nil, "", context.DeadlineExceeded
		}
		return []byte{2}, "new", nil
	})
	require.ErrorIs(t, err, context.DeadlineExceeded)
	l, err := s.Attached(ctx, k.ID)
	require.NoError(t, err)
	for _, a := range l {
		require.Equal(t, "old", a.KEKID)
	}

	for name, fn := range map[string]func(keys.AttachedKey) ([]byte, string, error){
		"empty sealed": func(keys.AttachedKey) ([]byte, string, error) { return nil, "new", nil },
		"bad KEK ID":   func(keys.AttachedKey) ([]byte, string, error) { return []byte{2}, "", nil },
	} {
		t.Run(name, func(t *testing.T) {
			_, err := s.Rewrap(ctx, "old", fn)
			require.ErrorIs(t, err, keys.ErrInvalid)
		})
	}
}

func TestMemoryStoreRewrapReentrant(t *testing.T) {
	// fn may call the store (it is called without the lock held), and an
	// entry detached meanwhile is not counted.
	ctx := context.Background()
	s := keys.NewMemoryStore()
	k, _, err := keys.NewKey("ep")
	require.NoError(t, err)
	_, err = s.Create(ctx, k)
	require.NoError(t, err)
	var ids []string
	for range 2 {
		a, err := s.Attach(ctx, keys.AttachedKey{ID: keys.NewAttachedID(), KeyID: k.ID, Provider: "openai", Redacted: "…ab", Sealed: []byte{1}, KEKID: "old"})
		require.NoError(t, err)
		ids = append(ids, a.ID)
	}
	n, err := s.Rewrap(ctx, "old", func(a keys.AttachedKey) ([]byte, string, error) {
		if a.ID == ids[0] {
			require.NoError(t, s.Detach(ctx, k.ID, ids[1]))
		}
		if a.ID == ids[1] {
			_, err := s.Attached(ctx, k.ID)
			require.NoError(t, err)
		}
		return []byte{2}, "new", nil
	})
	require.NoError(t, err)
	require.Equal(t, 1, n)
}
