package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/llmgate/gateway/credits"
	"github.com/llmgate/gateway/credits/creditstest"
	"github.com/llmgate/gateway/store/postgres"
	"github.com/llmgate/gateway/store/postgres/pgtest"
)

func TestCreditsConformance(t *testing.T) {
	creditstest.Run(t, func(t *testing.T, now func() time.Time) credits.Store {
		return open(t, pgtest.NewDatabase(t), postgres.Options{Now: now})
	})
}

// newLedger opens a store on a fresh database with a clock the test moves.
func newLedger(t testing.TB) (*postgres.Store, *creditstest.Clock) {
	t.Helper()
	c := creditstest.NewClock(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	return open(t, pgtest.NewDatabase(t), postgres.Options{Now: c.Now}), c
}

const dollar = credits.Dollar

// buy purchases amount for account with purchase ID id.
func buy(t testing.TB, s credits.Store, id, account string, amount credits.Amount) credits.Lot {
	t.Helper()
	l, err := s.Purchase(context.Background(), credits.Purchase{ID: id, Account: account, Amount: amount})
	require.NoError(t, err)
	return l
}

// reserve holds between min and max of account's money for a minute.
func reserve(t testing.TB, s credits.Store, id, account string, min, max credits.Amount) credits.Hold {
	t.Helper()
	h, err := s.Reserve(context.Background(), credits.Reservation{ID: id, Account: account, Min: min, Max: max, TTL: time.Minute})
	require.NoError(t, err)
	return h
}

// balance returns account's balance after checking the accounting
// identity, and that Available is what the lots have left.
func balance(t testing.TB, s credits.Store, account string) credits.Balance {
	t.Helper()
	ctx := context.Background()
	b, err := s.Balance(ctx, account)
	require.NoError(t, err)
	require.Equal(t, b.Purchased, b.Available+b.Held+b.Spent+b.Expired, "identity of %+v", b)
	require.GreaterOrEqual(t, b.Available, credits.Amount(0))
	lots, _, err := s.Lots(ctx, account, credits.ListOptions{Limit: credits.MaxListLimit})
	require.NoError(t, err)
	var left credits.Amount
	for _, l := range lots {
		left += l.Remaining
	}
	require.Equal(t, b.Available, left, "lots' remainders")
	return b
}

// transactions returns all of account's transactions, newest first.
func transactions(t testing.TB, s credits.Store, account string) []credits.Transaction {
	t.Helper()
	p, err := s.Transactions(context.Background(), account, credits.ListOptions{Limit: credits.MaxListLimit})
	require.NoError(t, err)
	require.Empty(t, p.NextCursor)
	return p.Transactions
}

// kinds returns what each transaction is and moved.
func kinds(ts []credits.Transaction) []string {
	var out []string
	for _, t := range ts {
		out = append(out, fmt.Sprintf("%s %s %s%s", t.Kind, t.Amount, t.LotID, t.HoldID))
	}
	return out
}

func TestPurchase(t *testing.T) {
	ctx := context.Background()
	s, c := newLedger(t)
	now := c.Now()
	l, err := s.Purchase(ctx, credits.Purchase{ID: "order-1", Account: "acme", Amount: 10 * dollar, Note: "invoice 7"})
	require.NoError(t, err)
	require.Equal(t, credits.Lot{ID: "order-1", Account: "acme", Amount: 10 * dollar, Remaining: 10 * dollar,
		PurchasedAt: now, ExpiresAt: now.Add(credits.LotLifetime), Note: "invoice 7"}, l)

	t.Run("again", func(t *testing.T) {
		reserve(t, s, "h", "acme", dollar, dollar)
		again, err := s.Purchase(ctx, credits.Purchase{ID: "order-1", Account: "acme", Amount: 10 * dollar, Note: "other"})
		require.NoError(t, err)
		want := l
		want.Remaining = 9 * dollar // the lot as it is now
		require.Equal(t, want, again)
		require.NoError(t, s.Release(ctx, "h"))
	})
	for name, p := range map[string]credits.Purchase{
		"other amount":  {ID: "order-1", Account: "acme", Amount: 11 * dollar},
		"other account": {ID: "order-1", Account: "other", Amount: 10 * dollar},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := s.Purchase(ctx, p)
			require.ErrorIs(t, err, credits.ErrConflict)
		})
	}
	t.Run("invalid", func(t *testing.T) {
		_, err := s.Purchase(ctx, credits.Purchase{ID: "p", Account: "acme", Amount: credits.MinPurchase - 1})
		require.ErrorIs(t, err, credits.ErrPurchaseBelowMinimum)
		_, err = s.Purchase(ctx, credits.Purchase{ID: "p", Account: "has space", Amount: credits.MinPurchase})
		require.ErrorIs(t, err, credits.ErrInvalid)
	})

	b := balance(t, s, "acme")
	require.Equal(t, credits.Balance{Account: "acme", Available: 10 * dollar, Purchased: 10 * dollar,
		NextExpiry: now.Add(credits.LotLifetime), Known: true}, b)
	require.Equal(t, []string{"purchase 10.00 order-1"}, kinds(transactions(t, s, "acme")))
	tx := transactions(t, s, "acme")[0]
	require.Equal(t, "invoice 7", tx.Note)
	require.Equal(t, now, tx.At)
	require.Equal(t, "acme", tx.Account)

	other, err := s.Balance(ctx, "other")
	require.NoError(t, err, "a conflicting purchase leaves no account behind")
	require.Equal(t, credits.Balance{Account: "other"}, other)
}

