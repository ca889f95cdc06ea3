package sqlite

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/llmgate/gateway/credits"
	"github.com/llmgate/gateway/credits/creditstest"
	"github.com/llmgate/gateway/internal/benchcpu"
)

// ledgerStores runs f on a file-backed and an in-memory store sharing a
// manual clock each.
func ledgerStores(t *testing.T, f func(t *testing.T, s *Store, clock *creditstest.Clock)) {
	for _, mode := range []string{"file", "memory"} {
		t.Run(mode, func(t *testing.T) {
			clock := creditstest.NewClock(time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC))
			dsn := ":memory:"
			if mode == "file" {
				dsn = filepath.Join(t.TempDir(), "llmgate.db")
			}
			s, err := Open(context.Background(), dsn, Options{Now: clock.Now})
			require.NoError(t, err)
			t.Cleanup(func() { s.Close() })
			f(t, s, clock)
		})
	}
}

func buy(t testing.TB, s *Store, id, account string, amount credits.Amount) credits.Lot {
	t.Helper()
	l, err := s.Purchase(context.Background(), credits.Purchase{ID: id, Account: account, Amount: amount})
	require.NoError(t, err)
	return l
}

func reserve(t *testing.T, s *Store, id, account string, maxA, minA credits.Amount) credits.Hold {
	t.Helper()
	h, err := s.Reserve(context.Background(), credits.Reservation{ID: id, Account: account, Max: maxA, Min: minA, TTL: time.Minute})
	require.NoError(t, err)
	return h
}

// balance returns the account's balance after checking its identity.
func balance(t *testing.T, s *Store, account string) credits.Balance {
	t.Helper()
	b, err := s.Balance(context.Background(), account)
	require.NoError(t, err)
	require.Equal(t, b.Purchased, b.Available+b.Held+b.Spent+b.Expired, "identity of %+v", b)
	return b
}

// txKinds lists the account's transactions, oldest first, as "kind amount".
func txKinds(t *testing.T, s *Store, account string) []string {
	t.Helper()
	p, err := s.Transactions(context.Background(), account, credits.ListOptions{Limit: credits.MaxListLimit})
	require.NoError(t, err)
	var out []string
	for i := len(p.Transactions) - 1; i >= 0; i-- {
		tx := p.Transactions[i]
		out = append(out, fmt.Sprintf("%s %s", tx.Kind, tx.Amount))
	}
	return out
}

func testRecord(id string, start time.Time) *credits.UsageRecord {
	return &credits.UsageRecord{
		ID: id, RequestID: "req-" + id, KeyID: "key1", Account: "acct", Provider: "openai", Model: "gpt-4o",
		KeySource: credits.SourceConfigured, Reported: credits.Tokens{Input: 100, Output: 20, CacheRead: 10},
		ReportedKnown: true, Estimated: credits.Tokens{Input: 90, Output: 25}, Cost: 1234, Fee: 56,
		Status: 200, Stream: true, Start: start, End: start.Add(1500 * time.Millisecond),
		Attempts: []credits.AttemptRecord{
			{Provider: "openai", Model: "gpt-4o", KeyID: "k0", KeySource: credits.SourceConfigured, Status: 429, Error: "rate limited", Start: start, Duration: 20 * time.Millisecond},
			{Provider: "openai", Model: "gpt-4o", KeyID: "k1", KeySource: credits.SourceConfigured, Status: 200, Served: true, Start: start.Add(30 * time.Millisecond), Duration: time.Second},
		},
	}
}

func TestPurchase(t *testing.T) {
	ledgerStores(t, func(t *testing.T, s *Store, clock *creditstest.Clock) {
		ctx := context.Background()
		l, err := s.Purchase(ctx, credits.Purchase{ID: "order-1", Account: "acct", Amount: 10 * credits.Dollar, Note: "card"})
		require.NoError(t, err)
		want := credits.Lot{ID: "order-1", Account: "acct", Amount: 10 * credits.Dollar, Remaining: 10 * credits.Dollar,
			PurchasedAt: clock.Now(), ExpiresAt: clock.Now().Add(credits.LotLifetime), Note: "card"}
		require.Equal(t, want, l)

		t.Run("same ID same content returns the first lot", func(t *testing.T) {
			clock.Advance(time.Hour)
			again, err := s.Purchase(ctx, credits.Purchase{ID: "order-1", Account: "acct", Amount: 10 * credits.Dollar, Note: "other"})
			require.NoError(t, err)
			require.Equal(t, want, again)
		})
		t.Run("same ID other content is a conflict", func(t *testing.T) {
			_, err := s.Purchase(ctx, credits.Purchase{ID: "order-1", Account: "acct", Amount: 11 * credits.Dollar})
			require.ErrorIs(t, err, credits.ErrConflict)
			_, err = s.Purchase(ctx, credits.Purchase{ID: "order-1", Account: "other", Amount: 10 * credits.Dollar})
			require.ErrorIs(t, err, credits.ErrConflict)
		})
		t.Run("invalid", func(t *testing.T) {
			for name, p := range map[string]credits.Purchase{
				"no id":      {Account: "acct", Amount: credits.MinPurchase},
				"no account": {ID: "x", Amount: credits.MinPurchase},
				"too much":   {ID: "x", Account: "acct", Amount: credits.MaxPurchase + 1},
				"long note":  {ID: "x", Account: "acct", Amount: credits.MinPurchase, Note: string(make([]byte, 256))},
			} {
				_, err := s.Purchase(ctx, p)
				require.ErrorIs(t, err, credits.ErrInvalid, name)
			}
			_, err := s.Purchase(ctx, credits.Purchase{ID: "x", Account: "acct", Amount: credits.MinPurchase - 1})
			require.ErrorIs(t, err, credits.ErrPurchaseBelowMinimum)
		})
		b := balance(t, s, "acct")
		require.Equal(t, credits.Balance{Account: "acct", Available: 10 * credits.Dollar, Purchased: 10 * credits.Dollar,
			NextExpiry: want.ExpiresAt, Known: true}, b)
		p, err := s.Transactions(ctx, "acct", credits.ListOptions{})
		require.NoError(t, err)
		require.Len(t, p.Transactions, 1)
		tx := p.Transactions[0]
		require.Equal(t, credits.Transaction{ID: tx.ID, Account: "acct", Kind: credits.TxPurchase, Amount: 10 * credits.Dollar,
			LotID: "order-1", Note: "card", At: want.PurchasedAt}, tx)
	})
}

