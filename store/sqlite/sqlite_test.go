package sqlite

import (
	"context"
	"crypto/sha256"
	"encoding/base32"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/llmgate/gateway/keys"
	"github.com/llmgate/gateway/keys/keystoretest"
)

// TestMain checks that no goroutine (the writer, the checkpointer)
// outlives the Stores that started it.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testClock is a clock that moves one millisecond per reading.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func newTestClock() *testClock {
	return &testClock{t: time.Date(2025, 3, 1, 12, 0, 0, 123456789, time.UTC)}
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(time.Millisecond)
	return c.t
}

// openTest opens a fresh store in t.TempDir() with a test clock.
func openTest(t testing.TB) *Store {
	t.Helper()
	s, err := Open(context.Background(), filepath.Join(t.TempDir(), "llmgate.db"), Options{Now: newTestClock().Now})
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	return s
}

// testID returns a valid ID with prefix ("key_" or "pk_") for n.
func testID(prefix string, n uint64) string {
	var b [16]byte
	binary.BigEndian.PutUint64(b[8:], n)
	return prefix + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:]))
}

// testKey returns a valid key for n on endpoint.
func testKey(n uint64, endpoint string) keys.Key {
	id := testID("key_", n)
	return keys.Key{
		ID:       id,
		Hash:     sha256.Sum256([]byte("token-" + id)),
		Redacted: "lg-test…" + id[len(id)-4:],
		Endpoint: endpoint,
	}
}

func TestOpen(t *testing.T) {
	t.Run("wal and pragmas", func(t *testing.T) {
		s := openTest(t)
		ctx := context.Background()
		var mode string
		require.NoError(t, s.r.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode))
		require.Equal(t, "wal", mode)
		var fk, sync, busy, qo int
		require.NoError(t, s.r.QueryRowContext(ctx, "PRAGMA foreign_keys").Scan(&fk))
		require.NoError(t, s.r.QueryRowContext(ctx, "PRAGMA synchronous").Scan(&sync))
		require.NoError(t, s.r.QueryRowContext(ctx, "PRAGMA busy_timeout").Scan(&busy))
		require.NoError(t, s.r.QueryRowContext(ctx, "PRAGMA query_only").Scan(&qo))
		require.Equal(t, []int{1, 1, 5000, 1}, []int{fk, sync, busy, qo})
		require.NoError(t, s.w.QueryRowContext(ctx, "PRAGMA foreign_keys").Scan(&fk))
		require.NoError(t, s.w.QueryRowContext(ctx, "PRAGMA query_only").Scan(&qo))
		require.Equal(t, []int{1, 0}, []int{fk, qo})
	})
	t.Run("file URI", func(t *testing.T) {
		s, err := Open(context.Background(), "file:"+filepath.Join(t.TempDir(), "x.db")+"?cache=private", Options{})
		require.NoError(t, err)
		defer s.Close()
		_, err = s.Create(context.Background(), testKey(1, "e"))
		require.NoError(t, err)
	})
	t.Run("memory", func(t *testing.T) {
		s, err := Open(context.Background(), ":memory:", Options{})
		require.NoError(t, err)
		defer s.Close()
		k, err := s.Create(context.Background(), testKey(1, "e"))
		require.NoError(t, err)
		got, _, err := s.Lookup(context.Background(), k.Hash)
		require.NoError(t, err)
		require.Equal(t, k, got)
	})
	t.Run("empty dsn", func(t *testing.T) {
		_, err := Open(context.Background(), "", Options{})
		require.Error(t, err)
	})
	t.Run("unopenable path", func(t *testing.T) {
		_, err := Open(context.Background(), filepath.Join(t.TempDir(), "missing", "dir", "x.db"), Options{})
		require.Error(t, err)
	})
}

