package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/llmgate/gateway/keys"
	"github.com/llmgate/gateway/store/postgres"
	"github.com/llmgate/gateway/store/postgres/pgtest"
)

// watch starts w.Watch in a goroutine; notifications arrive on the
// returned channel, Watch's result on done. The watch is stopped when the
// test ends.
func watch(t *testing.T, w keys.Watcher) (changed <-chan [32]byte, done <-chan error, stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan [32]byte, 100)
	d := make(chan error, 1)
	go func() {
		d <- w.Watch(ctx, func(h [32]byte) {
			select {
			case ch <- h:
			default:
			}
		})
	}()
	t.Cleanup(cancel)
	return ch, d, cancel
}

// await repeats change every 100 ms until hash is notified on changed, or
// fails after 2 s: a watch starts listening asynchronously.
func await(t *testing.T, changed <-chan [32]byte, hash [32]byte, change func()) {
	t.Helper()
	deadline := time.After(2 * time.Second)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	change()
	for {
		select {
		case h := <-changed:
			if h == hash {
				return
			}
		case <-tick.C:
			change()
		case <-deadline:
			t.Fatalf("no notification of %x within 2 s", hash[:4])
		}
	}
}

func TestWatch(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.NewDatabase(t)
	a := open(t, dsn, postgres.Options{}) // replica that writes
	b := open(t, dsn, postgres.Options{}) // replica that watches
	other := open(t, dsn, postgres.Options{Schema: "other"})
	k1, err := a.Create(ctx, testKey(1))
	require.NoError(t, err)
	k2, err := a.Create(ctx, testKey(2))
	require.NoError(t, err)
	changed, done, stop := watch(t, b)
	otherChanged, _, _ := watch(t, other)

	// The watch of schema other is live, its own changes seen.
	ko, err := other.Create(ctx, testKey(3))
	require.NoError(t, err)
	await(t, otherChanged, ko.Hash, func() {
		_, err := other.Update(ctx, ko.ID, keys.Update{Description: new("live")})
		require.NoError(t, err)
	})

	t.Run("update on another store", func(t *testing.T) {
		await(t, changed, k1.Hash, func() {
			_, err := a.Update(ctx, k1.ID, keys.Update{Description: new("seen")})
			require.NoError(t, err)
		})
	})
	t.Run("delete on another store", func(t *testing.T) {
		// No repeat: the watch is live, the one delete must be seen.
		once := false
		await(t, changed, k2.Hash, func() {
			if !once {
				require.NoError(t, a.Delete(ctx, k2.ID))
				once = true
			}
		})
	})
	t.Run("reconnects after losing its connection", func(t *testing.T) {
		n := queryInt(t, dsn, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
			WHERE datname = current_database() AND application_name = $1`, postgres.WatchApplicationName)
		require.Equal(t, 2, n, "the two watches' connections (both live)")
		await(t, changed, k1.Hash, func() {
			_, err := a.Update(ctx, k1.ID, keys.Update{Metadata: new("after reconnect")})
			require.NoError(t, err)
		})
	})
	t.Run("another schema is not notified", func(t *testing.T) {
		for {
			select {
			case h := <-otherChanged:
				require.NotContains(t, [][32]byte{k1.Hash, k2.Hash}, h, "schema other notified of schema llmgate's change")
			default:
				return
			}
		}
	})
	t.Run("ends with its context", func(t *testing.T) {
		stop()
		select {
		case err := <-done:
			require.ErrorIs(t, err, context.Canceled)
		case <-time.After(10 * time.Second):
			t.Fatal("Watch did not return")
		}
	})
}

func TestWatchClose(t *testing.T) {
	s, err := postgres.Open(context.Background(), pgtest.NewDatabase(t), postgres.Options{})
	require.NoError(t, err)
	_, done, _ := watch(t, s)
	require.NoError(t, s.Close())
	select {
	case err := <-done:
		require.ErrorIs(t, err, keys.ErrUnavailable)
	case <-time.After(10 * time.Second):
		t.Fatal("Watch did not return after Close")
	}
}