func TestReserve(t *testing.T) {
	ledgerStores(t, func(t *testing.T, s *Store, clock *creditstest.Clock) {
		ctx := context.Background()
		t.Run("never bought", func(t *testing.T) {
			_, err := s.Reserve(ctx, credits.Reservation{ID: "h0", Account: "nobody", Max: 10, Min: 1, TTL: time.Minute})
			require.ErrorIs(t, err, credits.ErrInsufficientCredits)
			var ie *credits.InsufficientError
			require.ErrorAs(t, err, &ie)
			require.Equal(t, credits.InsufficientError{Account: "nobody", Min: 1, Never: true}, *ie)
			require.Equal(t, credits.Balance{Account: "nobody"}, balance(t, s, "nobody"))
		})

		// b-early expires an hour before a-late, which comes first by ID.
		buy(t, s, "b-early", "acct", 5*credits.Dollar)
		clock.Advance(time.Hour)
		buy(t, s, "a-late", "acct", 6*credits.Dollar)
		clock.Advance(time.Hour)

		h := reserve(t, s, "h1", "acct", 7*credits.Dollar, credits.Dollar)
		require.Equal(t, credits.Hold{ID: "h1", Account: "acct", Amount: 7 * credits.Dollar, CreatedAt: clock.Now(),
			ExpiresAt: clock.Now().Add(time.Minute)}, h)
		lots, _, err := s.Lots(ctx, "acct", credits.ListOptions{})
		require.NoError(t, err)
		require.Equal(t, []string{"a-late", "b-early"}, []string{lots[0].ID, lots[1].ID})
		require.Equal(t, []credits.Amount{4 * credits.Dollar, 0}, []credits.Amount{lots[0].Remaining, lots[1].Remaining},
			"the earliest expiry is taken first")

		t.Run("holds what is available when at least min", func(t *testing.T) {
			h := reserve(t, s, "h2", "acct", 100*credits.Dollar, 4*credits.Dollar)
			require.Equal(t, 4*credits.Dollar, h.Amount)
			b := balance(t, s, "acct")
			require.Equal(t, credits.Amount(0), b.Available)
			require.Equal(t, 11*credits.Dollar, b.Held)
			require.True(t, b.NextExpiry.IsZero())
		})
		t.Run("insufficient", func(t *testing.T) {
			_, err := s.Reserve(ctx, credits.Reservation{ID: "h3", Account: "acct", Max: 10, Min: 1, TTL: time.Minute})
			var ie *credits.InsufficientError
			require.ErrorAs(t, err, &ie)
			require.Equal(t, credits.InsufficientError{Account: "acct", Available: 0, Min: 1}, *ie)
		})
		t.Run("same ID returns the open hold", func(t *testing.T) {
			clock.Advance(time.Second)
			again, err := s.Reserve(ctx, credits.Reservation{ID: "h1", Account: "acct", Max: 1, Min: 1, TTL: time.Hour})
			require.NoError(t, err)
			require.Equal(t, h, again)
			_, err = s.Reserve(ctx, credits.Reservation{ID: "h1", Account: "other", Max: 1, Min: 1, TTL: time.Hour})
			require.ErrorIs(t, err, credits.ErrConflict)
		})
		t.Run("ended ID is closed", func(t *testing.T) {
			require.NoError(t, s.Release(ctx, "h1"))
			_, err := s.Reserve(ctx, credits.Reservation{ID: "h1", Account: "acct", Max: 1, Min: 1, TTL: time.Hour})
			require.ErrorIs(t, err, credits.ErrHoldClosed)
		})
		t.Run("invalid", func(t *testing.T) {
			for name, r := range map[string]credits.Reservation{
				"no id":       {Account: "acct", Max: 1, Min: 1, TTL: time.Minute},
				"zero min":    {ID: "x", Account: "acct", Max: 1, TTL: time.Minute},
				"max < min":   {ID: "x", Account: "acct", Max: 1, Min: 2, TTL: time.Minute},
				"ttl too big": {ID: "x", Account: "acct", Max: 1, Min: 1, TTL: 25 * time.Hour},
				"space in id": {ID: "a b", Account: "acct", Max: 1, Min: 1, TTL: time.Minute},
			} {
				_, err := s.Reserve(ctx, r)
				require.ErrorIs(t, err, credits.ErrInvalid, name)
			}
		})
		t.Run("expired lots are not available", func(t *testing.T) {
			buy(t, s, "p3", "exp", 5*credits.Dollar)
			clock.Advance(credits.LotLifetime)
			_, err := s.Reserve(ctx, credits.Reservation{ID: "hx", Account: "exp", Max: 10, Min: 1, TTL: time.Minute})
			var ie *credits.InsufficientError
			require.ErrorAs(t, err, &ie)
			require.Equal(t, credits.InsufficientError{Account: "exp", Min: 1}, *ie)
			b := balance(t, s, "exp")
			require.Equal(t, 5*credits.Dollar, b.Expired, "counted as expired before any Sweep")
		})
	})
}

