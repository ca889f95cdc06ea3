package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/llmgate/gateway/credits"
	"github.com/llmgate/gateway/credits/creditstest"
)

// pausedWriter holds the writer connection, so that the writer goroutine,
// once it has taken a write, waits for it in begin, and the writes queued
// meanwhile go into the same batch, in the order queue queued them.
type pausedWriter struct {
	t      *testing.T
	s      *Store
	conn   *sql.Conn
	waits  int64 // the writer pool's WaitCount when paused
	queued int
}

func pauseWriter(t *testing.T, s *Store) *pausedWriter {
	t.Helper()
	conn, err := s.w.Conn(context.Background())
	require.NoError(t, err)
	p := &pausedWriter{t: t, s: s, conn: conn, waits: s.w.Stats().WaitCount}
	t.Cleanup(p.resume) // before the Store's Close, which waits for the writer
	return p
}

// queue runs call in a goroutine and returns, once the call's write is
// queued, the channel that gets its error.
func (p *pausedWriter) queue(call func() error) <-chan error {
	p.t.Helper()
	done := make(chan error, 1)
	go func() { done <- call() }()
	p.queued++
	if p.queued == 1 {
		// The writer took it and waits for the connection.
		require.Eventually(p.t, func() bool { return p.s.w.Stats().WaitCount > p.waits }, 5*time.Second, time.Millisecond)
	} else {
		require.Eventually(p.t, func() bool { return len(p.s.queue) == p.queued-1 }, 5*time.Second, time.Millisecond)
	}
	return done
}

// resume gives the connection back to the writer.
func (p *pausedWriter) resume() { _ = p.conn.Close() }

func reservation(id, account string, maxA, minA credits.Amount) credits.Reservation {
	return credits.Reservation{ID: id, Account: account, Max: maxA, Min: minA, TTL: time.Minute}
}

func TestGroupCommit(t *testing.T) {
	ledgerStores(t, func(t *testing.T, s *Store, clock *creditstest.Clock) {
		ctx := context.Background()
		buy(t, s, "p1", "acct", 10*credits.Dollar)
		reserve(t, s, "open", "acct", 2*credits.Dollar, 2*credits.Dollar)
		require.NoError(t, s.Record(ctx, testRecord("r1", clock.Now())))
		other := testRecord("r1", clock.Now())
		other.Cost++
		txs := txKinds(t, s, "acct")

		p := pauseWriter(t, s)
		reserveA := p.queue(func() error {
			_, err := s.Reserve(ctx, reservation("a", "acct", 3*credits.Dollar, 3*credits.Dollar))
			return err
		})
		tooMuch := p.queue(func() error {
			_, err := s.Reserve(ctx, reservation("b", "acct", 100*credits.Dollar, 100*credits.Dollar))
			return err
		})
		settleConflict := p.queue(func() error {
			// It settles the hold, then fails on the record: all of it rolls back.
			_, err := s.Settle(ctx, "open", credits.Dollar, other)
			return err
		})
		releaseUnknown := p.queue(func() error { return s.Release(ctx, "nope") })
		reserveAOther := p.queue(func() error {
			_, err := s.Reserve(ctx, reservation("a", "other", credits.Dollar, credits.Dollar))
			return err
		})
		reserveC := p.queue(func() error {
			_, err := s.Reserve(ctx, reservation("c", "acct", 5*credits.Dollar, 5*credits.Dollar))
			return err
		})
		nothingLeft := p.queue(func() error {
			_, err := s.Reserve(ctx, reservation("d", "acct", credits.Dollar, 1))
			return err
		})
		record := p.queue(func() error { return s.Record(ctx, testRecord("r2", clock.Now())) })
		p.resume()

		require.NoError(t, <-reserveA)
		var ie *credits.InsufficientError
		require.ErrorAs(t, <-tooMuch, &ie)
		require.Equal(t, 5*credits.Dollar, ie.Available, "after a's 3 dollars")
		require.ErrorIs(t, <-settleConflict, credits.ErrConflict)
		require.ErrorIs(t, <-releaseUnknown, credits.ErrHoldNotFound)
		require.ErrorIs(t, <-reserveAOther, credits.ErrConflict, "a was held earlier in the batch")
		require.NoError(t, <-reserveC)
		require.ErrorAs(t, <-nothingLeft, &ie)
		require.Zero(t, ie.Available)
		require.NoError(t, <-record)

		b := balance(t, s, "acct")
		require.Equal(t, 10*credits.Dollar, b.Held, "open, a and c")
		require.Zero(t, b.Spent)
		require.Equal(t, txs, txKinds(t, s, "acct"), "the failed settle left no spend")
		page, err := s.Usage(ctx, credits.UsageQuery{})
		require.NoError(t, err)
		require.Len(t, page.Records, 2)
		st, err := s.Settle(ctx, "open", credits.Dollar, nil)
		require.NoError(t, err, "the hold is still open")
		require.Equal(t, credits.Settlement{Spent: credits.Dollar, Released: credits.Dollar}, st)
	})
}