func TestReserve(t *testing.T) {
	ctx := context.Background()
	s, c := newLedger(t)
	buy(t, s, "p1", "acme", 10*dollar)

	t.Run("never bought", func(t *testing.T) {
		_, err := s.Reserve(ctx, credits.Reservation{ID: "h0", Account: "nobody", Min: 1, Max: 2, TTL: time.Minute})
		var ie *credits.InsufficientError
		require.ErrorAs(t, err, &ie)
		require.Equal(t, credits.InsufficientError{Account: "nobody", Min: 1, Never: true}, *ie)
	})
	t.Run("holds max", func(t *testing.T) {
		now := c.Now()
		h := reserve(t, s, "h1", "acme", dollar, 3*dollar)
		require.Equal(t, credits.Hold{ID: "h1", Account: "acme", Amount: 3 * dollar, CreatedAt: now,
			ExpiresAt: now.Add(time.Minute)}, h)
		require.Equal(t, 7*dollar, balance(t, s, "acme").Available)
		require.Equal(t, 3*dollar, balance(t, s, "acme").Held)
	})
	t.Run("same ID", func(t *testing.T) {
		c.Advance(time.Second)
		h, err := s.Reserve(ctx, credits.Reservation{ID: "h1", Account: "acme", Min: 1, Max: 9 * dollar, TTL: time.Hour})
		require.NoError(t, err)
		require.Equal(t, 3*dollar, h.Amount, "the open hold, unchanged")
		_, err = s.Reserve(ctx, credits.Reservation{ID: "h1", Account: "other", Min: 1, Max: 1, TTL: time.Hour})
		require.ErrorIs(t, err, credits.ErrConflict)
	})
	t.Run("holds what is available", func(t *testing.T) {
		h := reserve(t, s, "h2", "acme", dollar, 100*dollar)
		require.Equal(t, 7*dollar, h.Amount)
	})
	t.Run("insufficient", func(t *testing.T) {
		_, err := s.Reserve(ctx, credits.Reservation{ID: "h3", Account: "acme", Min: 1, Max: 1, TTL: time.Minute})
		var ie *credits.InsufficientError
		require.ErrorAs(t, err, &ie)
		require.Equal(t, credits.InsufficientError{Account: "acme", Available: 0, Min: 1}, *ie)
		require.NoError(t, s.Release(ctx, "h2"))
		_, err = s.Reserve(ctx, credits.Reservation{ID: "h3", Account: "acme", Min: 8 * dollar, Max: 9 * dollar, TTL: time.Minute})
		require.ErrorAs(t, err, &ie)
		require.Equal(t, 7*dollar, ie.Available)
		require.ErrorIs(t, err, credits.ErrInsufficientCredits)
	})
	t.Run("ended", func(t *testing.T) {
		_, err := s.Reserve(ctx, credits.Reservation{ID: "h2", Account: "acme", Min: 1, Max: 1, TTL: time.Minute})
		require.ErrorIs(t, err, credits.ErrHoldClosed)
	})
	t.Run("invalid", func(t *testing.T) {
		_, err := s.Reserve(ctx, credits.Reservation{ID: "h4", Account: "acme", Min: 2, Max: 1, TTL: time.Minute})
		require.ErrorIs(t, err, credits.ErrInvalid)
	})
	b := balance(t, s, "acme")
	require.Equal(t, 3*dollar, b.Held)
	require.Equal(t, 7*dollar, b.Available)
	require.Empty(t, kinds(transactions(t, s, "acme"))[1:], "holds and releases are not transactions")
}