func TestSettle(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name                   string
		hold, actual           credits.Amount
		want                   credits.Settlement
		available, spent       credits.Amount
		txs                    []string
		uncollectedInTheRecord credits.Amount
	}{
		{name: "under the hold", hold: 3 * credits.Dollar, actual: credits.Dollar,
			want:      credits.Settlement{Spent: credits.Dollar, Released: 2 * credits.Dollar},
			available: 9 * credits.Dollar, spent: credits.Dollar, txs: []string{"purchase 10.00", "spend 1.00"}},
		{name: "zero", hold: 3 * credits.Dollar, actual: 0,
			want:      credits.Settlement{Released: 3 * credits.Dollar},
			available: 10 * credits.Dollar, txs: []string{"purchase 10.00"}},
		{name: "exactly the hold", hold: 3 * credits.Dollar, actual: 3 * credits.Dollar,
			want:      credits.Settlement{Spent: 3 * credits.Dollar},
			available: 7 * credits.Dollar, spent: 3 * credits.Dollar, txs: []string{"purchase 10.00", "spend 3.00"}},
		{name: "excess from available", hold: 3 * credits.Dollar, actual: 5 * credits.Dollar,
			want:      credits.Settlement{Spent: 5 * credits.Dollar},
			available: 5 * credits.Dollar, spent: 5 * credits.Dollar, txs: []string{"purchase 10.00", "spend 5.00"}},
		{name: "excess beyond everything", hold: 3 * credits.Dollar, actual: 12 * credits.Dollar,
			want:      credits.Settlement{Spent: 10 * credits.Dollar, Uncollected: 2 * credits.Dollar},
			available: 0, spent: 10 * credits.Dollar, txs: []string{"purchase 10.00", "spend 10.00"},
			uncollectedInTheRecord: 2 * credits.Dollar},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ledgerStores(t, func(t *testing.T, s *Store, clock *creditstest.Clock) {
				buy(t, s, "p1", "acct", 10*credits.Dollar)
				reserve(t, s, "h1", "acct", tc.hold, 1)
				rec := testRecord("r1", clock.Now())
				rec.Account = ""     // the hold's
				rec.Uncollected = 77 // overwritten
				st, err := s.Settle(ctx, "h1", tc.actual, rec)
				require.NoError(t, err)
				require.Equal(t, tc.want, st)
				require.Equal(t, credits.Amount(77), rec.Uncollected, "the caller's record is not changed")
				b := balance(t, s, "acct")
				require.Equal(t, tc.available, b.Available)
				require.Equal(t, tc.spent, b.Spent)
				require.Equal(t, credits.Amount(0), b.Held)
				require.Equal(t, tc.txs, txKinds(t, s, "acct"))

				page, err := s.Usage(ctx, credits.UsageQuery{})
				require.NoError(t, err)
				require.Len(t, page.Records, 1)
				want := *normalizeRecord(rec)
				want.Account, want.Paid, want.Uncollected = "acct", true, tc.uncollectedInTheRecord
				require.Equal(t, want, page.Records[0])

				again, err := s.Settle(ctx, "h1", 99*credits.Dollar, nil)
				require.NoError(t, err)
				require.Equal(t, st, again, "a second Settle returns the first Settlement")
				require.Equal(t, b, balance(t, s, "acct"))
				require.NoError(t, s.Release(ctx, "h1"), "releasing a settled hold does nothing")
				require.Equal(t, b, balance(t, s, "acct"))
			})
		})
	}

	ledgerStores(t, func(t *testing.T, s *Store, clock *creditstest.Clock) {
		buy(t, s, "p1", "acct", 10*credits.Dollar)
		t.Run("unknown", func(t *testing.T) {
			_, err := s.Settle(ctx, "nope", 1, nil)
			require.ErrorIs(t, err, credits.ErrHoldNotFound)
			require.ErrorIs(t, s.Release(ctx, "nope"), credits.ErrHoldNotFound)
		})
		t.Run("released is closed", func(t *testing.T) {
			reserve(t, s, "rel", "acct", credits.Dollar, 1)
			require.NoError(t, s.Release(ctx, "rel"))
			require.NoError(t, s.Release(ctx, "rel"))
			_, err := s.Settle(ctx, "rel", 1, nil)
			require.ErrorIs(t, err, credits.ErrHoldClosed)
			require.Equal(t, 10*credits.Dollar, balance(t, s, "acct").Available)
		})
		t.Run("invalid changes nothing", func(t *testing.T) {
			reserve(t, s, "inv", "acct", credits.Dollar, 1)
			before := balance(t, s, "acct")
			_, err := s.Settle(ctx, "inv", -1, nil)
			require.ErrorIs(t, err, credits.ErrInvalid)
			bad := testRecord("bad", clock.Now())
			bad.Start = time.Time{}
			_, err = s.Settle(ctx, "inv", 1, bad)
			require.ErrorIs(t, err, credits.ErrInvalid)
			other := testRecord("other", clock.Now())
			other.Account = "someone-else"
			_, err = s.Settle(ctx, "inv", 1, other)
			require.ErrorIs(t, err, credits.ErrInvalid)
			_, err = s.Settle(ctx, "", 1, nil)
			require.ErrorIs(t, err, credits.ErrInvalid)
			require.Equal(t, before, balance(t, s, "acct"))
			p, err := s.Usage(ctx, credits.UsageQuery{})
			require.NoError(t, err)
			require.Empty(t, p.Records)
			_, err = s.Settle(ctx, "inv", 1, nil)
			require.NoError(t, err)
		})
		t.Run("conflicting record rolls back", func(t *testing.T) {
			require.NoError(t, s.Record(ctx, testRecord("dup", clock.Now())))
			reserve(t, s, "conf", "acct", credits.Dollar, 1)
			before := balance(t, s, "acct")
			_, err := s.Settle(ctx, "conf", 1, testRecord("dup", clock.Now()))
			require.ErrorIs(t, err, credits.ErrConflict, "the kept record is not paid")
			require.Equal(t, before, balance(t, s, "acct"))
			require.NoError(t, s.Release(ctx, "conf"))
		})
		t.Run("swept hold spends from available", func(t *testing.T) {
			before := balance(t, s, "acct")
			reserve(t, s, "sw", "acct", 2*credits.Dollar, 1)
			clock.Advance(2 * time.Minute)
			res, err := s.Sweep(ctx)
			require.NoError(t, err)
			require.Equal(t, credits.SweepResult{HoldsReleased: 1, Released: 2 * credits.Dollar}, res)
			require.Equal(t, before, balance(t, s, "acct"))
			st, err := s.Settle(ctx, "sw", 3*credits.Dollar, nil)
			require.NoError(t, err)
			require.Equal(t, credits.Settlement{Spent: 3 * credits.Dollar}, st)
			require.Equal(t, before.Available-3*credits.Dollar, balance(t, s, "acct").Available)
			again, err := s.Settle(ctx, "sw", 3*credits.Dollar, nil)
			require.NoError(t, err)
			require.Equal(t, st, again)
		})
	})

	ledgerStores(t, func(t *testing.T, s *Store, clock *creditstest.Clock) {
		t.Run("giving back to an expired lot expires it", func(t *testing.T) {
			buy(t, s, "old", "acct", 5*credits.Dollar)
			clock.Advance(time.Hour)
			buy(t, s, "new", "acct", 5*credits.Dollar)
			clock.Advance(credits.LotLifetime - time.Hour - time.Second)
			reserve(t, s, "h", "acct", 8*credits.Dollar, 1) // 5 of old, 3 of new
			clock.Advance(2 * time.Second)                  // old has expired
			st, err := s.Settle(ctx, "h", 4*credits.Dollar, nil)
			require.NoError(t, err)
			// 4 spent from old (earliest expiry), its last 1 is given back
			// to old and expires, new's 3 go back to new.
			require.Equal(t, credits.Settlement{Spent: 4 * credits.Dollar, Released: 4 * credits.Dollar}, st)
			b := balance(t, s, "acct")
			require.Equal(t, credits.Balance{Account: "acct", Available: 5 * credits.Dollar, Spent: 4 * credits.Dollar,
				Expired: credits.Dollar, Purchased: 10 * credits.Dollar, NextExpiry: b.NextExpiry, Known: true}, b)
			require.Equal(t, []string{"purchase 5.00", "purchase 5.00", "expire 1.00", "spend 4.00"}, txKinds(t, s, "acct"))
		})
	})
}