func TestGroupCommitFails(t *testing.T) {
	ledgerStores(t, func(t *testing.T, s *Store, clock *creditstest.Clock) {
		ctx := context.Background()
		buy(t, s, "p1", "acct", 10*credits.Dollar)
		before := balance(t, s, "acct")
		txs := txKinds(t, s, "acct")

		p := pauseWriter(t, s)
		reserveA := p.queue(func() error {
			_, err := s.Reserve(ctx, reservation("a", "acct", 3*credits.Dollar, 3*credits.Dollar))
			return err
		})
		poison := p.queue(func() error {
			// A deferred foreign key violation fails the COMMIT.
			return s.group(ctx, "poison", func(t *wtx) error {
				if _, err := t.exec(`PRAGMA defer_foreign_keys = ON`); err != nil {
					return err
				}
				_, err := t.exec(insertHoldLotSQL, "a", "no-such-lot", 1)
				return err
			})
		})
		record := p.queue(func() error { return s.Record(ctx, testRecord("r1", clock.Now())) })
		p.resume()

		for name, done := range map[string]<-chan error{"reserve": reserveA, "poison": poison, "record": record} {
			require.ErrorIs(t, <-done, credits.ErrUnavailable, name)
		}
		require.Equal(t, before, balance(t, s, "acct"))
		require.Equal(t, txs, txKinds(t, s, "acct"))
		require.ErrorIs(t, s.Release(ctx, "a"), credits.ErrHoldNotFound)
		page, err := s.Usage(ctx, credits.UsageQuery{})
		require.NoError(t, err)
		require.Empty(t, page.Records)

		// The writer connection is out of the failed transaction.
		reserve(t, s, "a", "acct", 3*credits.Dollar, 3*credits.Dollar)
		require.NoError(t, s.Record(ctx, testRecord("r1", clock.Now())))
		require.Equal(t, 3*credits.Dollar, balance(t, s, "acct").Held)
	})
}

func TestGroupCommitBroken(t *testing.T) {
	ledgerStores(t, func(t *testing.T, s *Store, clock *creditstest.Clock) {
		ctx := context.Background()
		buy(t, s, "p1", "acct", 10*credits.Dollar)

		p := pauseWriter(t, s)
		reserveA := p.queue(func() error {
			_, err := s.Reserve(ctx, reservation("a", "acct", 3*credits.Dollar, 3*credits.Dollar))
			return err
		})
		broken := p.queue(func() error {
			return s.group(ctx, "broken", func(t *wtx) error {
				if _, err := t.exec(addHeldSQL, 1, "acct"); err != nil {
					return err
				}
				panic("a bug")
			})
		})
		reserveB := p.queue(func() error {
			_, err := s.Reserve(ctx, reservation("b", "acct", 4*credits.Dollar, 4*credits.Dollar))
			return err
		})
		record := p.queue(func() error { return s.Record(ctx, testRecord("r1", clock.Now())) })
		p.resume()

		require.ErrorIs(t, <-reserveA, credits.ErrUnavailable, "rolled back with the broken write")
		err := <-broken
		require.ErrorIs(t, err, credits.ErrUnavailable)
		require.ErrorContains(t, err, "a bug")
		require.NoError(t, <-reserveB, "run in the next batch")
		require.NoError(t, <-record, "run in the next batch")
		require.ErrorIs(t, s.Release(ctx, "a"), credits.ErrHoldNotFound)
		b := balance(t, s, "acct")
		require.Equal(t, 4*credits.Dollar, b.Held)
		require.Equal(t, 6*credits.Dollar, b.Available)
	})
}

