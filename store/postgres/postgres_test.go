package postgres_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/llmgate/gateway/keys"
	"github.com/llmgate/gateway/keys/keystoretest"
	"github.com/llmgate/gateway/store/postgres"
	"github.com/llmgate/gateway/store/postgres/pgtest"
)

// clock is a test clock: each reading is one second after the previous.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock {
	return &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 123456789, time.UTC)}
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(time.Second)
	return c.t
}

// open opens a store on dsn, closed when the test ends.
func open(t testing.TB, dsn string, o postgres.Options) *postgres.Store {
	t.Helper()
	s, err := postgres.Open(context.Background(), dsn, o)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, s.Close()) })
	return s
}

// newStore opens a store with a test clock on a fresh database.
func newStore(t testing.TB) *postgres.Store {
	t.Helper()
	return open(t, pgtest.NewDatabase(t), postgres.Options{Now: newClock().Now})
}

// testID returns a valid ID with prefix ("key_", "pk_") for n.
func testID(prefix string, n int) string {
	const alphabet = "abcdefghijklmnopqrstuvwxyz234567"
	b := []byte(fmt.Sprintf("%026d", n))
	for i, c := range b {
		b[i] = alphabet[(int(c-'0')+i)%len(alphabet)]
	}
	return prefix + string(b)
}

// testKey returns a valid key numbered n on endpoint "default".
func testKey(n int) keys.Key {
	return keys.Key{
		ID:       testID("key_", n),
		Hash:     sha256.Sum256([]byte(fmt.Sprint("token-", n))),
		Redacted: fmt.Sprintf("lg-…%04d", n),
		Endpoint: "default",
	}
}

// testAttached returns a valid attached key numbered n for keyID.
func testAttached(keyID, provider string, n int) keys.AttachedKey {
	return keys.AttachedKey{
		ID:       testID("pk_", n),
		KeyID:    keyID,
		Provider: provider,
		Redacted: fmt.Sprintf("sk-…%04d", n),
		Sealed:   []byte(fmt.Sprint("sealed-", n)),
		KEKID:    "kek1",
	}
}

func TestOpen(t *testing.T) {
	ctx := context.Background()
	t.Run("invalid schema", func(t *testing.T) {
		for _, schema := range []string{"Upper", "has space", "1starts_with_digit", "x\"y", "a_schema_name_longer_than_forty_characters_x"} {
			_, err := postgres.Open(ctx, "postgres://127.0.0.1:1/x", postgres.Options{Schema: schema})
			require.ErrorContains(t, err, "schema", schema)
		}
	})
	t.Run("invalid dsn", func(t *testing.T) {
		_, err := postgres.Open(ctx, "postgres://[::1", postgres.Options{})
		require.Error(t, err)
	})
	t.Run("unreachable server", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		_, err := postgres.Open(ctx, "postgres://postgres@127.0.0.1:1/postgres?sslmode=disable&connect_timeout=2", postgres.Options{})
		require.ErrorIs(t, err, keys.ErrUnavailable)
	})
	t.Run("default schema", func(t *testing.T) {
		s := open(t, pgtest.NewDatabase(t), postgres.Options{})
		require.Equal(t, postgres.DefaultSchema, s.Schema())
	})
}

func TestSchemas(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.NewDatabase(t)
	a := open(t, dsn, postgres.Options{Schema: "tenant_a"})
	b := open(t, dsn, postgres.Options{Schema: "tenant_b"})
	k := testKey(1)
	_, err := a.Create(ctx, k)
	require.NoError(t, err)
	_, err = b.Create(ctx, k) // same ID and hash, other schema: no conflict
	require.NoError(t, err)
	require.NoError(t, a.Delete(ctx, k.ID))
	_, err = a.Get(ctx, k.ID)
	require.ErrorIs(t, err, keys.ErrNotFound)
	_, err = b.Get(ctx, k.ID)
	require.NoError(t, err)
}

func TestClosedStore(t *testing.T) {
	ctx := context.Background()
	s, err := postgres.Open(ctx, pgtest.NewDatabase(t), postgres.Options{})
	require.NoError(t, err)
	k, err := s.Create(ctx, testKey(1))
	require.NoError(t, err)
	require.NoError(t, s.Ping(ctx))
	require.NoError(t, s.Close())
	require.NoError(t, s.Close()) // twice: a no-op

	calls := map[string]func() error{
		"Ping":   func() error { return s.Ping(ctx) },
		"Lookup": func() error { _, _, err := s.Lookup(ctx, k.Hash); return err },
		"Create": func() error { _, err := s.Create(ctx, testKey(2)); return err },
		"Get":    func() error { _, err := s.Get(ctx, k.ID); return err },
		"List":   func() error { _, err := s.List(ctx, keys.ListOptions{}); return err },
		"Update": func() error { _, err := s.Update(ctx, k.ID, keys.Update{}); return err },
		"Delete": func() error { return s.Delete(ctx, k.ID) },
		"Touch":  func() error { return s.Touch(ctx, []keys.Use{{ID: k.ID, At: time.Now()}}) },
		"Attach": func() error {
			_, err := s.Attach(ctx, testAttached(k.ID, "openai", 1))
			return err
		},
		"Detach":   func() error { return s.Detach(ctx, k.ID, testID("pk_", 1)) },
		"Attached": func() error { _, err := s.Attached(ctx, k.ID); return err },
		"Rewrap": func() error {
			_, err := s.Rewrap(ctx, "kek1", func(a keys.AttachedKey) ([]byte, string, error) { return a.Sealed, "kek2", nil })
			return err
		},
		"Watch": func() error { return s.Watch(ctx, func([32]byte) {}) },
	}
	for name, call := range calls {
		t.Run(name, func(t *testing.T) {
			require.ErrorIs(t, call(), keys.ErrUnavailable)
		})
	}
}

func TestContext(t *testing.T) {
	s := newStore(t)
	k, err := s.Create(context.Background(), testKey(1))
	require.NoError(t, err)
	t.Run("canceled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, _, err := s.Lookup(ctx, k.Hash)
		require.ErrorIs(t, err, context.Canceled)
		_, err = s.Attach(ctx, testAttached(k.ID, "openai", 1))
		require.ErrorIs(t, err, context.Canceled)
	})
	t.Run("deadline", func(t *testing.T) {
		ctx, cancel := context.WithDeadline(context.Background(), time.Unix(0, 0))
		defer cancel()
		_, err := s.Get(ctx, k.ID)
		require.ErrorIs(t, err, context.DeadlineExceeded)
		require.ErrorIs(t, err, keys.ErrUnavailable)
	})
}

func TestConformance(t *testing.T) {
	t.Run("system clock", func(t *testing.T) {
		keystoretest.Run(t, func(t *testing.T) keys.KeyStore {
			return open(t, pgtest.NewDatabase(t), postgres.Options{})
		})
	})
	t.Run("stopped clock", func(t *testing.T) {
		// Every time ties: orders fall back on IDs.
		stopped := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
		keystoretest.Run(t, func(t *testing.T) keys.KeyStore {
			return open(t, pgtest.NewDatabase(t), postgres.Options{Now: func() time.Time { return stopped }})
		})
	})
}