func TestRelease(t *testing.T) {
	ledgerStores(t, func(t *testing.T, s *Store, clock *creditstest.Clock) {
		ctx := context.Background()
		buy(t, s, "p1", "acct", 5*credits.Dollar)
		clock.Advance(time.Hour)
		buy(t, s, "p2", "acct", 5*credits.Dollar)
		reserve(t, s, "h1", "acct", 7*credits.Dollar, 1)
		require.NoError(t, s.Release(ctx, "h1"))
		b := balance(t, s, "acct")
		require.Equal(t, 10*credits.Dollar, b.Available)
		require.Equal(t, credits.Amount(0), b.Held)
		lots, _, err := s.Lots(ctx, "acct", credits.ListOptions{})
		require.NoError(t, err)
		for _, l := range lots {
			require.Equal(t, l.Amount, l.Remaining)
		}
		require.Equal(t, []string{"purchase 5.00", "purchase 5.00"}, txKinds(t, s, "acct"), "holds are not transactions")

		t.Run("past expiry gives back to the lot as expired", func(t *testing.T) {
			reserve(t, s, "h2", "acct", 7*credits.Dollar, 1)
			clock.Advance(credits.LotLifetime - 30*time.Minute) // p1 expired, p2 not
			require.NoError(t, s.Release(ctx, "h2"))
			b := balance(t, s, "acct")
			require.Equal(t, 5*credits.Dollar, b.Available)
			require.Equal(t, 5*credits.Dollar, b.Expired)
			require.Equal(t, []string{"purchase 5.00", "purchase 5.00", "expire 5.00"}, txKinds(t, s, "acct"))
			res, err := s.Sweep(ctx)
			require.NoError(t, err)
			require.Equal(t, credits.SweepResult{}, res, "p1 had nothing left to expire")
		})
	})
}

func TestRecord(t *testing.T) {
	ledgerStores(t, func(t *testing.T, s *Store, clock *creditstest.Clock) {
		ctx := context.Background()
		start := time.Date(2025, 3, 1, 12, 0, 0, 123456789, time.FixedZone("CET", 3600))
		rec := testRecord("r1", start)
		rec.Account = ""
		rec.KeySource = credits.SourceAttached
		rec.AttemptsDropped = 3
		require.NoError(t, s.Record(ctx, rec))
		require.NoError(t, s.Record(ctx, testRecordLike(rec)), "same content")
		other := testRecordLike(rec)
		other.Cost++
		require.ErrorIs(t, s.Record(ctx, other), credits.ErrConflict)
		other = testRecordLike(rec)
		other.Attempts[1].Status = 201
		require.ErrorIs(t, s.Record(ctx, other), credits.ErrConflict)

		p, err := s.Usage(ctx, credits.UsageQuery{})
		require.NoError(t, err)
		require.Len(t, p.Records, 1)
		got := p.Records[0]
		require.Equal(t, *normalizeRecord(rec), got)
		require.Equal(t, time.UTC, got.Start.Location())
		require.True(t, got.Start.Equal(start.Truncate(time.Microsecond)))
		require.True(t, got.Attempts[0].Start.Equal(start.Truncate(time.Microsecond)))

		bad := testRecord("", start)
		require.ErrorIs(t, s.Record(ctx, bad), credits.ErrInvalid)
		bad = testRecord("x", start)
		bad.Attempts = make([]credits.AttemptRecord, credits.MaxAttempts+1)
		require.ErrorIs(t, s.Record(ctx, bad), credits.ErrInvalid)
		require.ErrorIs(t, s.Record(ctx, nil), credits.ErrInvalid)
	})
}