func TestClosedStoreUnavailable(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	k, err := s.Create(ctx, testKey(1, "e"))
	require.NoError(t, err)
	require.NoError(t, s.Ping(ctx))
	require.NoError(t, s.Close())

	calls := map[string]func() error{
		"Ping":   func() error { return s.Ping(ctx) },
		"Lookup": func() error { _, _, err := s.Lookup(ctx, k.Hash); return err },
		"Create": func() error { _, err := s.Create(ctx, testKey(2, "e")); return err },
		"Get":    func() error { _, err := s.Get(ctx, k.ID); return err },
		"List":   func() error { _, err := s.List(ctx, keys.ListOptions{}); return err },
		"Update": func() error { d := "x"; _, err := s.Update(ctx, k.ID, keys.Update{Description: &d}); return err },
		"Delete": func() error { return s.Delete(ctx, k.ID) },
		"Touch":  func() error { return s.Touch(ctx, []keys.Use{{ID: k.ID, At: time.Now()}}) },
		"Attach": func() error {
			_, err := s.Attach(ctx, keys.AttachedKey{ID: testID("pk_", 1), KeyID: k.ID, Provider: "openai", Redacted: "sk-…abcd", Sealed: []byte{1}, KEKID: "kek1"})
			return err
		},
		"Detach":   func() error { return s.Detach(ctx, k.ID, testID("pk_", 1)) },
		"Attached": func() error { _, err := s.Attached(ctx, k.ID); return err },
		"Rewrap": func() error {
			_, err := s.Rewrap(ctx, "kek1", func(a keys.AttachedKey) ([]byte, string, error) { return a.Sealed, "kek2", nil })
			return err
		},
	}
	for name, call := range calls {
		t.Run(name, func(t *testing.T) {
			err := call()
			require.ErrorIs(t, err, keys.ErrUnavailable)
			require.NotErrorIs(t, err, keys.ErrNotFound)
		})
	}
}

func TestCanceledContextUnavailable(t *testing.T) {
	s := openTest(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := s.Create(ctx, testKey(1, "e"))
	require.ErrorIs(t, err, keys.ErrUnavailable)
	require.ErrorIs(t, err, context.Canceled)
	_, _, err = s.Lookup(ctx, [32]byte{1})
	require.ErrorIs(t, err, keys.ErrUnavailable)
}

func TestKeyStore(t *testing.T) {
	keystoretest.Run(t, func(t *testing.T) keys.KeyStore {
		s, err := Open(context.Background(), filepath.Join(t.TempDir(), "llmgate.db"), Options{})
		require.NoError(t, err)
		t.Cleanup(func() { s.Close() })
		return s
	})
}

// TestBackgroundCheckpoint: with SQLite's automatic checkpoint off, the
// background checkpointer keeps the write-ahead log from growing without
// bound; without either, it would hold every write.
func TestBackgroundCheckpoint(t *testing.T) {
	walSize := func(t *testing.T, interval time.Duration) int64 {
		dir := t.TempDir()
		path := filepath.Join(dir, "ck.db")
		s, err := Open(context.Background(), path, Options{CheckpointInterval: interval})
		require.NoError(t, err)
		defer s.Close()
		var peak int64
		for i := range 600 {
			k, _, err := keys.NewKey("gw")
			require.NoError(t, err)
			_, err = s.Create(context.Background(), k)
			require.NoError(t, err)
			if i%50 == 49 {
				time.Sleep(3 * interval) // let the checkpointer run
				if fi, err := os.Stat(path + "-wal"); err == nil {
					peak = max(peak, fi.Size())
				}
			}
		}
		return peak
	}
	with := walSize(t, 5*time.Millisecond)
	// 600 keys write about 14 MB of log frames: without checkpoints the log
	// would hold them all.
	require.Less(t, with, int64(8<<20), "the log is reused once checkpointed")
	s, err := Open(context.Background(), filepath.Join(t.TempDir(), "x.db"), Options{})
	require.NoError(t, err)
	require.NoError(t, s.Close())
	require.NoError(t, s.Close(), "Close is idempotent")
}