func TestEarliestExpiryFirst(t *testing.T) {
	ctx := context.Background()
	s, c := newLedger(t)
	buy(t, s, "old", "acme", 5*dollar)
	c.Advance(24 * time.Hour)
	buy(t, s, "new", "acme", 5*dollar)

	reserve(t, s, "h1", "acme", 7*dollar, 7*dollar) // 5 from old, 2 from new
	lots, _, err := s.Lots(ctx, "acme", credits.ListOptions{})
	require.NoError(t, err)
	require.Equal(t, []string{"new", "old"}, []string{lots[0].ID, lots[1].ID}, "newest first")
	require.Equal(t, []credits.Amount{3 * dollar, 0}, []credits.Amount{lots[0].Remaining, lots[1].Remaining})

	// Settle spends from old first and gives the rest back to new.
	st, err := s.Settle(ctx, "h1", 6*dollar, nil)
	require.NoError(t, err)
	require.Equal(t, credits.Settlement{Spent: 6 * dollar, Released: dollar}, st)
	lots, _, err = s.Lots(ctx, "acme", credits.ListOptions{})
	require.NoError(t, err)
	require.Equal(t, []credits.Amount{4 * dollar, 0}, []credits.Amount{lots[0].Remaining, lots[1].Remaining})
	require.Equal(t, lots[0].ExpiresAt, balance(t, s, "acme").NextExpiry)
}

func TestSettle(t *testing.T) {
	ctx := context.Background()
	s, c := newLedger(t)
	buy(t, s, "p1", "acme", 10*dollar)
	rec := func(id string) *credits.UsageRecord {
		return &credits.UsageRecord{ID: id, RequestID: id, Account: "acme", Provider: "openai", Model: "gpt",
			Cost: 90 * credits.Cent, Fee: 10 * credits.Cent, Start: c.Now(), End: c.Now().Add(time.Second)}
	}

	t.Run("spends and gives back", func(t *testing.T) {
		reserve(t, s, "h1", "acme", dollar, 3*dollar)
		r := rec("r1")
		st, err := s.Settle(ctx, "h1", dollar, r)
		require.NoError(t, err)
		require.Equal(t, credits.Settlement{Spent: dollar, Released: 2 * dollar}, st)
		require.False(t, r.Paid, "the caller's record is not changed")
		u, err := s.Usage(ctx, credits.UsageQuery{})
		require.NoError(t, err)
		want := *r
		want.Paid = true
		require.Equal(t, []credits.UsageRecord{want}, u.Records)

		again, err := s.Settle(ctx, "h1", 5*dollar, rec("r-other"))
		require.NoError(t, err)
		require.Equal(t, st, again, "settled twice: the first settlement")
		b := balance(t, s, "acme")
		require.Equal(t, 9*dollar, b.Available)
		require.Equal(t, dollar, b.Spent)
		require.Equal(t, credits.Amount(0), b.Held)
		require.Equal(t, []string{"spend 1.00 h1", "purchase 10.00 p1"}, kinds(transactions(t, s, "acme")))
	})
	t.Run("excess from available", func(t *testing.T) {
		reserve(t, s, "h2", "acme", dollar, 2*dollar)
		st, err := s.Settle(ctx, "h2", 4*dollar, nil)
		require.NoError(t, err)
		require.Equal(t, credits.Settlement{Spent: 4 * dollar}, st)
		require.Equal(t, 5*dollar, balance(t, s, "acme").Available)
	})
	t.Run("excess beyond everything", func(t *testing.T) {
		reserve(t, s, "h3", "acme", dollar, 2*dollar)
		r := rec("r3")
		st, err := s.Settle(ctx, "h3", 20*dollar, r)
		require.NoError(t, err)
		require.Equal(t, credits.Settlement{Spent: 5 * dollar, Uncollected: 15 * dollar}, st)
		b := balance(t, s, "acme")
		require.Equal(t, credits.Amount(0), b.Available)
		require.Equal(t, 10*dollar, b.Spent)
		u, err := s.Usage(ctx, credits.UsageQuery{ListOptions: credits.ListOptions{Limit: 1}})
		require.NoError(t, err)
		require.Equal(t, "r3", u.Records[0].ID)
		require.True(t, u.Records[0].Paid)
		require.Equal(t, 15*dollar, u.Records[0].Uncollected)
	})
	t.Run("zero", func(t *testing.T) {
		buy(t, s, "p2", "acme", 5*dollar)
		reserve(t, s, "h4", "acme", dollar, dollar)
		st, err := s.Settle(ctx, "h4", 0, nil)
		require.NoError(t, err)
		require.Equal(t, credits.Settlement{Released: dollar}, st)
		require.NotContains(t, kinds(transactions(t, s, "acme")), "spend 0.00 h4")
	})
	t.Run("validated before anything changes", func(t *testing.T) {
		reserve(t, s, "h5", "acme", dollar, dollar)
		_, err := s.Settle(ctx, "h5", -1, nil)
		require.ErrorIs(t, err, credits.ErrInvalid)
		bad := rec("r5")
		bad.Start = time.Time{}
		_, err = s.Settle(ctx, "h5", dollar, bad)
		require.ErrorIs(t, err, credits.ErrInvalid)
		require.Equal(t, dollar, balance(t, s, "acme").Held, "still open")
	})
	t.Run("record conflict rolls back", func(t *testing.T) {
		require.NoError(t, s.Record(ctx, rec("r6")))
		r := rec("r6") // same ID, but Settle marks it paid: other content
		_, err := s.Settle(ctx, "h5", dollar, r)
		require.ErrorIs(t, err, credits.ErrConflict)
		b := balance(t, s, "acme")
		require.Equal(t, dollar, b.Held, "still open")
		require.Equal(t, 10*dollar, b.Spent)
		st, err := s.Settle(ctx, "h5", dollar, rec("r7"))
		require.NoError(t, err)
		require.Equal(t, credits.Settlement{Spent: dollar}, st)
	})
	t.Run("record account", func(t *testing.T) {
		reserve(t, s, "h9", "acme", dollar, dollar)
		r := rec("r9")
		r.Account = "other"
		_, err := s.Settle(ctx, "h9", dollar, r)
		var ve *credits.ValidationError
		require.ErrorAs(t, err, &ve)
		require.Equal(t, "record.account", ve.Field)
		require.Equal(t, dollar, balance(t, s, "acme").Held, "still open")
		r.Account, r.Uncollected = "", 99
		_, err = s.Settle(ctx, "h9", 0, r)
		require.NoError(t, err)
		u, err := s.Usage(ctx, credits.UsageQuery{KeyID: "", Account: "acme", ListOptions: credits.ListOptions{Limit: 1}})
		require.NoError(t, err)
		require.Equal(t, "r9", u.Records[0].ID)
		require.Equal(t, "acme", u.Records[0].Account, "the hold's account")
		require.Zero(t, u.Records[0].Uncollected)
	})
	t.Run("released", func(t *testing.T) {
		reserve(t, s, "h8", "acme", dollar, dollar)
		require.NoError(t, s.Release(ctx, "h8"))
		require.NoError(t, s.Release(ctx, "h8"), "released twice")
		_, err := s.Settle(ctx, "h8", dollar, nil)
		require.ErrorIs(t, err, credits.ErrHoldClosed)
		require.NoError(t, s.Release(ctx, "h5"), "releasing a settled hold does nothing")
	})
	t.Run("unknown", func(t *testing.T) {
		_, err := s.Settle(ctx, "nope", dollar, nil)
		require.ErrorIs(t, err, credits.ErrHoldNotFound)
		require.ErrorIs(t, s.Release(ctx, "nope"), credits.ErrHoldNotFound)
	})
	b := balance(t, s, "acme")
	require.Equal(t, credits.Balance{Account: "acme", Available: 4 * dollar, Spent: 11 * dollar, Purchased: 15 * dollar,
		NextExpiry: b.NextExpiry, Known: true}, b)
}