// testRecordLike returns a deep copy of r.
func testRecordLike(r *credits.UsageRecord) *credits.UsageRecord {
	c := *r
	c.Attempts = append([]credits.AttemptRecord(nil), r.Attempts...)
	return &c
}

func TestSweep(t *testing.T) {
	ledgerStores(t, func(t *testing.T, s *Store, clock *creditstest.Clock) {
		ctx := context.Background()
		buy(t, s, "a1", "a", 5*credits.Dollar)
		buy(t, s, "b1", "b", 6*credits.Dollar)
		reserve(t, s, "ha", "a", 2*credits.Dollar, 1)
		hb, err := s.Reserve(ctx, credits.Reservation{ID: "hb", Account: "b", Max: credits.Dollar, Min: 1, TTL: time.Hour})
		require.NoError(t, err)

		res, err := s.Sweep(ctx)
		require.NoError(t, err)
		require.Equal(t, credits.SweepResult{}, res)

		clock.Advance(time.Minute)
		res, err = s.Sweep(ctx)
		require.NoError(t, err)
		require.Equal(t, credits.SweepResult{HoldsReleased: 1, Released: 2 * credits.Dollar}, res)
		require.Equal(t, credits.Dollar, balance(t, s, "b").Held, "hb has not expired")
		_, err = s.Reserve(ctx, credits.Reservation{ID: "ha", Account: "a", Max: 1, Min: 1, TTL: time.Minute})
		require.ErrorIs(t, err, credits.ErrHoldClosed)
		require.NoError(t, s.Release(ctx, "ha"), "a swept hold has ended")

		clock.Advance(credits.LotLifetime)
		ba := balance(t, s, "a")
		require.Equal(t, credits.Balance{Account: "a", Expired: 5 * credits.Dollar, Purchased: 5 * credits.Dollar, Known: true}, ba)
		bb := balance(t, s, "b")
		require.Equal(t, credits.Dollar, bb.Held, "an unswept hold past its expiry is still held")
		require.Equal(t, 5*credits.Dollar, bb.Expired)

		res, err = s.Sweep(ctx)
		require.NoError(t, err)
		// hb's dollar goes back to b1, already expired: it is recorded
		// with the release, b1's other five with the lot; a1 and b1 count
		// once each.
		require.Equal(t, credits.SweepResult{HoldsReleased: 1, Released: credits.Dollar, LotsExpired: 2, Expired: 11 * credits.Dollar}, res)
		require.Equal(t, ba, balance(t, s, "a"))
		require.Equal(t, credits.Balance{Account: "b", Expired: 6 * credits.Dollar, Purchased: 6 * credits.Dollar, Known: true}, balance(t, s, "b"))
		require.Equal(t, []string{"purchase 6.00", "expire 1.00", "expire 5.00"}, txKinds(t, s, "b"))
		lots, _, err := s.Lots(ctx, "b", credits.ListOptions{})
		require.NoError(t, err)
		require.Equal(t, credits.Amount(0), lots[0].Remaining)

		res, err = s.Sweep(ctx)
		require.NoError(t, err)
		require.Equal(t, credits.SweepResult{}, res)
		_ = hb
	})

	t.Run("more than a batch", func(t *testing.T) {
		ledgerStores(t, func(t *testing.T, s *Store, clock *creditstest.Clock) {
			ctx := context.Background()
			n := sweepBatch + 3
			for i := range n {
				buy(t, s, fmt.Sprint("p", i), fmt.Sprint("acct", i), credits.MinPurchase)
				reserve(t, s, fmt.Sprint("h", i), fmt.Sprint("acct", i), credits.Dollar, 1)
			}
			clock.Advance(credits.LotLifetime)
			res, err := s.Sweep(ctx)
			require.NoError(t, err)
			require.Equal(t, credits.SweepResult{HoldsReleased: n, Released: credits.Amount(n) * credits.Dollar,
				LotsExpired: n, Expired: credits.Amount(n) * credits.MinPurchase}, res)
			for i := range n {
				b := balance(t, s, fmt.Sprint("acct", i))
				require.Equal(t, b.Purchased, b.Expired)
			}
		})
	})
}