func TestGroupCanceled(t *testing.T) {
	ledgerStores(t, func(t *testing.T, s *Store, _ *creditstest.Clock) {
		ctx := context.Background()
		buy(t, s, "p1", "acct", 10*credits.Dollar)

		t.Run("while queued", func(t *testing.T) {
			p := pauseWriter(t, s)
			ctxX, cancelX := context.WithCancel(ctx)
			defer cancelX()
			x := p.queue(func() error { _, err := s.Reserve(ctxX, reservation("x", "acct", credits.Dollar, 1)); return err })
			ctxY, cancelY := context.WithCancel(ctx)
			defer cancelY()
			y := p.queue(func() error { _, err := s.Reserve(ctxY, reservation("y", "acct", credits.Dollar, 1)); return err })
			z := p.queue(func() error { _, err := s.Reserve(ctx, reservation("z", "acct", credits.Dollar, 1)); return err })
			cancelX()
			cancelY()
			// Both return while the writer still waits.
			require.ErrorIs(t, <-x, context.Canceled)
			require.ErrorIs(t, <-y, context.Canceled)
			p.resume()
			require.NoError(t, <-z)
			require.ErrorIs(t, s.Release(ctx, "x"), credits.ErrHoldNotFound, "withdrawn, never run")
			require.ErrorIs(t, s.Release(ctx, "y"), credits.ErrHoldNotFound, "withdrawn, never run")
			require.Equal(t, credits.Dollar, balance(t, s, "acct").Held)
			require.NoError(t, s.Release(ctx, "z"))
		})
		t.Run("once taken", func(t *testing.T) {
			p := pauseWriter(t, s)
			ctxX, cancelX := context.WithCancel(ctx)
			defer cancelX()
			x := p.queue(func() error { _, err := s.Reserve(ctxX, reservation("x2", "acct", credits.Dollar, 1)); return err })
			started, unblock := make(chan struct{}), make(chan struct{})
			blocker := p.queue(func() error {
				return s.group(ctx, "block", func(*wtx) error {
					close(started)
					<-unblock
					return nil
				})
			})
			p.resume()
			<-started // x ran before it, in the same transaction
			cancelX()
			select {
			case err := <-x:
				t.Fatalf("returned %v before its batch committed", err)
			case <-time.After(20 * time.Millisecond):
			}
			close(unblock)
			require.NoError(t, <-x, "its true result")
			require.NoError(t, <-blocker)
			require.Equal(t, credits.Dollar, balance(t, s, "acct").Held, "x2 is held")
		})
	})
}

func TestGroupClose(t *testing.T) {
	ctx := context.Background()
	dsn := filepath.Join(t.TempDir(), "llmgate.db")
	s, err := Open(ctx, dsn, Options{})
	require.NoError(t, err)
	buy(t, s, "p1", "acct", 10*credits.Dollar)

	p := pauseWriter(t, s)
	a := p.queue(func() error { _, err := s.Reserve(ctx, reservation("a", "acct", credits.Dollar, 1)); return err })
	b := p.queue(func() error { _, err := s.Reserve(ctx, reservation("b", "acct", credits.Dollar, 1)); return err })
	closed := make(chan error, 1)
	go func() { closed <- s.Close() }()
	p.resume()
	require.NoError(t, <-closed)
	require.NoError(t, <-a, "taken before Close: it runs")
	require.NoError(t, <-b, "queued before Close: it runs in the same batch")

	_, err = s.Reserve(ctx, reservation("c", "acct", credits.Dollar, 1))
	require.ErrorIs(t, err, credits.ErrUnavailable)
	require.ErrorIs(t, s.Release(ctx, "a"), credits.ErrUnavailable)
	require.True(t, errors.Is(s.Record(ctx, testRecord("r1", time.Now())), credits.ErrUnavailable))

	s, err = Open(ctx, dsn, Options{})
	require.NoError(t, err)
	defer s.Close()
	require.Equal(t, 2*credits.Dollar, balance(t, s, "acct").Held)
}