func TestExpiry(t *testing.T) {
	ctx := context.Background()
	s, c := newLedger(t)
	buy(t, s, "old", "acme", 5*dollar)
	c.Advance(credits.LotLifetime - time.Hour)
	buy(t, s, "new", "acme", 5*dollar)
	reserve(t, s, "h1", "acme", 7*dollar, 7*dollar) // 5 from old, 2 from new
	reserve(t, s, "h2", "acme", dollar, dollar)     // from new
	c.Advance(2 * time.Hour)                        // old has expired; both holds too

	b := balance(t, s, "acme")
	require.Equal(t, credits.Balance{Account: "acme", Available: 2 * dollar, Held: 8 * dollar, Purchased: 10 * dollar,
		NextExpiry: b.NextExpiry, Known: true}, b, "holds past their expiry stay held until swept")

	// h1 spends 3 from old and gives 2 back to it: they expire with it.
	st, err := s.Settle(ctx, "h1", 3*dollar, nil)
	require.NoError(t, err)
	require.Equal(t, credits.Settlement{Spent: 3 * dollar, Released: 4 * dollar}, st)
	b = balance(t, s, "acme")
	require.Equal(t, 2*dollar, b.Expired)
	require.Equal(t, 4*dollar, b.Available)
	require.Equal(t, []string{"spend 3.00 h1", "expire 2.00 old", "purchase 5.00 new", "purchase 5.00 old"},
		kinds(transactions(t, s, "acme")))

	res, err := s.Sweep(ctx)
	require.NoError(t, err)
	require.Equal(t, credits.SweepResult{HoldsReleased: 1, Released: dollar}, res, "old has nothing left")
	again, err := s.Sweep(ctx)
	require.NoError(t, err)
	require.Zero(t, again)

	// A hold a Sweep released still settles, from the available money.
	st, err = s.Settle(ctx, "h2", 2*dollar, nil)
	require.NoError(t, err)
	require.Equal(t, credits.Settlement{Spent: 2 * dollar}, st)
	again2, err := s.Settle(ctx, "h2", 9*dollar, nil)
	require.NoError(t, err)
	require.Equal(t, st, again2)
	require.NoError(t, s.Release(ctx, "h2"))
	b = balance(t, s, "acme")
	require.Equal(t, credits.Balance{Account: "acme", Available: 3 * dollar, Spent: 5 * dollar, Expired: 2 * dollar,
		Purchased: 10 * dollar, NextExpiry: b.NextExpiry, Known: true}, b)

	// The rest of new expires: Expired counts it before the Sweep
	// records it.
	c.Advance(credits.LotLifetime)
	b = balance(t, s, "acme")
	require.Equal(t, credits.Balance{Account: "acme", Spent: 5 * dollar, Expired: 5 * dollar, Purchased: 10 * dollar,
		Known: true}, b)
	_, err = s.Reserve(ctx, credits.Reservation{ID: "h3", Account: "acme", Min: 1, Max: 1, TTL: time.Minute})
	require.ErrorIs(t, err, credits.ErrInsufficientCredits)
	res, err = s.Sweep(ctx)
	require.NoError(t, err)
	require.Equal(t, credits.SweepResult{LotsExpired: 1, Expired: 3 * dollar}, res)
	require.Equal(t, b, balance(t, s, "acme"))
	require.Equal(t, "expire 3.00 new", kinds(transactions(t, s, "acme"))[0])
}