func TestLists(t *testing.T) {
	ledgerStores(t, func(t *testing.T, s *Store, clock *creditstest.Clock) {
		ctx := context.Background()
		var lotIDs []string
		for i := range 5 {
			id := fmt.Sprint("p", i)
			buy(t, s, id, "acct", credits.MinPurchase)
			lotIDs = append([]string{id}, lotIDs...)
			if i != 2 {
				clock.Advance(time.Second) // p2 and p3 share a time
			}
		}
		for i := range 3 {
			buy(t, s, fmt.Sprint("q", i), fmt.Sprint("acct-", 2-i), credits.MinPurchase)
		}

		t.Run("lots", func(t *testing.T) {
			var got []string
			cursor := ""
			for {
				lots, next, err := s.Lots(ctx, "acct", credits.ListOptions{Limit: 2, Cursor: cursor})
				require.NoError(t, err)
				for _, l := range lots {
					got = append(got, l.ID)
				}
				if next == "" {
					break
				}
				cursor = next
			}
			require.Equal(t, lotIDs, got)
		})
		t.Run("transactions", func(t *testing.T) {
			var got []string
			cursor := ""
			for {
				p, err := s.Transactions(ctx, "acct", credits.ListOptions{Limit: 3, Cursor: cursor})
				require.NoError(t, err)
				for _, tx := range p.Transactions {
					got = append(got, tx.LotID)
				}
				if p.NextCursor == "" {
					break
				}
				cursor = p.NextCursor
			}
			require.Equal(t, lotIDs, got)
		})
		t.Run("accounts", func(t *testing.T) {
			p, err := s.Accounts(ctx, credits.ListOptions{Limit: 2})
			require.NoError(t, err)
			require.Equal(t, []string{"acct", "acct-0"}, []string{p.Accounts[0].Account, p.Accounts[1].Account})
			require.Equal(t, balance(t, s, "acct"), p.Accounts[0])
			p, err = s.Accounts(ctx, credits.ListOptions{Limit: 2, Cursor: p.NextCursor})
			require.NoError(t, err)
			require.Equal(t, []string{"acct-1", "acct-2"}, []string{p.Accounts[0].Account, p.Accounts[1].Account})
			require.Empty(t, p.NextCursor)
		})
		t.Run("bad options", func(t *testing.T) {
			for _, o := range []credits.ListOptions{{Limit: -1}, {Limit: credits.MaxListLimit + 1}, {Cursor: "!!"}} {
				_, _, err := s.Lots(ctx, "acct", o)
				require.ErrorIs(t, err, credits.ErrInvalid)
				_, err = s.Transactions(ctx, "acct", o)
				require.ErrorIs(t, err, credits.ErrInvalid)
				_, err = s.Accounts(ctx, o)
				require.ErrorIs(t, err, credits.ErrInvalid)
				_, err = s.Usage(ctx, credits.UsageQuery{ListOptions: o})
				require.ErrorIs(t, err, credits.ErrInvalid)
			}
			_, err := s.Transactions(ctx, "acct", credits.ListOptions{Cursor: credits.EncodeCursor(clock.Now(), "p1")})
			require.ErrorIs(t, err, credits.ErrInvalid, "a lot cursor is not a transaction cursor")
		})
		t.Run("unknown account", func(t *testing.T) {
			lots, next, err := s.Lots(ctx, "nobody", credits.ListOptions{})
			require.NoError(t, err)
			require.Empty(t, lots)
			require.Empty(t, next)
			p, err := s.Transactions(ctx, "nobody", credits.ListOptions{})
			require.NoError(t, err)
			require.Empty(t, p.Transactions)
		})
	})
}

func TestUsageAndSummary(t *testing.T) {
	ledgerStores(t, func(t *testing.T, s *Store, clock *creditstest.Clock) {
		ctx := context.Background()
		day1 := time.Date(2025, 3, 1, 23, 59, 59, 999999000, time.UTC)
		day2 := time.Date(2025, 3, 2, 0, 0, 0, 0, time.UTC)
		recs := []*credits.UsageRecord{
			{ID: "a", KeyID: "k1", Account: "x", Provider: "openai", Model: "gpt-4o", Start: day1,
				Reported: credits.Tokens{Input: 10, Output: 1}, ReportedKnown: true, Estimated: credits.Tokens{Input: 99}, Cost: 100, Fee: 1},
			{ID: "b", KeyID: "k1", Account: "x", Provider: "openai", Model: "gpt-4o", Start: day2,
				Estimated: credits.Tokens{Input: 20, Output: 2, CacheRead: 5}, Cost: 200, Fee: 2, Uncollected: 7}, // Record keeps 0
			{ID: "c", KeyID: "k2", Provider: "anthropic", Model: "claude", Start: day2,
				Reported: credits.Tokens{Input: 30, Output: 3, CacheWrite: 4}, ReportedKnown: true, Cost: 300},
			{ID: "d", KeyID: "k2", Account: "y", Provider: "openai", Model: "gpt-4o", Start: day2.Add(time.Hour), Cost: 400},
			{ID: "e", Provider: "openai", Model: "o3", Start: day1.Add(-time.Hour), Cost: 500},
		}
		for _, r := range recs {
			require.NoError(t, s.Record(ctx, r))
		}
		ids := func(q credits.UsageQuery) []string {
			var got []string
			for {
				p, err := s.Usage(ctx, q)
				require.NoError(t, err)
				for _, r := range p.Records {
					got = append(got, r.ID)
				}
				if p.NextCursor == "" {
					return got
				}
				q.Cursor = p.NextCursor
			}
		}
		require.Equal(t, []string{"d", "c", "b", "a", "e"}, ids(credits.UsageQuery{}))
		require.Equal(t, []string{"d", "c", "b", "a", "e"}, ids(credits.UsageQuery{ListOptions: credits.ListOptions{Limit: 2}}))
		require.Equal(t, []string{"b", "a"}, ids(credits.UsageQuery{Account: "x"}))
		require.Equal(t, []string{"d", "c"}, ids(credits.UsageQuery{KeyID: "k2"}))
		require.Equal(t, []string{"d"}, ids(credits.UsageQuery{KeyID: "k2", Account: "y"}))
		require.Equal(t, []string{"c", "b", "a"}, ids(credits.UsageQuery{From: day1, To: day2.Add(time.Hour)}))
		require.Equal(t, []string{"a", "e"}, ids(credits.UsageQuery{To: day2}))

		sum := func(q credits.SummaryQuery) []credits.SummaryRow {
			rows, err := s.Summary(ctx, q)
			require.NoError(t, err)
			return rows
		}
		require.Equal(t, []credits.SummaryRow{{Requests: 5, Tokens: credits.Tokens{Input: 60, Output: 6, CacheRead: 5, CacheWrite: 4},
			Cost: 1500, Fee: 3}}, sum(credits.SummaryQuery{}))
		require.Equal(t, []credits.SummaryRow{
			{Day: "2025-03-01", Provider: "openai", Requests: 2, Tokens: credits.Tokens{Input: 10, Output: 1}, Cost: 600, Fee: 1},
			{Day: "2025-03-02", Provider: "anthropic", Requests: 1, Tokens: credits.Tokens{Input: 30, Output: 3, CacheWrite: 4}, Cost: 300},
			{Day: "2025-03-02", Provider: "openai", Requests: 2, Tokens: credits.Tokens{Input: 20, Output: 2, CacheRead: 5}, Cost: 600, Fee: 2},
		}, sum(credits.SummaryQuery{GroupBy: []credits.Group{credits.GroupDay, credits.GroupProvider}}))
		require.Equal(t, []credits.SummaryRow{
			{Model: "claude", Account: "", Requests: 1, Tokens: credits.Tokens{Input: 30, Output: 3, CacheWrite: 4}, Cost: 300},
			{Model: "gpt-4o", Account: "x", Requests: 2, Tokens: credits.Tokens{Input: 30, Output: 3, CacheRead: 5}, Cost: 300, Fee: 3},
			{Model: "gpt-4o", Account: "y", Requests: 1, Cost: 400},
			{Model: "o3", Requests: 1, Cost: 500},
		}, sum(credits.SummaryQuery{GroupBy: []credits.Group{credits.GroupModel, credits.GroupAccount}}))
		require.Equal(t, []credits.SummaryRow{
			{KeyID: "k2", Requests: 2, Tokens: credits.Tokens{Input: 30, Output: 3, CacheWrite: 4}, Cost: 700},
		}, sum(credits.SummaryQuery{KeyID: "k2", From: day2, GroupBy: []credits.Group{credits.GroupKey}}))
		require.Empty(t, sum(credits.SummaryQuery{Account: "nobody"}))
		require.Empty(t, sum(credits.SummaryQuery{Account: "nobody", GroupBy: []credits.Group{credits.GroupDay}}))

		for _, g := range [][]credits.Group{{"week"}, {credits.GroupDay, credits.GroupDay}} {
			_, err := s.Summary(ctx, credits.SummaryQuery{GroupBy: g})
			require.ErrorIs(t, err, credits.ErrInvalid)
		}
		t.Run("uncollected of settled requests", func(t *testing.T) {
			buy(t, s, "p1", "z", credits.MinPurchase)
			for i, actual := range []credits.Amount{credits.Dollar, 5 * credits.Dollar} {
				id := fmt.Sprint("hz", i)
				reserve(t, s, id, "z", credits.Dollar, 1)
				_, err := s.Settle(ctx, id, actual, &credits.UsageRecord{ID: id, Start: day2, Cost: actual})
				require.NoError(t, err)
			}
			require.Equal(t, []credits.SummaryRow{{Account: "z", Requests: 2, Cost: 6 * credits.Dollar, Uncollected: credits.Dollar}},
				sum(credits.SummaryQuery{Account: "z", GroupBy: []credits.Group{credits.GroupAccount}}))
		})
		t.Run("day before 1970", func(t *testing.T) {
			require.NoError(t, s.Record(ctx, &credits.UsageRecord{ID: "old", Account: "old",
				Start: time.Date(1969, 12, 31, 23, 59, 59, 500000000, time.UTC)}))
			require.Equal(t, []credits.SummaryRow{{Day: "1969-12-31", Requests: 1}},
				sum(credits.SummaryQuery{Account: "old", GroupBy: []credits.Group{credits.GroupDay}}))
		})
	})
}

func TestLedgerClockGoingBack(t *testing.T) {
	ledgerStores(t, func(t *testing.T, s *Store, clock *creditstest.Clock) {
		ctx := context.Background()
		first := buy(t, s, "order-1", "acct", 5*credits.Dollar)
		clock.Advance(-time.Hour)
		second := buy(t, s, "order-2", "acct", 5*credits.Dollar)
		require.Equal(t, first.PurchasedAt, second.PurchasedAt, "held at the latest time")
		p, err := s.Transactions(ctx, "acct", credits.ListOptions{})
		require.NoError(t, err)
		require.Equal(t, "order-2", p.Transactions[0].LotID, "newest first")

		clock.Advance(time.Hour + credits.LotLifetime)
		require.Equal(t, 10*credits.Dollar, balance(t, s, "acct").Expired)
		clock.Advance(-credits.LotLifetime)
		require.Equal(t, 10*credits.Dollar, balance(t, s, "acct").Expired, "the lots came back to life")
		_, err = s.Reserve(ctx, credits.Reservation{ID: "h", Account: "acct", Max: 1, Min: 1, TTL: time.Minute})
		require.ErrorIs(t, err, credits.ErrInsufficientCredits)
	})
}

// TestNoOverspend races reservations and settlements of one account from
// many goroutines on two Stores opened on the same file (as two processes
// would) and checks that holds and spends never exceed the purchases.
func TestNoOverspend(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "llmgate.db")
	var stores []*Store
	for range 2 {
		s, err := Open(ctx, path, Options{})
		require.NoError(t, err)
		t.Cleanup(func() { s.Close() })
		stores = append(stores, s)
	}
	buy(t, stores[0], "p1", "acct", 5*credits.Dollar)
	buy(t, stores[1], "p2", "acct", 5*credits.Dollar)

	const workers, each = 8, 25
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		spent   credits.Amount
		granted int
	)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := stores[w%2]
			for i := range each {
				id := fmt.Sprintf("h-%d-%d", w, i)
				h, err := s.Reserve(ctx, credits.Reservation{ID: id, Account: "acct", Max: 30 * credits.Cent, Min: 10 * credits.Cent, TTL: time.Minute})
				if err != nil {
					if !assertInsufficient(t, err) {
						return
					}
					continue
				}
				st, err := s.Settle(ctx, id, h.Amount+5*credits.Cent, nil) // every request costs more than its hold
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				spent += st.Spent
				granted++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	b := balance(t, stores[0], "acct")
	require.Equal(t, spent, b.Spent)
	require.LessOrEqual(t, b.Spent, 10*credits.Dollar)
	require.GreaterOrEqual(t, b.Available, credits.Amount(0))
	require.Equal(t, credits.Amount(0), b.Held)
	require.Greater(t, granted, 0)
	require.Less(t, b.Available, 10*credits.Cent, "reservations went on until the money ran out")
}