func TestGiveBackToExpiredLot(t *testing.T) {
	ctx := context.Background()
	s, c := newLedger(t)
	buy(t, s, "old", "acme", 5*dollar)
	c.Advance(credits.LotLifetime - time.Hour)
	buy(t, s, "new", "acme", 5*dollar)
	reserve(t, s, "h1", "acme", 6*dollar, 6*dollar)
	c.Advance(2 * time.Hour)
	require.NoError(t, s.Release(ctx, "h1"))
	b := balance(t, s, "acme")
	require.Equal(t, 5*dollar, b.Expired)
	require.Equal(t, 5*dollar, b.Available)
	require.Equal(t, []string{"expire 5.00 old", "purchase 5.00 new", "purchase 5.00 old"}, kinds(transactions(t, s, "acme")))
}

func TestSweepManyAccounts(t *testing.T) {
	ctx := context.Background()
	s, c := newLedger(t)
	const n = 250 // more than one batch of accounts
	for i := range n {
		a := fmt.Sprintf("acct-%03d", i)
		buy(t, s, "p-"+a, a, 5*dollar)
		reserve(t, s, "h-"+a, a, dollar, dollar)
	}
	c.Advance(credits.LotLifetime)
	var wg sync.WaitGroup
	results := make([]credits.SweepResult, 3)
	for i := range results { // sweeping replicas
		wg.Go(func() {
			var err error
			results[i], err = s.Sweep(ctx)
			require.NoError(t, err)
		})
	}
	wg.Wait()
	var total credits.SweepResult
	for _, r := range results {
		total.HoldsReleased += r.HoldsReleased
		total.Released += r.Released
		total.LotsExpired += r.LotsExpired
		total.Expired += r.Expired
	}
	require.Equal(t, credits.SweepResult{HoldsReleased: n, Released: n * dollar, LotsExpired: n, Expired: n * 5 * dollar}, total,
		"each hold and lot swept once")
	b := balance(t, s, "acct-007")
	require.Equal(t, 5*dollar, b.Expired)
	page, err := s.Accounts(ctx, credits.ListOptions{})
	require.NoError(t, err)
	require.Len(t, page.Accounts, credits.DefaultListLimit)
	require.Equal(t, "acct-000", page.Accounts[0].Account)
	require.Equal(t, b, page.Accounts[7])
}