func assertInsufficient(t *testing.T, err error) bool {
	var ie *credits.InsufficientError
	if !errors.As(err, &ie) {
		t.Errorf("reserve: %v", err)
		return false
	}
	return true
}

func TestLedgerUnavailable(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	buy(t, s, "p1", "acct", 5*credits.Dollar)
	reserve(t, s, "h1", "acct", 1, 1)

	canceled, cancel := context.WithCancel(ctx)
	cancel()
	_, err := s.Reserve(canceled, credits.Reservation{ID: "h2", Account: "acct", Max: 1, Min: 1, TTL: time.Minute})
	require.ErrorIs(t, err, credits.ErrUnavailable)
	require.ErrorIs(t, err, context.Canceled)
	_, err = s.Balance(canceled, "acct")
	require.ErrorIs(t, err, credits.ErrUnavailable)

	require.NoError(t, s.Close())
	calls := map[string]func() error{
		"Purchase": func() error {
			_, err := s.Purchase(ctx, credits.Purchase{ID: "p2", Account: "acct", Amount: credits.MinPurchase})
			return err
		},
		"Reserve": func() error {
			_, err := s.Reserve(ctx, credits.Reservation{ID: "h2", Account: "acct", Max: 1, Min: 1, TTL: time.Minute})
			return err
		},
		"Settle":       func() error { _, err := s.Settle(ctx, "h1", 1, nil); return err },
		"Release":      func() error { return s.Release(ctx, "h1") },
		"Record":       func() error { return s.Record(ctx, testRecord("r", time.Now())) },
		"Balance":      func() error { _, err := s.Balance(ctx, "acct"); return err },
		"Sweep":        func() error { _, err := s.Sweep(ctx); return err },
		"Lots":         func() error { _, _, err := s.Lots(ctx, "acct", credits.ListOptions{}); return err },
		"Transactions": func() error { _, err := s.Transactions(ctx, "acct", credits.ListOptions{}); return err },
		"Accounts":     func() error { _, err := s.Accounts(ctx, credits.ListOptions{}); return err },
		"Usage":        func() error { _, err := s.Usage(ctx, credits.UsageQuery{}); return err },
		"Summary":      func() error { _, err := s.Summary(ctx, credits.SummaryQuery{}); return err },
	}
	for name, call := range calls {
		t.Run(name, func(t *testing.T) {
			err := call()
			require.ErrorIs(t, err, credits.ErrUnavailable)
			require.NotErrorIs(t, err, credits.ErrHoldNotFound)
		})
	}
}

// BenchmarkReserveSettle measures a request's ledger work, a Reserve and a
// Settle with a usage record, on a file-backed WAL database, from one
// goroutine and from GOMAXPROCS goroutines (on one account, the worst
// case: they all queue on the writer).
// BenchmarkReserveSettle measures a Reserve and a Settle with its usage
// record on a file: one after the other ("serial"), and from about 16 or
// 64 goroutines at once ("parallel-16", "parallel-64"; the parallelism is
// rounded to a multiple of GOMAXPROCS). Beside ns/op and allocs/op it
// reports holds/s and cpu-ns/op, the CPU time (user and system, all
// threads) the process spent per Reserve and Settle.
func BenchmarkReserveSettle(b *testing.B) {
	run := func(b *testing.B, goroutines int) {
		ctx := context.Background()
		s, err := Open(ctx, filepath.Join(b.TempDir(), "llmgate.db"), Options{})
		require.NoError(b, err)
		defer s.Close()
		for i := range 10 {
			buy(b, s, fmt.Sprint("p", i), "acct", credits.MaxPurchase)
		}
		start := time.Now()
		var seq atomic.Int64
		one := func(i int64) {
			id := fmt.Sprint("h", i)
			h, err := s.Reserve(ctx, credits.Reservation{ID: id, Account: "acct", Max: 5 * credits.Cent, Min: credits.Cent, TTL: time.Minute})
			if err != nil {
				b.Fatal(err)
			}
			rec := testRecord(id, start)
			if _, err := s.Settle(ctx, id, h.Amount/2, rec); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportAllocs()
		b.ResetTimer()
		cpu := benchcpu.Process()
		if goroutines > 1 {
			b.SetParallelism(max(1, goroutines/runtime.GOMAXPROCS(0)))
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					one(seq.Add(1))
				}
			})
		} else {
			for range b.N {
				one(seq.Add(1))
			}
		}
		b.StopTimer()
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "holds/s")
		if cpu > 0 {
			b.ReportMetric(float64(benchcpu.Process()-cpu)/float64(b.N), "cpu-ns/op")
		}
	}
	b.Run("serial", func(b *testing.B) { run(b, 1) })
	b.Run("parallel-16", func(b *testing.B) { run(b, 16) })
	b.Run("parallel-64", func(b *testing.B) { run(b, 64) })
}

func TestCreditsConformance(t *testing.T) {
	for _, mode := range []string{"file", "memory"} {
		t.Run(mode, func(t *testing.T) {
			creditstest.Run(t, func(t *testing.T, now func() time.Time) credits.Store {
				dsn := ":memory:"
				if mode == "file" {
					dsn = filepath.Join(t.TempDir(), "llmgate.db")
				}
				s, err := Open(context.Background(), dsn, Options{Now: now})
				require.NoError(t, err)
				t.Cleanup(func() { s.Close() })
				return s
			})
		})
	}
}