func TestLists(t *testing.T) {
	ctx := context.Background()
	s, c := newLedger(t)
	for i := range 5 {
		buy(t, s, fmt.Sprintf("p%d", i), "acme", 5*dollar)
		buy(t, s, fmt.Sprintf("q%d", i), fmt.Sprintf("z-%d", i), 5*dollar)
		if i%2 == 0 {
			c.Advance(time.Second) // ties too: orders fall back on IDs
		}
	}
	for i := range 5 {
		reserve(t, s, fmt.Sprintf("h%d", i), "acme", dollar, dollar)
		_, err := s.Settle(ctx, fmt.Sprintf("h%d", i), dollar, nil)
		require.NoError(t, err)
	}
	all := transactions(t, s, "acme")
	require.Len(t, all, 10)
	allLots, _, err := s.Lots(ctx, "acme", credits.ListOptions{})
	require.NoError(t, err)
	require.Equal(t, []string{"p4", "p3", "p2", "p1", "p0"}, func() (ids []string) {
		for _, l := range allLots {
			ids = append(ids, l.ID)
		}
		return ids
	}())
	allAccounts, err := s.Accounts(ctx, credits.ListOptions{})
	require.NoError(t, err)
	require.Len(t, allAccounts.Accounts, 6)

	for _, limit := range []int{1, 3, 4} {
		t.Run(fmt.Sprint("limit ", limit), func(t *testing.T) {
			var txs []credits.Transaction
			for cursor := ""; ; {
				p, err := s.Transactions(ctx, "acme", credits.ListOptions{Limit: limit, Cursor: cursor})
				require.NoError(t, err)
				require.LessOrEqual(t, len(p.Transactions), limit)
				txs = append(txs, p.Transactions...)
				if cursor = p.NextCursor; cursor == "" {
					break
				}
			}
			require.Equal(t, all, txs)
			var lots []credits.Lot
			for cursor := ""; ; {
				page, next, err := s.Lots(ctx, "acme", credits.ListOptions{Limit: limit, Cursor: cursor})
				require.NoError(t, err)
				lots = append(lots, page...)
				if cursor = next; cursor == "" {
					break
				}
			}
			require.Equal(t, allLots, lots)
			var accounts []credits.Balance
			for cursor := ""; ; {
				p, err := s.Accounts(ctx, credits.ListOptions{Limit: limit, Cursor: cursor})
				require.NoError(t, err)
				accounts = append(accounts, p.Accounts...)
				if cursor = p.NextCursor; cursor == "" {
					break
				}
			}
			require.Equal(t, allAccounts.Accounts, accounts)
		})
	}
	t.Run("invalid", func(t *testing.T) {
		for _, o := range []credits.ListOptions{{Limit: -1}, {Limit: credits.MaxListLimit + 1}, {Cursor: "!"}} {
			_, err := s.Transactions(ctx, "acme", o)
			require.ErrorIs(t, err, credits.ErrInvalid)
			_, _, err = s.Lots(ctx, "acme", o)
			require.ErrorIs(t, err, credits.ErrInvalid)
			_, err = s.Accounts(ctx, o)
			require.ErrorIs(t, err, credits.ErrInvalid)
		}
		_, err := s.Transactions(ctx, "acme", credits.ListOptions{Cursor: credits.EncodeCursor(c.Now(), "p1")})
		require.ErrorIs(t, err, credits.ErrInvalid, "a lot's cursor")
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
}

// TestRandomOperations runs a seeded random mix of every call on a few
// accounts and checks the accounting identity after each.
func TestRandomOperations(t *testing.T) {
	ctx := context.Background()
	s, c := newLedger(t)
	rng := rand.New(rand.NewPCG(1, 2))
	accounts := []string{"a", "b", "c"}
	var holds []string
	for i := range 400 {
		a := accounts[rng.IntN(len(accounts))]
		switch op := rng.IntN(10); {
		case op < 2:
			buy(t, s, fmt.Sprint("p", i), a, credits.MinPurchase+credits.Amount(rng.Int64N(int64(5*dollar))))
		case op < 5:
			id := fmt.Sprint("h", i)
			min := credits.Amount(1 + rng.Int64N(int64(dollar)))
			_, err := s.Reserve(ctx, credits.Reservation{ID: id, Account: a, Min: min, Max: min + credits.Amount(rng.Int64N(int64(3*dollar))),
				TTL: time.Duration(1+rng.IntN(120)) * time.Minute})
			if err == nil {
				holds = append(holds, id)
			} else {
				require.ErrorIs(t, err, credits.ErrInsufficientCredits)
			}
		case op < 7 && len(holds) > 0:
			_, err := s.Settle(ctx, holds[rng.IntN(len(holds))], credits.Amount(rng.Int64N(int64(4*dollar))), nil)
			if !errors.Is(err, credits.ErrHoldClosed) {
				require.NoError(t, err)
			}
		case op < 8 && len(holds) > 0:
			require.NoError(t, s.Release(ctx, holds[rng.IntN(len(holds))]))
		case op < 9:
			c.Advance(time.Duration(rng.Int64N(int64(60 * 24 * time.Hour))))
		default:
			_, err := s.Sweep(ctx)
			require.NoError(t, err)
		}
		for _, a := range accounts {
			balance(t, s, a)
		}
	}
}

// TestManyPoolsNeverOverspend races replicas (Stores with pools of their
// own on one database) to hold and spend one account's money: exactly what
// it has is held and spent, never more.
func TestManyPoolsNeverOverspend(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.NewDatabase(t)
	const replicas, workers = 4, 32
	stores := make([]*postgres.Store, replicas)
	for i := range stores {
		stores[i] = open(t, dsn, postgres.Options{})
	}
	buy(t, stores[0], "p1", "acme", 5*dollar)
	const price = 25 * credits.Cent

	var held, settled, refused atomic.Int64
	var wg sync.WaitGroup
	start := make(chan struct{})
	for r, s := range stores {
		for w := range workers {
			wg.Go(func() {
				<-start
				id := fmt.Sprintf("h-%d-%d", r, w)
				_, err := s.Reserve(ctx, credits.Reservation{ID: id, Account: "acme", Min: price, Max: price, TTL: time.Minute})
				if err != nil {
					if !errors.Is(err, credits.ErrInsufficientCredits) {
						t.Errorf("reserve %s: %v", id, err)
					}
					refused.Add(1)
					return
				}
				held.Add(1)
				st, err := s.Settle(ctx, id, price, nil)
				if err != nil {
					t.Errorf("settle %s: %v", id, err)
					return
				}
				if st != (credits.Settlement{Spent: price}) {
					t.Errorf("settle %s: %+v", id, st)
				}
				settled.Add(1)
			})
		}
	}
	// Watch the balance while they race: never below zero, the identity
	// always.
	stop := make(chan struct{})
	watched := make(chan error, 1)
	go func() {
		for {
			b, err := stores[0].Balance(ctx, "acme")
			switch {
			case err != nil:
				watched <- err
				return
			case b.Available < 0 || b.Purchased != b.Available+b.Held+b.Spent+b.Expired:
				watched <- fmt.Errorf("balance %+v", b)
				return
			}
			select {
			case <-stop:
				watched <- nil
				return
			default:
			}
		}
	}()
	close(start)
	wg.Wait()
	close(stop)
	require.NoError(t, <-watched)
	require.Equal(t, int64(20), held.Load(), "$5 holds $0.25 twenty times")
	require.Equal(t, int64(20), settled.Load())
	require.Equal(t, int64(replicas*workers-20), refused.Load())
	b := balance(t, stores[1], "acme")
	require.Equal(t, credits.Balance{Account: "acme", Spent: 5 * dollar, Purchased: 5 * dollar, NextExpiry: b.NextExpiry, Known: true}, b)
	require.Len(t, transactions(t, stores[2], "acme"), 21)
	require.Zero(t, queryInt(t, dsn, `SELECT count(*) FROM llmgate.credit_hold_allocations`), "ended holds keep no allocations")
	require.Equal(t, 20, queryInt(t, dsn, `SELECT count(*) FROM llmgate.credit_holds WHERE state = 'settled'`))
}

// TestConcurrentConflicts races accounts for one purchase ID and one hold
// ID, and holds for one record ID: exactly one wins each, the others are
// conflicts that change nothing.
func TestConcurrentConflicts(t *testing.T) {
	ctx := context.Background()
	s, c := newLedger(t)
	const n = 12
	race := func(fn func(i int) error) (won int) {
		errs := make([]error, n)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range n {
			wg.Go(func() {
				<-start
				errs[i] = fn(i)
			})
		}
		close(start)
		wg.Wait()
		for _, err := range errs {
			if err == nil {
				won++
				continue
			}
			require.ErrorIs(t, err, credits.ErrConflict)
		}
		return won
	}
	account := func(i int) string { return fmt.Sprint("acct-", i) }
	require.Equal(t, 1, race(func(i int) error {
		_, err := s.Purchase(ctx, credits.Purchase{ID: "order", Account: account(i), Amount: 5 * dollar})
		return err
	}))
	for i := range n {
		buy(t, s, fmt.Sprint("p-", i), account(i), 5*dollar)
	}
	require.Equal(t, 1, race(func(i int) error {
		_, err := s.Reserve(ctx, credits.Reservation{ID: "hold", Account: account(i), Min: dollar, Max: dollar, TTL: time.Minute})
		return err
	}))
	for i := range n {
		reserve(t, s, fmt.Sprint("h-", i), account(i), dollar, dollar)
	}
	require.Equal(t, 1, race(func(i int) error {
		_, err := s.Settle(ctx, fmt.Sprint("h-", i), dollar, &credits.UsageRecord{ID: "record", Start: c.Now()})
		return err
	}))
	var purchased, held, spent credits.Amount
	for i := range n {
		b := balance(t, s, account(i))
		purchased += b.Purchased
		held += b.Held
		spent += b.Spent
	}
	require.Equal(t, (n+1)*5*dollar, purchased)
	require.Equal(t, (n+1-1)*dollar, held, "every hold but the settled one")
	require.Equal(t, dollar, spent)
	u, err := s.Usage(ctx, credits.UsageQuery{})
	require.NoError(t, err)
	require.Len(t, u.Records, 1)
}

func TestCreditsClosedStore(t *testing.T) {
	ctx := context.Background()
	s, err := postgres.Open(ctx, pgtest.NewDatabase(t), postgres.Options{})
	require.NoError(t, err)
	buy(t, s, "p1", "acme", 5*dollar)
	reserve(t, s, "h1", "acme", dollar, dollar)
	require.NoError(t, s.Close())
	rec := &credits.UsageRecord{ID: "r1", Start: time.Now()}
	calls := map[string]func() error{
		"Purchase": func() error {
			_, err := s.Purchase(ctx, credits.Purchase{ID: "p2", Account: "acme", Amount: 5 * dollar})
			return err
		},
		"Reserve": func() error {
			_, err := s.Reserve(ctx, credits.Reservation{ID: "h2", Account: "acme", Min: 1, Max: 1, TTL: time.Minute})
			return err
		},
		"Settle":       func() error { _, err := s.Settle(ctx, "h1", 1, nil); return err },
		"Release":      func() error { return s.Release(ctx, "h1") },
		"Record":       func() error { return s.Record(ctx, rec) },
		"Balance":      func() error { _, err := s.Balance(ctx, "acme"); return err },
		"Sweep":        func() error { _, err := s.Sweep(ctx); return err },
		"Lots":         func() error { _, _, err := s.Lots(ctx, "acme", credits.ListOptions{}); return err },
		"Transactions": func() error { _, err := s.Transactions(ctx, "acme", credits.ListOptions{}); return err },
		"Accounts":     func() error { _, err := s.Accounts(ctx, credits.ListOptions{}); return err },
		"Usage":        func() error { _, err := s.Usage(ctx, credits.UsageQuery{}); return err },
		"Summary":      func() error { _, err := s.Summary(ctx, credits.SummaryQuery{}); return err },
	}
	for name, call := range calls {
		t.Run(name, func(t *testing.T) {
			require.ErrorIs(t, call(), credits.ErrUnavailable)
		})
	}
}

func TestCreditsContext(t *testing.T) {
	s, _ := newLedger(t)
	buy(t, s, "p1", "acme", 5*dollar)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := s.Reserve(ctx, credits.Reservation{ID: "h1", Account: "acme", Min: 1, Max: 1, TTL: time.Minute})
	require.ErrorIs(t, err, context.Canceled)
	_, err = s.Balance(ctx, "acme")
	require.ErrorIs(t, err, context.Canceled)

	dctx, dcancel := context.WithDeadline(context.Background(), time.Unix(0, 0))
	defer dcancel()
	_, err = s.Settle(dctx, "h1", 1, nil)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.ErrorIs(t, err, credits.ErrUnavailable)
	require.Equal(t, 5*dollar, balance(t, s, "acme").Available, "nothing changed")
}

// BenchmarkReserveSettle measures a Reserve and its Settle on one
// account by 1, 16 and 64 goroutines, and on 8 accounts by 8 and 64
// goroutines (spread evenly). The pool has 16 connections. Each call
// locks the account's row and is committed (a WAL flush) when it
// returns; the store writes concurrent calls in shared transactions, so
// one account's throughput grows with the calls in flight.
func BenchmarkReserveSettle(b *testing.B) {
	ctx := context.Background()
	dsn := withPoolSize(pgtest.NewDatabase(b), 16)
	s := open(b, dsn, postgres.Options{})
	const accounts = 8
	for i := range accounts {
		a := fmt.Sprint("acct-", i)
		buy(b, s, "p-"+a, a, credits.MaxPurchase)
	}
	var holds, goroutines atomic.Int64
	for _, bc := range []struct {
		name                 string
		goroutines, accounts int
	}{
		{"one account/1", 1, 1},
		{"one account/16", 16, 1},
		{"one account/64", 64, 1},
		{"8 accounts/8", 8, accounts},
		{"8 accounts/64", 64, accounts},
	} {
		b.Run(bc.name, func(b *testing.B) {
			// RunParallel starts parallelism × GOMAXPROCS goroutines.
			procs := runtime.GOMAXPROCS(0)
			b.SetParallelism(max(1, bc.goroutines/procs))
			b.ReportAllocs()
			hold := func(a string) bool {
				id := fmt.Sprint("h", holds.Add(1))
				if _, err := s.Reserve(ctx, credits.Reservation{ID: id, Account: a, Min: 1, Max: credits.Cent, TTL: time.Minute}); err != nil {
					b.Error(err)
					return false
				}
				if _, err := s.Settle(ctx, id, credits.Cent/2, nil); err != nil {
					b.Error(err)
					return false
				}
				return true
			}
			if bc.goroutines == 1 { // a lone caller: its latency
				for i := 0; i < b.N && hold("acct-0"); i++ {
				}
			} else {
				b.RunParallel(func(pb *testing.PB) {
					a := fmt.Sprint("acct-", goroutines.Add(1)%int64(bc.accounts))
					for pb.Next() && hold(a) {
					}
				})
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "holds/s")
		})
	}
}

// withPoolSize returns dsn (a URL or keyword/value DSN) with a pool of n
// connections.
func withPoolSize(dsn string, n int) string {
	switch {
	case !strings.Contains(dsn, "://"):
		return fmt.Sprintf("%s pool_max_conns=%d", dsn, n)
	case strings.Contains(dsn, "?"):
		return fmt.Sprintf("%s&pool_max_conns=%d", dsn, n)
	}
	return fmt.Sprintf("%s?pool_max_conns=%d", dsn, n)
}
