// Package creditstest is the conformance suite of credits.Store: every
// store (credits.Memory, store/sqlite, store/postgres) runs it from its
// tests with Run, so that all of them keep the same books.
package creditstest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/llmgate/gateway/credits"
)

// Clock is a fake clock for stores under test: it stands still until
// Advance or Set moves it. The zero Clock reads the zero time; NewClock
// starts one. A Clock is safe for concurrent use.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock returns a Clock reading t.
func NewClock(t time.Time) *Clock { return &Clock{t: t} }

// Now returns the clock's time; pass c.Now to a store as its clock.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock d forward and returns the new time.
func (c *Clock) Advance(d time.Duration) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
	return c.t
}

// Set moves the clock to t.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// StartTime is when the clock of every subtest of Run starts: a UTC time
// with microseconds, the precision of the database stores.
func StartTime() time.Time { return time.Date(2030, 1, 2, 3, 4, 5, 123456000, time.UTC) }

// Run runs the conformance suite. open is called once per subtest and must
// return a new, empty store whose clock is now (closing it with t.Cleanup
// when it holds resources); the store must read now for every time it
// sets or compares: purchases, holds, lot and hold expiry, transactions.
// Subtests run one after another; some run many goroutines against one
// store. Under -short the property test runs fewer steps.
//
// The rules the suite pins down beyond the doc comments of package
// credits (every store keeps them):
//
// Times
//   - times are returned in UTC, truncated to the microsecond (usage
//     record times too, including attempts' Start); the clock of the
//     suite has microsecond precision;
//   - a lot or a hold is expired when now ≥ its ExpiresAt; Lot.ExpiresAt
//     is PurchasedAt + LotLifetime, Hold.ExpiresAt is CreatedAt + TTL.
//
// Purchases and lots
//   - a lot's ID is its Purchase.ID; purchase IDs are global (one ID, one
//     lot, whatever the account);
//   - validation comes first: a purchase below the minimum is
//     ErrPurchaseBelowMinimum even when its ID is taken;
//   - a repeated purchase (same ID, account and amount) returns the lot as
//     it is now; the note is not compared; it adds nothing;
//   - Lot.Remaining is what is neither held nor spent nor expired: held
//     money is out of its lot until the hold ends; a lot past its expiry
//     shows Remaining 0 whether or not a Sweep recorded it;
//   - lots whose ExpiresAt tie are used in an order of the store's choice
//     (the suite never makes them tie where the order matters).
//
// Holds
//   - Reserve, Settle and Release validate their arguments before looking
//     anything up: an empty or malformed hold ID is ErrInvalid (field
//     "id"), a negative actual ErrInvalid (field "actual");
//   - reserving the ID of an open hold returns it unchanged, whatever the
//     new Max, Min and TTL; an open hold stays open past its ExpiresAt
//     until a Sweep (or Settle, Release) ends it: it counts as Held, and
//     Settle settles it from the hold as usual;
//   - only Sweep expires holds; a swept hold is ended: Reserve of its ID
//     is ErrHoldClosed, Release is nil, Settle spends actual from the
//     available money (Released 0) and then counts as settled;
//   - Settle spends from the hold's money earliest lot expiry first and
//     gives the rest back to the lots it came from; beyond the hold it
//     spends from the available money, earliest expiry first;
//   - a Settle that spends nothing (actual 0, or nothing collectable)
//     writes no transaction: transactions have positive amounts; a Settle
//     that spends writes TxSpend transactions with HoldID set whose sum is
//     Settlement.Spent (the suite's stores write one);
//   - Settlement.Spent + Settlement.Uncollected = actual, always;
//   - money a hold gives back to a lot past its expiry is Expired at once
//     in Balance, and recorded as a TxExpire of that lot either at once
//     or by the next Sweep;
//   - hold IDs are global; reserving another account's hold ID is
//     ErrConflict (the suite tries it on open holds only).
//
// Transactions
//   - a purchase writes one TxPurchase (LotID = the lot, Note = the
//     purchase's, At = PurchasedAt); a TxExpire has LotID set and At no
//     earlier than its lot's ExpiresAt; a TxSpend has HoldID set.
//
// Sweeps
//   - SweepResult.HoldsReleased and Released count the holds a Sweep
//     ended and their whole amounts (also what went on to expire with its
//     lot); LotsExpired and Expired count what the Sweep recorded as
//     expired.
//
// Usage records
//   - Settle keeps a copy of rec with Paid true, Uncollected =
//     Settlement.Uncollected and Account = the hold's account (a non-empty
//     rec.Account naming another account is ErrInvalid, field
//     "record.account"); it never modifies *rec; an invalid rec fails the
//     Settle before anything changes; a rec whose ID is kept with other
//     content is ErrConflict and nothing is charged; settling again
//     ignores rec;
//   - Record keeps a copy with Paid false and Uncollected 0, whatever the
//     caller set; "same content" compares every field after that, with
//     times compared at microsecond precision and empty and nil Attempts
//     the same (stores may return either);
//   - Usage and Summary filters (Account, KeyID, From, To) are not
//     validated: a filter matching nothing gives nothing.
//
// Lists
//   - the last page of every list has an empty NextCursor, even when it is
//     full; a malformed cursor is ErrInvalid (field "cursor"), a negative
//     or too large limit ErrInvalid (field "limit");
//   - Lots are newest first by PurchasedAt then ID; Transactions newest
//     first by At, then by an ID order of the store's choice that its
//     cursors follow (the suite checks only that At never increases and
//     that pages join into the whole list); Usage newest first by Start,
//     then ID (descending byte order);
//   - Lots and Transactions of an account that never bought credits are
//     empty, not an error; a malformed account ID is ErrInvalid (field
//     "account") in Balance, Lots and Transactions;
//   - Summary rows are ordered by the grouped dimensions in the order
//     GroupBy lists them, each ascending in byte order (PostgreSQL needs
//     COLLATE "C"); a query that selects no record returns no rows, even
//     without GroupBy.
//
// Expiry
//   - reads (Balance, Lots, Transactions, Accounts, Usage, Summary)
//     record nothing; writes may record expired lot remainders lazily, so
//     the suite checks Sweep's LotsExpired and Expired only after reads;
//     once a Sweep ran, Balance.Expired is the sum of the TxExpire
//     transactions.
//
// Balances
//   - Balance (and each balance of Accounts) is one consistent snapshot:
//     goroutines read it while others reserve, settle and release, and
//     every read must keep the identity exactly;
//   - Balance.NextExpiry is the ExpiresAt of the earliest unexpired lot
//     with Remaining > 0.
//
// Concurrency
//   - contention is the store's to absorb (retry, wait, serialize): under
//     the suite's 64 goroutines no call may fail with anything but the
//     errors of package credits' rules (ErrInsufficientCredits,
//     ErrHoldClosed);
//   - Sweeps racing each other, Settle and Release end a hold once;
//     Reserves of one hold ID racing make one hold, Purchases of one
//     purchase ID one lot.
//
// Contexts
//   - every method called with a canceled context returns an error
//     matching context.Canceled and changes nothing.
func Run(t *testing.T, open func(t *testing.T, now func() time.Time) credits.Store) {
	tests := []struct {
		name string
		fn   func(e *env)
	}{
		{"Purchase", testPurchase},
		{"PurchaseLimits", testPurchaseLimits},
		{"PurchaseIdempotent", testPurchaseIdempotent},
		{"LotExpiry", testLotExpiry},
		{"LotExpiryAfterSpending", testLotExpiryAfterSpending},
		{"EarliestExpiryFirst", testEarliestExpiryFirst},
		{"ReservePartial", testReservePartial},
		{"ReserveInsufficient", testReserveInsufficient},
		{"ReserveInvalid", testReserveInvalid},
		{"HoldIdempotency", testHoldIdempotency},
		{"Settle", testSettle},
		{"SettleExcess", testSettleExcess},
		{"HoldExpirySweep", testHoldExpirySweep},
		{"SettleAfterSweep", testSettleAfterSweep},
		{"HoldOutlivesLot", testHoldOutlivesLot},
		{"SettleRecord", testSettleRecord},
		{"SettleRecordRefused", testSettleRecordRefused},
		{"Record", testRecord},
		{"RecordInvalid", testRecordInvalid},
		{"Usage", testUsage},
		{"UsageLimits", testUsageLimits},
		{"Summary", testSummary},
		{"Accounts", testAccounts},
		{"Lots", testLots},
		{"Transactions", testTransactions},
		{"ArgumentsInvalid", testArgumentsInvalid},
		{"CanceledContext", testCanceled},
		{"ConcurrentReserves", testConcurrentReserves},
		{"ConcurrentEnds", testConcurrentEnds},
		{"ConcurrentPurchases", testConcurrentPurchases},
		{"Property", testProperty},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := NewClock(StartTime())
			e := &env{t: t, clock: clock, ctx: t.Context()}
			e.s = open(t, clock.Now)
			tt.fn(e)
		})
	}
	// Stores that lease (credits.Leaser) keep the same books when spent
	// from in steps.
	for _, tt := range leaseTests {
		t.Run(tt.name, func(t *testing.T) {
			clock := NewClock(StartTime())
			e := &env{t: t, clock: clock, ctx: t.Context()}
			e.s = open(t, clock.Now)
			l, ok := e.s.(credits.Leaser)
			if !ok {
				t.Skipf("%T is not a credits.Leaser", e.s)
			}
			tt.fn(e, l)
		})
	}
}

// env is one subtest's store and clock.
type env struct {
	t     *testing.T
	s     credits.Store
	clock *Clock
	ctx   context.Context
}

const (
	dollar = credits.Dollar
	cent   = credits.Cent
	day    = 24 * time.Hour
)

// with returns e for the subtest t.
func (e *env) with(t *testing.T) *env {
	c := *e
	c.t = t
	return &c
}

// buy purchases amount for account under purchase ID id.
func (e *env) buy(id, account string, amount credits.Amount) credits.Lot {
	e.t.Helper()
	l, err := e.s.Purchase(e.ctx, credits.Purchase{ID: id, Account: account, Amount: amount})
	require.NoError(e.t, err)
	return l
}

// reserve holds between lo and hi of account's money for ttl.
func (e *env) reserve(id, account string, hi, lo credits.Amount, ttl time.Duration) credits.Hold {
	e.t.Helper()
	h, err := e.s.Reserve(e.ctx, credits.Reservation{ID: id, Account: account, Max: hi, Min: lo, TTL: ttl})
	require.NoError(e.t, err)
	return h
}

// settle settles holdID for actual without a record.
func (e *env) settle(holdID string, actual credits.Amount) credits.Settlement {
	e.t.Helper()
	s, err := e.s.Settle(e.ctx, holdID, actual, nil)
	require.NoError(e.t, err)
	return s
}

// balance returns account's balance, checking the accounting identity.
func (e *env) balance(account string) credits.Balance {
	e.t.Helper()
	b, err := e.s.Balance(e.ctx, account)
	require.NoError(e.t, err)
	checkIdentity(e.t, b)
	require.Equal(e.t, account, b.Account)
	return b
}

// checkIdentity checks Purchased = Available + Held + Spent + Expired and
// that no part is negative.
func checkIdentity(t testing.TB, b credits.Balance) {
	t.Helper()
	require.GreaterOrEqual(t, b.Available, credits.Amount(0), "available of %+v", b)
	require.GreaterOrEqual(t, b.Held, credits.Amount(0), "held of %+v", b)
	require.GreaterOrEqual(t, b.Spent, credits.Amount(0), "spent of %+v", b)
	require.GreaterOrEqual(t, b.Expired, credits.Amount(0), "expired of %+v", b)
	require.Equal(t, b.Purchased, b.Available+b.Held+b.Spent+b.Expired,
		"purchased = available + held + spent + expired broken: %+v", b)
}

// money is the five amounts of a balance.
type money struct{ Available, Held, Spent, Expired, Purchased credits.Amount }

// want checks account's balance against m.
func (e *env) want(account string, m money) credits.Balance {
	e.t.Helper()
	b := e.balance(account)
	require.Equal(e.t, m, money{b.Available, b.Held, b.Spent, b.Expired, b.Purchased}, "balance of %s", account)
	return b
}

// lots returns account's lots by ID.
func (e *env) lots(account string) map[string]credits.Lot {
	e.t.Helper()
	out := map[string]credits.Lot{}
	cursor := ""
	for {
		page, next, err := e.s.Lots(e.ctx, account, credits.ListOptions{Limit: credits.MaxListLimit, Cursor: cursor})
		require.NoError(e.t, err)
		for _, l := range page {
			out[l.ID] = l
		}
		if next == "" {
			return out
		}
		cursor = next
	}
}

// remaining returns the Remaining of account's lots by ID.
func (e *env) remaining(account string) map[string]credits.Amount {
	e.t.Helper()
	out := map[string]credits.Amount{}
	for id, l := range e.lots(account) {
		out[id] = l.Remaining
	}
	return out
}

// txs returns all of account's transactions, newest first.
func (e *env) txs(account string) []credits.Transaction {
	e.t.Helper()
	var out []credits.Transaction
	cursor := ""
	for {
		p, err := e.s.Transactions(e.ctx, account, credits.ListOptions{Limit: credits.MaxListLimit, Cursor: cursor})
		require.NoError(e.t, err)
		out = append(out, p.Transactions...)
		if p.NextCursor == "" {
			return out
		}
		cursor = p.NextCursor
	}
}

// txSums returns the sums of account's transactions by kind, checking
// that every amount is positive.
func (e *env) txSums(account string) map[credits.TransactionKind]credits.Amount {
	e.t.Helper()
	sums := map[credits.TransactionKind]credits.Amount{}
	for _, tx := range e.txs(account) {
		require.Positive(e.t, tx.Amount, "transaction %+v", tx)
		require.Equal(e.t, account, tx.Account)
		sums[tx.Kind] += tx.Amount
	}
	return sums
}

// checkBooks checks that account's transactions add up to its balance;
// Expired only matches after a Sweep.
func (e *env) checkBooks(account string, swept bool) {
	e.t.Helper()
	b := e.balance(account)
	sums := e.txSums(account)
	require.Equal(e.t, b.Purchased, sums[credits.TxPurchase], "purchases of %s", account)
	require.Equal(e.t, b.Spent, sums[credits.TxSpend], "spending of %s", account)
	if swept {
		require.Equal(e.t, b.Expired, sums[credits.TxExpire], "expiry of %s", account)
	}
}

// sweep runs a Sweep.
func (e *env) sweep() credits.SweepResult {
	e.t.Helper()
	r, err := e.s.Sweep(e.ctx)
	require.NoError(e.t, err)
	return r
}

// usage returns every record q selects, walking the pages.
func (e *env) usage(q credits.UsageQuery) []credits.UsageRecord {
	e.t.Helper()
	var out []credits.UsageRecord
	for {
		p, err := e.s.Usage(e.ctx, q)
		require.NoError(e.t, err)
		out = append(out, p.Records...)
		if p.NextCursor == "" {
			return out
		}
		q.Cursor = p.NextCursor
	}
}

// requireInvalid checks that err is a *ValidationError of field.
func requireInvalid(t testing.TB, err error, field string) {
	t.Helper()
	require.ErrorIs(t, err, credits.ErrInvalid)
	var ve *credits.ValidationError
	require.True(t, errors.As(err, &ve), "%v is not a *ValidationError", err)
	require.Equal(t, field, ve.Field, "field of %v", err)
}

// requireTime checks that got is want, in UTC.
func requireTime(t testing.TB, want, got time.Time, msg string) {
	t.Helper()
	require.True(t, want.Equal(got), "%s: want %v, got %v", msg, want, got)
	require.Equal(t, time.UTC, got.Location(), "%s: not UTC", msg)
}

func testPurchase(e *env) {
	t := e.t
	now := e.clock.Now()
	lot, err := e.s.Purchase(e.ctx, credits.Purchase{ID: "order-1", Account: "acme", Amount: 10 * dollar, Note: "invoice 7 ✓"})
	require.NoError(t, err)
	require.Equal(t, "order-1", lot.ID)
	require.Equal(t, "acme", lot.Account)
	require.Equal(t, 10*dollar, lot.Amount)
	require.Equal(t, 10*dollar, lot.Remaining)
	require.Equal(t, "invoice 7 ✓", lot.Note)
	requireTime(t, now, lot.PurchasedAt, "PurchasedAt")
	requireTime(t, now.Add(credits.LotLifetime), lot.ExpiresAt, "ExpiresAt")

	b := e.want("acme", money{Available: 10 * dollar, Purchased: 10 * dollar})
	require.True(t, b.Known)
	requireTime(t, lot.ExpiresAt, b.NextExpiry, "NextExpiry")
	require.Equal(t, map[string]credits.Lot{"order-1": lot}, e.lots("acme"))

	txs := e.txs("acme")
	require.Len(t, txs, 1)
	tx := txs[0]
	require.NotEmpty(t, tx.ID)
	require.Equal(t, credits.TxPurchase, tx.Kind)
	require.Equal(t, "acme", tx.Account)
	require.Equal(t, 10*dollar, tx.Amount)
	require.Equal(t, "order-1", tx.LotID)
	require.Equal(t, "invoice 7 ✓", tx.Note)
	requireTime(t, now, tx.At, "transaction At")

	// A second purchase adds a lot; the first lot is untouched.
	e.clock.Advance(time.Hour)
	e.buy("order-2", "acme", 5*dollar)
	e.want("acme", money{Available: 15 * dollar, Purchased: 15 * dollar})
	require.Equal(t, map[string]credits.Amount{"order-1": 10 * dollar, "order-2": 5 * dollar}, e.remaining("acme"))
	requireTime(t, lot.ExpiresAt, e.balance("acme").NextExpiry, "NextExpiry after a later lot")

	// An account that never bought has the zero balance.
	b = e.balance("nobody")
	require.Equal(t, credits.Balance{Account: "nobody"}, b)
}

func testPurchaseLimits(e *env) {
	t := e.t
	for _, tc := range []struct {
		name   string
		p      credits.Purchase
		field  string // "" for ErrPurchaseBelowMinimum
		target error
	}{
		{"one micro-dollar below the minimum", credits.Purchase{ID: "p", Account: "a", Amount: credits.MinPurchase - 1}, "", credits.ErrPurchaseBelowMinimum},
		{"zero", credits.Purchase{ID: "p", Account: "a"}, "", credits.ErrPurchaseBelowMinimum},
		{"negative", credits.Purchase{ID: "p", Account: "a", Amount: -10 * dollar}, "", credits.ErrPurchaseBelowMinimum},
		{"above the maximum", credits.Purchase{ID: "p", Account: "a", Amount: credits.MaxPurchase + 1}, "amount", nil},
		{"no ID", credits.Purchase{Account: "a", Amount: 10 * dollar}, "id", nil},
		{"no account", credits.Purchase{ID: "p", Amount: 10 * dollar}, "account", nil},
		{"account with a space", credits.Purchase{ID: "p", Account: "a b", Amount: 10 * dollar}, "account", nil},
		{"ID too long", credits.Purchase{ID: string(make([]byte, credits.MaxIDLength+1)), Account: "a", Amount: 10 * dollar}, "id", nil},
		{"note too long", credits.Purchase{ID: "p", Account: "a", Amount: 10 * dollar, Note: string(make([]byte, credits.MaxNote+1))}, "note", nil},
		{"note not UTF-8", credits.Purchase{ID: "p", Account: "a", Amount: 10 * dollar, Note: "\xff"}, "note", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.s.Purchase(e.ctx, tc.p)
			if tc.target != nil {
				require.ErrorIs(t, err, tc.target)
				require.NotErrorIs(t, err, credits.ErrInvalid)
			} else {
				requireInvalid(t, err, tc.field)
			}
		})
	}
	require.Equal(t, credits.Balance{Account: "a"}, e.balance("a"), "a refused purchase left something")

	// The bounds themselves are allowed.
	e.buy("min", "a", credits.MinPurchase)
	e.buy("max", "a", credits.MaxPurchase)
	e.want("a", money{Available: credits.MinPurchase + credits.MaxPurchase, Purchased: credits.MinPurchase + credits.MaxPurchase})
	// Validation comes before the ID lookup.
	_, err := e.s.Purchase(e.ctx, credits.Purchase{ID: "min", Account: "a", Amount: 1})
	require.ErrorIs(t, err, credits.ErrPurchaseBelowMinimum)
}

func testPurchaseIdempotent(e *env) {
	t := e.t
	first := e.buy("order-1", "acme", 10*dollar)
	e.clock.Advance(time.Minute)
	e.reserve("h", "acme", 3*dollar, 3*dollar, time.Hour)

	again, err := e.s.Purchase(e.ctx, credits.Purchase{ID: "order-1", Account: "acme", Amount: 10 * dollar, Note: "other note"})
	require.NoError(t, err)
	require.Equal(t, first.ID, again.ID)
	require.Equal(t, first.Account, again.Account)
	require.Equal(t, first.Amount, again.Amount)
	require.Equal(t, first.Note, again.Note)
	requireTime(t, first.PurchasedAt, again.PurchasedAt, "PurchasedAt of a repeated purchase")
	requireTime(t, first.ExpiresAt, again.ExpiresAt, "ExpiresAt of a repeated purchase")
	require.Equal(t, 7*dollar, again.Remaining, "a repeated purchase returns the lot as it is now")

	for _, tc := range []struct {
		name string
		p    credits.Purchase
	}{
		{"other amount", credits.Purchase{ID: "order-1", Account: "acme", Amount: 11 * dollar}},
		{"other account", credits.Purchase{ID: "order-1", Account: "other", Amount: 10 * dollar}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.s.Purchase(e.ctx, tc.p)
			require.ErrorIs(t, err, credits.ErrConflict)
		})
	}
	e.want("acme", money{Available: 7 * dollar, Held: 3 * dollar, Purchased: 10 * dollar})
	require.False(t, e.balance("other").Known)
	require.Len(t, e.txs("acme"), 1)
	require.Len(t, e.lots("acme"), 1)
}

func testLotExpiry(e *env) {
	t := e.t
	lot := e.buy("order-1", "acme", 10*dollar)

	// A microsecond before its expiry the lot is whole.
	e.clock.Set(lot.ExpiresAt.Add(-time.Microsecond))
	e.want("acme", money{Available: 10 * dollar, Purchased: 10 * dollar})
	require.Equal(t, credits.SweepResult{}, e.sweep())

	// At its expiry it is gone, as expired money, not spent.
	e.clock.Set(lot.ExpiresAt)
	b := e.want("acme", money{Expired: 10 * dollar, Purchased: 10 * dollar})
	require.True(t, b.NextExpiry.IsZero(), "NextExpiry without money left: %v", b.NextExpiry)
	require.True(t, b.Known)
	require.Equal(t, credits.Amount(0), e.lots("acme")["order-1"].Remaining)

	res := e.sweep()
	require.Equal(t, credits.SweepResult{LotsExpired: 1, Expired: 10 * dollar}, res)
	require.Equal(t, credits.SweepResult{}, e.sweep(), "a second Sweep found work")
	e.want("acme", money{Expired: 10 * dollar, Purchased: 10 * dollar})
	_, err := e.s.Reserve(e.ctx, credits.Reservation{ID: "h", Account: "acme", Max: dollar, Min: cent, TTL: time.Minute})
	var ie *credits.InsufficientError
	require.ErrorAs(t, err, &ie)
	require.Equal(t, credits.InsufficientError{Account: "acme", Min: cent}, *ie)

	txs := e.txs("acme")
	require.Len(t, txs, 2)
	require.Equal(t, credits.TxExpire, txs[0].Kind)
	require.Equal(t, 10*dollar, txs[0].Amount)
	require.Equal(t, "order-1", txs[0].LotID)
	require.False(t, txs[0].At.Before(lot.ExpiresAt), "expired at %v, before the lot's expiry", txs[0].At)
	e.checkBooks("acme", true)

	// A new purchase is available again, the expired money stays expired.
	e.buy("order-2", "acme", 5*dollar)
	e.want("acme", money{Available: 5 * dollar, Expired: 10 * dollar, Purchased: 15 * dollar})
}

func testLotExpiryAfterSpending(e *env) {
	t := e.t
	lot := e.buy("order-1", "acme", 10*dollar)
	e.reserve("h1", "acme", 4*dollar, 4*dollar, time.Hour)
	require.Equal(t, credits.Settlement{Spent: 3 * dollar, Released: dollar}, e.settle("h1", 3*dollar))
	e.clock.Set(lot.ExpiresAt.Add(time.Hour))
	e.want("acme", money{Spent: 3 * dollar, Expired: 7 * dollar, Purchased: 10 * dollar})
	require.Equal(t, credits.SweepResult{LotsExpired: 1, Expired: 7 * dollar}, e.sweep())
	e.want("acme", money{Spent: 3 * dollar, Expired: 7 * dollar, Purchased: 10 * dollar})
	e.checkBooks("acme", true)
}

func testEarliestExpiryFirst(e *env) {
	t := e.t
	a := e.buy("lot-a", "acme", 5*dollar)
	e.clock.Advance(day)
	b := e.buy("lot-b", "acme", 10*dollar)
	requireTime(t, a.ExpiresAt, e.balance("acme").NextExpiry, "NextExpiry")

	// A hold takes from the earlier lot; a release gives it back.
	e.reserve("h1", "acme", 3*dollar, 3*dollar, time.Hour)
	require.Equal(t, map[string]credits.Amount{"lot-a": 2 * dollar, "lot-b": 10 * dollar}, e.remaining("acme"))
	require.NoError(t, e.s.Release(e.ctx, "h1"))
	require.Equal(t, map[string]credits.Amount{"lot-a": 5 * dollar, "lot-b": 10 * dollar}, e.remaining("acme"))

	// A hold larger than the earlier lot drains it first.
	e.reserve("h2", "acme", 7*dollar, 7*dollar, time.Hour)
	require.Equal(t, map[string]credits.Amount{"lot-a": 0, "lot-b": 8 * dollar}, e.remaining("acme"))
	requireTime(t, b.ExpiresAt, e.balance("acme").NextExpiry, "NextExpiry once lot-a is held")
	// Settling spends the hold's money of the earlier lot first and gives
	// the rest back to the lots it came from.
	require.Equal(t, credits.Settlement{Spent: 2 * dollar, Released: 5 * dollar}, e.settle("h2", 2*dollar))
	require.Equal(t, map[string]credits.Amount{"lot-a": 3 * dollar, "lot-b": 10 * dollar}, e.remaining("acme"))
	e.want("acme", money{Available: 13 * dollar, Spent: 2 * dollar, Purchased: 15 * dollar})

	// Spending more than the earlier lot's share of a hold takes the
	// rest from the later lot's share.
	e.reserve("h3", "acme", 6*dollar, 6*dollar, time.Hour)
	require.Equal(t, map[string]credits.Amount{"lot-a": 0, "lot-b": 7 * dollar}, e.remaining("acme"))
	require.Equal(t, credits.Settlement{Spent: 4 * dollar, Released: 2 * dollar}, e.settle("h3", 4*dollar))
	require.Equal(t, map[string]credits.Amount{"lot-a": 0, "lot-b": 9 * dollar}, e.remaining("acme"))

	// An excess beyond a hold is spent from the earliest lot with money:
	// buy a lot expiring between lot-b and a new one.
	e.clock.Advance(day)
	e.buy("lot-c", "acme", 5*dollar)
	e.reserve("h4", "acme", dollar, dollar, time.Hour) // from lot-b, leaving $8
	require.Equal(t, credits.Settlement{Spent: 10 * dollar}, e.settle("h4", 10*dollar))
	require.Equal(t, map[string]credits.Amount{"lot-a": 0, "lot-b": 0, "lot-c": 4 * dollar}, e.remaining("acme"))
	e.want("acme", money{Available: 4 * dollar, Spent: 16 * dollar, Purchased: 20 * dollar})
	e.checkBooks("acme", false)
}

func testReservePartial(e *env) {
	t := e.t
	e.buy("order-1", "acme", 5*dollar)
	now := e.clock.Now()
	h := e.reserve("h1", "acme", 8*dollar, dollar, 90*time.Second)
	require.Equal(t, "h1", h.ID)
	require.Equal(t, "acme", h.Account)
	require.Equal(t, 5*dollar, h.Amount, "min ≤ available < max holds the available money")
	requireTime(t, now, h.CreatedAt, "CreatedAt")
	requireTime(t, now.Add(90*time.Second), h.ExpiresAt, "ExpiresAt")
	e.want("acme", money{Held: 5 * dollar, Purchased: 5 * dollar})
	require.True(t, e.balance("acme").NextExpiry.IsZero())

	_, err := e.s.Reserve(e.ctx, credits.Reservation{ID: "h2", Account: "acme", Max: 3 * dollar, Min: 1, TTL: time.Minute})
	var ie *credits.InsufficientError
	require.ErrorAs(t, err, &ie)
	require.Equal(t, credits.InsufficientError{Account: "acme", Min: 1}, *ie)

	require.NoError(t, e.s.Release(e.ctx, "h1"))
	// Exactly the minimum is enough; a hold of max leaves the rest.
	require.Equal(t, 5*dollar, e.reserve("h3", "acme", 6*dollar, 5*dollar, time.Minute).Amount)
	require.NoError(t, e.s.Release(e.ctx, "h3"))
	require.Equal(t, 2*dollar, e.reserve("h4", "acme", 2*dollar, 2*dollar, time.Minute).Amount)
	require.Equal(t, 3*dollar, e.reserve("h5", "acme", 3*dollar, cent, time.Minute).Amount)
	e.want("acme", money{Held: 5 * dollar, Purchased: 5 * dollar})
}

func testReserveInsufficient(e *env) {
	t := e.t
	for _, tc := range []struct {
		name string
		r    credits.Reservation
		want credits.InsufficientError
	}{
		{"never bought", credits.Reservation{ID: "h1", Account: "nobody", Max: 2 * dollar, Min: dollar, TTL: time.Minute},
			credits.InsufficientError{Account: "nobody", Min: dollar, Never: true}},
		{"too little", credits.Reservation{ID: "h2", Account: "acme", Max: 9 * dollar, Min: 6 * dollar, TTL: time.Minute},
			credits.InsufficientError{Account: "acme", Available: 5 * dollar, Min: 6 * dollar}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := e.with(t)
			if tc.r.Account == "acme" {
				e.buy("order-1", "acme", 5*dollar)
			}
			_, err := e.s.Reserve(e.ctx, tc.r)
			require.ErrorIs(t, err, credits.ErrInsufficientCredits)
			var ie *credits.InsufficientError
			require.ErrorAs(t, err, &ie)
			require.Equal(t, tc.want, *ie)
			// A refused hold is not a hold.
			require.ErrorIs(t, e.s.Release(e.ctx, tc.r.ID), credits.ErrHoldNotFound)
		})
	}
	e.want("acme", money{Available: 5 * dollar, Purchased: 5 * dollar})
	require.False(t, e.balance("nobody").Known)
	require.Empty(t, e.lots("nobody"))
}

func testReserveInvalid(e *env) {
	t := e.t
	e.buy("order-1", "acme", 10*dollar)
	ok := credits.Reservation{ID: "h", Account: "acme", Max: dollar, Min: dollar, TTL: time.Minute}
	for _, tc := range []struct {
		name  string
		edit  func(r *credits.Reservation)
		field string
	}{
		{"no ID", func(r *credits.Reservation) { r.ID = "" }, "id"},
		{"ID with a space", func(r *credits.Reservation) { r.ID = "a b" }, "id"},
		{"ID too long", func(r *credits.Reservation) { r.ID = string(make([]byte, credits.MaxIDLength+1)) }, "id"},
		{"no account", func(r *credits.Reservation) { r.Account = "" }, "account"},
		{"zero min", func(r *credits.Reservation) { r.Min = 0 }, "min"},
		{"negative min", func(r *credits.Reservation) { r.Min, r.Max = -1, -1 }, "min"},
		{"max below min", func(r *credits.Reservation) { r.Max = r.Min - 1 }, "max"},
		{"no TTL", func(r *credits.Reservation) { r.TTL = 0 }, "ttl"},
		{"TTL above the maximum", func(r *credits.Reservation) { r.TTL = credits.MaxHoldTTL + time.Microsecond }, "ttl"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := ok
			tc.edit(&r)
			_, err := e.s.Reserve(e.ctx, r)
			requireInvalid(t, err, tc.field)
		})
	}
	e.want("acme", money{Available: 10 * dollar, Purchased: 10 * dollar})
	// The maximum TTL is allowed.
	r := ok
	r.TTL = credits.MaxHoldTTL
	e.reserve(r.ID, r.Account, r.Max, r.Min, r.TTL)
}

func testHoldIdempotency(e *env) {
	t := e.t
	e.buy("order-1", "acme", 10*dollar)
	e.buy("order-2", "other", 10*dollar)
	h := e.reserve("h1", "acme", 2*dollar, 2*dollar, time.Hour)

	// Reserving an open hold again returns it unchanged.
	e.clock.Advance(time.Minute)
	again := e.reserve("h1", "acme", 5*dollar, 3*dollar, 2*time.Hour)
	require.Equal(t, h.Amount, again.Amount)
	requireTime(t, h.CreatedAt, again.CreatedAt, "CreatedAt of a repeated Reserve")
	requireTime(t, h.ExpiresAt, again.ExpiresAt, "ExpiresAt of a repeated Reserve")
	e.want("acme", money{Available: 8 * dollar, Held: 2 * dollar, Purchased: 10 * dollar})
	_, err := e.s.Reserve(e.ctx, credits.Reservation{ID: "h1", Account: "other", Max: dollar, Min: dollar, TTL: time.Minute})
	require.ErrorIs(t, err, credits.ErrConflict)
	e.want("other", money{Available: 10 * dollar, Purchased: 10 * dollar})

	// Settling twice returns the first Settlement and changes nothing.
	first := e.settle("h1", dollar)
	require.Equal(t, credits.Settlement{Spent: dollar, Released: dollar}, first)
	require.Equal(t, first, e.settle("h1", 5*dollar))
	require.Equal(t, first, e.settle("h1", 0))
	e.want("acme", money{Available: 9 * dollar, Spent: dollar, Purchased: 10 * dollar})
	require.NoError(t, e.s.Release(e.ctx, "h1"), "releasing a settled hold")
	e.want("acme", money{Available: 9 * dollar, Spent: dollar, Purchased: 10 * dollar})
	_, err = e.s.Reserve(e.ctx, credits.Reservation{ID: "h1", Account: "acme", Max: dollar, Min: dollar, TTL: time.Minute})
	require.ErrorIs(t, err, credits.ErrHoldClosed)
	require.Equal(t, first, e.settle("h1", dollar), "a refused Reserve reopened the hold")

	// Releasing twice is fine; settling or reserving a released hold is
	// not.
	e.reserve("h2", "acme", 3*dollar, 3*dollar, time.Hour)
	require.NoError(t, e.s.Release(e.ctx, "h2"))
	require.NoError(t, e.s.Release(e.ctx, "h2"))
	_, err = e.s.Settle(e.ctx, "h2", dollar, nil)
	require.ErrorIs(t, err, credits.ErrHoldClosed)
	_, err = e.s.Reserve(e.ctx, credits.Reservation{ID: "h2", Account: "acme", Max: dollar, Min: dollar, TTL: time.Minute})
	require.ErrorIs(t, err, credits.ErrHoldClosed)
	e.want("acme", money{Available: 9 * dollar, Spent: dollar, Purchased: 10 * dollar})

	// Unknown holds.
	require.ErrorIs(t, e.s.Release(e.ctx, "nope"), credits.ErrHoldNotFound)
	_, err = e.s.Settle(e.ctx, "nope", dollar, nil)
	require.ErrorIs(t, err, credits.ErrHoldNotFound)

	var spends int
	for _, tx := range e.txs("acme") {
		if tx.Kind == credits.TxSpend {
			spends++
			require.Equal(t, "h1", tx.HoldID)
		}
	}
	require.Equal(t, 1, spends)
	e.checkBooks("acme", false)
}

func testSettle(e *env) {
	t := e.t
	e.buy("order-1", "acme", 10*dollar)
	for i, tc := range []struct {
		name   string
		hold   credits.Amount
		actual credits.Amount
		want   credits.Settlement
	}{
		{"less than the hold", 2 * dollar, 1_234_567, credits.Settlement{Spent: 1_234_567, Released: 2*dollar - 1_234_567}},
		{"the hold", 2 * dollar, 2 * dollar, credits.Settlement{Spent: 2 * dollar}},
		{"nothing", 2 * dollar, 0, credits.Settlement{Released: 2 * dollar}},
		{"one micro-dollar", 1, 1, credits.Settlement{Spent: 1}},
	} {
		hold := fmt.Sprint("h-", i)
		t.Run(tc.name, func(t *testing.T) {
			e := e.with(t)
			before := e.balance("acme")
			spends := len(e.txs("acme"))
			e.clock.Advance(time.Second)
			e.reserve(hold, "acme", tc.hold, tc.hold, time.Minute)
			s, err := e.s.Settle(e.ctx, hold, tc.actual, nil)
			require.NoError(t, err)
			require.Equal(t, tc.want, s)
			e.want("acme", money{Available: before.Available - tc.want.Spent, Spent: before.Spent + tc.want.Spent, Purchased: 10 * dollar})
			txs := e.txs("acme")
			if tc.want.Spent == 0 {
				require.Len(t, txs, spends, "a Settle spending nothing wrote a transaction")
				return
			}
			require.Len(t, txs, spends+1)
			require.Equal(t, credits.TxSpend, txs[0].Kind)
			require.Equal(t, tc.want.Spent, txs[0].Amount)
			require.Equal(t, hold, txs[0].HoldID)
			requireTime(t, e.clock.Now(), txs[0].At, "spend At")
		})
	}
	e.checkBooks("acme", false)
}

func testSettleExcess(e *env) {
	t := e.t
	e.buy("order-1", "acme", 5*dollar)
	e.reserve("h1", "acme", dollar, dollar, time.Hour)
	// The excess is taken from the available money.
	require.Equal(t, credits.Settlement{Spent: 3 * dollar}, e.settle("h1", 3*dollar))
	e.want("acme", money{Available: 2 * dollar, Spent: 3 * dollar, Purchased: 5 * dollar})
	// At most all of it: the rest is uncollected.
	e.reserve("h2", "acme", dollar, dollar, time.Hour)
	require.Equal(t, credits.Settlement{Spent: 2 * dollar, Uncollected: 8 * dollar}, e.settle("h2", 10*dollar))
	e.want("acme", money{Spent: 5 * dollar, Purchased: 5 * dollar})
	// With nothing available a hold still pays itself, and no more.
	e.buy("order-2", "acme", 5*dollar)
	e.reserve("h3", "acme", 5*dollar, 5*dollar, time.Hour)
	require.Equal(t, credits.Settlement{Spent: 5 * dollar, Uncollected: 1}, e.settle("h3", 5*dollar+1))
	e.want("acme", money{Spent: 10 * dollar, Purchased: 10 * dollar})
	// Other holds are not touched by an excess.
	e.buy("order-3", "acme", 5*dollar)
	e.reserve("h4", "acme", 3*dollar, 3*dollar, time.Hour)
	e.reserve("h5", "acme", dollar, dollar, time.Hour)
	require.Equal(t, credits.Settlement{Spent: 2 * dollar, Uncollected: 2 * dollar}, e.settle("h5", 4*dollar))
	e.want("acme", money{Held: 3 * dollar, Spent: 12 * dollar, Purchased: 15 * dollar})
	require.Equal(t, credits.Settlement{Spent: 3 * dollar}, e.settle("h4", 3*dollar))
	e.checkBooks("acme", false)
}

func testHoldExpirySweep(e *env) {
	t := e.t
	e.buy("order-1", "acme", 10*dollar)
	h := e.reserve("h1", "acme", 3*dollar, 3*dollar, time.Hour)
	e.reserve("h2", "acme", 2*dollar, 2*dollar, 2*time.Hour)

	e.clock.Set(h.ExpiresAt.Add(-time.Microsecond))
	require.Equal(t, credits.SweepResult{}, e.sweep())
	// Past its expiry an unswept hold is still held.
	e.clock.Set(h.ExpiresAt)
	e.want("acme", money{Available: 5 * dollar, Held: 5 * dollar, Purchased: 10 * dollar})
	again := e.reserve("h1", "acme", 3*dollar, 3*dollar, time.Hour)
	require.Equal(t, h.Amount, again.Amount, "an unswept hold is still open")
	require.Equal(t, credits.SweepResult{HoldsReleased: 1, Released: 3 * dollar}, e.sweep())
	e.want("acme", money{Available: 8 * dollar, Held: 2 * dollar, Purchased: 10 * dollar})
	require.Equal(t, credits.SweepResult{}, e.sweep())

	// A swept hold is ended.
	require.NoError(t, e.s.Release(e.ctx, "h1"))
	_, err := e.s.Reserve(e.ctx, credits.Reservation{ID: "h1", Account: "acme", Max: dollar, Min: dollar, TTL: time.Minute})
	require.ErrorIs(t, err, credits.ErrHoldClosed)
	e.want("acme", money{Available: 8 * dollar, Held: 2 * dollar, Purchased: 10 * dollar})

	// An open hold past its expiry settles from the hold as usual.
	e.clock.Advance(3 * time.Hour)
	require.Equal(t, credits.Settlement{Spent: dollar, Released: dollar}, e.settle("h2", dollar))
	require.Equal(t, credits.SweepResult{}, e.sweep())
	e.want("acme", money{Available: 9 * dollar, Spent: dollar, Purchased: 10 * dollar})
	e.checkBooks("acme", true)
}

func testSettleAfterSweep(e *env) {
	t := e.t
	e.buy("order-1", "acme", 10*dollar)
	e.reserve("h1", "acme", 3*dollar, 3*dollar, time.Minute)
	e.clock.Advance(2 * time.Minute)
	require.Equal(t, credits.SweepResult{HoldsReleased: 1, Released: 3 * dollar}, e.sweep())
	// A request that outlived its hold pays from the available money.
	s := e.settle("h1", 4*dollar)
	require.Equal(t, credits.Settlement{Spent: 4 * dollar}, s)
	e.want("acme", money{Available: 6 * dollar, Spent: 4 * dollar, Purchased: 10 * dollar})
	require.Equal(t, s, e.settle("h1", 9*dollar), "a settled swept hold settled again")
	require.NoError(t, e.s.Release(e.ctx, "h1"))
	e.want("acme", money{Available: 6 * dollar, Spent: 4 * dollar, Purchased: 10 * dollar})

	// At most what is available.
	e.reserve("h2", "acme", dollar, dollar, time.Minute)
	e.clock.Advance(2 * time.Minute)
	require.Equal(t, credits.SweepResult{HoldsReleased: 1, Released: dollar}, e.sweep())
	e.reserve("h3", "acme", 5*dollar, 5*dollar, time.Hour)
	require.Equal(t, credits.Settlement{Spent: dollar, Uncollected: 2 * dollar}, e.settle("h2", 3*dollar))
	e.want("acme", money{Held: 5 * dollar, Spent: 5 * dollar, Purchased: 10 * dollar})
	e.checkBooks("acme", true)
}

func testHoldOutlivesLot(e *env) {
	// The cases share the store and its clock: each uses its own account,
	// whose lot is bought after the previous one expired.
	for i, tc := range []struct {
		name string
		end  func(e *env, hold string) // ends the hold of $4 after its lot expired
		want money
	}{
		{"settle", func(e *env, h string) {
			require.Equal(e.t, credits.Settlement{Spent: dollar, Released: 3 * dollar}, e.settle(h, dollar))
		}, money{Spent: dollar, Expired: 9 * dollar, Purchased: 10 * dollar}},
		{"settle more than held", func(e *env, h string) {
			require.Equal(e.t, credits.Settlement{Spent: 4 * dollar, Uncollected: dollar}, e.settle(h, 5*dollar))
		}, money{Spent: 4 * dollar, Expired: 6 * dollar, Purchased: 10 * dollar}},
		{"release", func(e *env, h string) {
			require.NoError(e.t, e.s.Release(e.ctx, h))
		}, money{Expired: 10 * dollar, Purchased: 10 * dollar}},
		{"sweep", func(e *env, h string) {
			e.clock.Advance(credits.MaxHoldTTL)
			// Only reads since the lot expired: the Sweep records its
			// remainder and the hold's money given back to it.
			require.Equal(e.t, credits.SweepResult{HoldsReleased: 1, Released: 4 * dollar, LotsExpired: 1, Expired: 10 * dollar}, e.sweep())
		}, money{Expired: 10 * dollar, Purchased: 10 * dollar}},
		{"sweep then settle", func(e *env, h string) {
			e.clock.Advance(credits.MaxHoldTTL)
			e.sweep()
			require.Equal(e.t, credits.Settlement{Uncollected: dollar}, e.settle(h, dollar))
		}, money{Expired: 10 * dollar, Purchased: 10 * dollar}},
	} {
		e.t.Run(tc.name, func(t *testing.T) {
			e := e.with(t)
			acct, hold := fmt.Sprintf("acme-%d", i), fmt.Sprintf("h-%d", i)
			lot := e.buy("order-"+acct, acct, 10*dollar)
			e.clock.Set(lot.ExpiresAt.Add(-time.Hour))
			e.reserve(hold, acct, 4*dollar, 4*dollar, credits.MaxHoldTTL)
			e.clock.Set(lot.ExpiresAt.Add(time.Hour))
			// The lot expired under the hold: its free money is expired,
			// the held money still held.
			e.want(acct, money{Held: 4 * dollar, Expired: 6 * dollar, Purchased: 10 * dollar})
			require.Equal(t, credits.Amount(0), e.lots(acct)[lot.ID].Remaining)
			tc.end(e, hold)
			e.want(acct, tc.want)
			require.Equal(t, credits.Amount(0), e.lots(acct)[lot.ID].Remaining)
			e.sweep()
			e.want(acct, tc.want)
			e.checkBooks(acct, true)
		})
	}
}

// record returns a full usage record starting at start, billed by the
// reported tokens.
func record(id string, start time.Time) *credits.UsageRecord {
	return &credits.UsageRecord{
		ID: id, RequestID: "req-" + id, KeyID: "key-1",
		Provider: "openai", Model: "gpt-4o", KeySource: credits.SourceConfigured,
		Reported:      credits.Tokens{Input: 100, Output: 20, CacheRead: 10, CacheWrite: 5},
		ReportedKnown: true,
		Estimated:     credits.Tokens{Input: 90, Output: 25},
		Cost:          1234, Fee: 56,
		Status: 200, Stream: true,
		Start: start, End: start.Add(1500 * time.Millisecond),
		Attempts: []credits.AttemptRecord{
			{Provider: "openai", Model: "gpt-4o", KeyID: "pk-1", KeySource: credits.SourceConfigured,
				Status: 429, Error: "rate_limited", Start: start, Duration: 120 * time.Millisecond},
			{Provider: "anthropic", Model: "claude", Skipped: true, Start: start.Add(121 * time.Millisecond)},
			{Provider: "openai", Model: "gpt-4o", KeyID: "pk-2", KeySource: credits.SourceConfigured,
				Status: 200, Served: true, Start: start.Add(130 * time.Millisecond), Duration: 1300 * time.Millisecond},
		},
		AttemptsDropped: 2,
	}
}

// cloneRecord returns a deep copy of r.
func cloneRecord(r *credits.UsageRecord) *credits.UsageRecord {
	c := *r
	c.Attempts = slices.Clone(r.Attempts)
	return &c
}

// normRecord returns r as a store keeps it: times in UTC truncated to the
// microsecond, empty Attempts nil.
func normRecord(r credits.UsageRecord) credits.UsageRecord {
	norm := func(t time.Time) time.Time {
		if t.IsZero() {
			return time.Time{}
		}
		return t.UTC().Truncate(time.Microsecond)
	}
	r.Start, r.End = norm(r.Start), norm(r.End)
	atts := r.Attempts
	r.Attempts = nil
	for _, a := range atts {
		a.Start = norm(a.Start)
		r.Attempts = append(r.Attempts, a)
	}
	return r
}

// requireRecords checks that got are want, as a store keeps them, and
// that got's times are UTC.
func requireRecords(t testing.TB, want, got []credits.UsageRecord) {
	t.Helper()
	for _, r := range got {
		require.Equal(t, time.UTC, r.Start.Location(), "record %s: Start not UTC", r.ID)
		if !r.End.IsZero() {
			require.Equal(t, time.UTC, r.End.Location(), "record %s: End not UTC", r.ID)
		}
	}
	norm := func(rs []credits.UsageRecord) []credits.UsageRecord {
		out := make([]credits.UsageRecord, len(rs))
		for i, r := range rs {
			out[i] = normRecord(r)
		}
		return out
	}
	require.Equal(t, norm(want), norm(got))
}

// ids returns the records' IDs.
func ids(rs []credits.UsageRecord) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.ID
	}
	return out
}

func testSettleRecord(e *env) {
	t := e.t
	e.buy("order-1", "acme", 5*dollar)
	start := e.clock.Now().Add(-2 * time.Second)

	// The record is kept with Paid, Uncollected and Account filled in;
	// the caller's record is not modified.
	e.reserve("h1", "acme", 2*dollar, 2*dollar, time.Minute)
	rec := record("r1", start)
	rec.Paid, rec.Uncollected = false, 77
	orig := cloneRecord(rec)
	s, err := e.s.Settle(e.ctx, "h1", 1_500_000, rec)
	require.NoError(t, err)
	require.Equal(t, credits.Settlement{Spent: 1_500_000, Released: 500_000}, s)
	require.Equal(t, orig, rec, "Settle modified the caller's record")
	want1 := cloneRecord(orig)
	want1.Paid, want1.Uncollected, want1.Account = true, 0, "acme"
	requireRecords(t, []credits.UsageRecord{*want1}, e.usage(credits.UsageQuery{}))

	// An excess: the record keeps what was not collected.
	e.reserve("h2", "acme", dollar, dollar, time.Minute)
	rec2 := record("r2", start.Add(time.Second))
	rec2.Account = "acme"
	rec2.Cost, rec2.Fee = 4_900_000, 100_000
	s, err = e.s.Settle(e.ctx, "h2", rec2.Charge(), rec2)
	require.NoError(t, err)
	require.Equal(t, credits.Settlement{Spent: 3_500_000, Uncollected: 1_500_000}, s)
	want2 := cloneRecord(rec2)
	want2.Paid, want2.Uncollected = true, 1_500_000
	requireRecords(t, []credits.UsageRecord{*want2, *want1}, e.usage(credits.UsageQuery{Account: "acme"}))

	// Settling again ignores the record.
	s2, err := e.s.Settle(e.ctx, "h2", 0, record("r3", start))
	require.NoError(t, err)
	require.Equal(t, s, s2)
	again := cloneRecord(rec2)
	again.Cost++
	_, err = e.s.Settle(e.ctx, "h2", 0, again)
	require.NoError(t, err)
	requireRecords(t, []credits.UsageRecord{*want2, *want1}, e.usage(credits.UsageQuery{}))

	// The store keeps copies: neither the caller's record nor a listed one
	// is shared.
	rec.Attempts[0].Provider = "changed"
	got := e.usage(credits.UsageQuery{})
	got[1].Attempts[0].Provider = "changed too"
	requireRecords(t, []credits.UsageRecord{*want2, *want1}, e.usage(credits.UsageQuery{}))
	e.want("acme", money{Spent: 5 * dollar, Purchased: 5 * dollar})
}

func testSettleRecordRefused(e *env) {
	t := e.t
	e.buy("order-1", "acme", 5*dollar)
	e.buy("order-2", "other", 5*dollar)
	e.reserve("h1", "acme", 2*dollar, 2*dollar, time.Minute)
	start := e.clock.Now()
	taken := record("taken", start)
	require.NoError(t, e.s.Record(e.ctx, taken))

	for _, tc := range []struct {
		name   string
		actual credits.Amount
		rec    func() *credits.UsageRecord
		field  string // or
		target error
	}{
		{"no start", dollar, func() *credits.UsageRecord { r := record("r1", start); r.Start = time.Time{}; return r }, "record.start", nil},
		{"no ID", dollar, func() *credits.UsageRecord { return record("", start) }, "record.id", nil},
		{"negative fee", dollar, func() *credits.UsageRecord { r := record("r1", start); r.Fee = -1; return r }, "record.cost", nil},
		{"another account", dollar, func() *credits.UsageRecord { r := record("r1", start); r.Account = "other"; return r }, "record.account", nil},
		{"negative actual", -1, func() *credits.UsageRecord { return record("r1", start) }, "actual", nil},
		{"record ID taken", dollar, func() *credits.UsageRecord { return record("taken", start) }, "", credits.ErrConflict},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := e.with(t)
			_, err := e.s.Settle(e.ctx, "h1", tc.actual, tc.rec())
			if tc.target != nil {
				require.ErrorIs(t, err, tc.target)
			} else {
				requireInvalid(t, err, tc.field)
			}
			e.want("acme", money{Available: 3 * dollar, Held: 2 * dollar, Purchased: 5 * dollar})
			e.want("other", money{Available: 5 * dollar, Purchased: 5 * dollar})
			require.Len(t, e.usage(credits.UsageQuery{}), 1)
			require.Len(t, e.txs("acme"), 1)
		})
	}
	// The hold is still open and settles.
	rec := record("r1", start)
	s, err := e.s.Settle(e.ctx, "h1", dollar, rec)
	require.NoError(t, err)
	require.Equal(t, credits.Settlement{Spent: dollar, Released: dollar}, s)
	require.Equal(t, []string{"taken", "r1"}, ids(e.usage(credits.UsageQuery{})))
	paid := e.usage(credits.UsageQuery{Account: "acme"})
	require.Len(t, paid, 1)
	require.True(t, paid[0].Paid)
}

func testRecord(e *env) {
	t := e.t
	start := time.Date(2030, 3, 4, 5, 6, 7, 891011000, time.UTC)
	rec := record("r1", start)
	rec.Account = "acme" // a request refused before any hold names its account
	rec.Paid, rec.Uncollected = true, 5
	orig := cloneRecord(rec)
	require.NoError(t, e.s.Record(e.ctx, rec))
	require.Equal(t, orig, rec, "Record modified the caller's record")
	want := cloneRecord(orig)
	want.Paid, want.Uncollected = false, 0
	requireRecords(t, []credits.UsageRecord{*want}, e.usage(credits.UsageQuery{}))
	// A record does not make an account.
	require.False(t, e.balance("acme").Known)
	p, err := e.s.Accounts(e.ctx, credits.ListOptions{})
	require.NoError(t, err)
	require.Empty(t, p.Accounts)

	// The same record again is a no-op, at microsecond precision, in any
	// time zone, with Paid and Uncollected set or not.
	require.NoError(t, e.s.Record(e.ctx, rec))
	same := cloneRecord(want)
	zone := time.FixedZone("UTC+3", 3*3600)
	same.Start = start.In(zone).Add(999 * time.Nanosecond)
	same.End = same.End.In(zone)
	same.Attempts[2].Start = same.Attempts[2].Start.In(zone)
	require.NoError(t, e.s.Record(e.ctx, same))
	// Other content is a conflict.
	for _, tc := range []struct {
		name string
		edit func(r *credits.UsageRecord)
	}{
		{"cost", func(r *credits.UsageRecord) { r.Cost++ }},
		{"start", func(r *credits.UsageRecord) { r.Start = r.Start.Add(time.Microsecond) }},
		{"end", func(r *credits.UsageRecord) { r.End = time.Time{} }},
		{"account", func(r *credits.UsageRecord) { r.Account = "" }},
		{"reported", func(r *credits.UsageRecord) { r.ReportedKnown = false }},
		{"attempt", func(r *credits.UsageRecord) { r.Attempts[1].Skipped = false }},
		{"attempts", func(r *credits.UsageRecord) { r.Attempts = r.Attempts[:2] }},
		{"attempt duration", func(r *credits.UsageRecord) { r.Attempts[0].Duration++ }},
		{"dropped", func(r *credits.UsageRecord) { r.AttemptsDropped = 0 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := cloneRecord(want)
			tc.edit(r)
			require.ErrorIs(t, e.s.Record(e.ctx, r), credits.ErrConflict)
		})
	}
	requireRecords(t, []credits.UsageRecord{*want}, e.usage(credits.UsageQuery{}))

	// Empty and nil Attempts are the same; the caller's slice is copied.
	bare := &credits.UsageRecord{ID: "r2", Start: start.Add(time.Second), KeySource: credits.SourceClient, Status: 502, Error: "all_providers_failed"}
	require.NoError(t, e.s.Record(e.ctx, bare))
	bare.Attempts = []credits.AttemptRecord{}
	require.NoError(t, e.s.Record(e.ctx, bare))
	got := e.usage(credits.UsageQuery{})
	requireRecords(t, []credits.UsageRecord{*bare, *want}, got)
	rec.Attempts[0].Error = "changed"
	requireRecords(t, []credits.UsageRecord{*bare, *want}, e.usage(credits.UsageQuery{}))
}

func testRecordInvalid(e *env) {
	t := e.t
	start := e.clock.Now()
	for _, tc := range []struct {
		name  string
		rec   func() *credits.UsageRecord
		field string
	}{
		{"nil", func() *credits.UsageRecord { return nil }, "record"},
		{"no ID", func() *credits.UsageRecord { return record("", start) }, "record.id"},
		{"ID with a space", func() *credits.UsageRecord { return record("a b", start) }, "record.id"},
		{"no start", func() *credits.UsageRecord { return record("r", time.Time{}) }, "record.start"},
		{"negative cost", func() *credits.UsageRecord { r := record("r", start); r.Cost = -1; return r }, "record.cost"},
		{"model too long", func() *credits.UsageRecord { r := record("r", start); r.Model = string(make([]byte, 257)); return r }, "record.model"},
		{"too many attempts", func() *credits.UsageRecord {
			r := record("r", start)
			r.Attempts = make([]credits.AttemptRecord, credits.MaxAttempts+1)
			return r
		}, "record.attempts"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			requireInvalid(t, e.s.Record(e.ctx, tc.rec()), tc.field)
		})
	}
	require.Empty(t, e.usage(credits.UsageQuery{}))
	// MaxAttempts attempts are fine.
	r := record("r", start)
	r.Attempts = make([]credits.AttemptRecord, credits.MaxAttempts)
	for i := range r.Attempts {
		r.Attempts[i] = credits.AttemptRecord{Provider: "p", Model: fmt.Sprint("m", i), Start: start}
	}
	require.NoError(t, e.s.Record(e.ctx, r))
	requireRecords(t, []credits.UsageRecord{*r}, e.usage(credits.UsageQuery{}))
}

// usageRecords records the Usage subtest's records and returns their
// start.
func usageRecords(e *env) time.Time {
	t0 := time.Date(2030, 5, 6, 7, 8, 9, 10000, time.UTC)
	for _, r := range []struct {
		id, account, key string
		at               time.Duration
	}{
		{"u1", "a", "k1", 0},
		{"u2", "b", "k1", time.Hour},
		{"u3", "a", "k2", 2 * time.Hour},
		{"u4", "a", "k1", 2 * time.Hour},
		{"u5", "", "k2", 3 * time.Hour},
		{"u6", "b", "", day},
		{"u7", "a", "k1", day + time.Microsecond},
	} {
		rec := record(r.id, t0.Add(r.at))
		rec.Account, rec.KeyID = r.account, r.key
		require.NoError(e.t, e.s.Record(e.ctx, rec))
	}
	return t0
}

func testUsage(e *env) {
	t := e.t
	t0 := usageRecords(e)
	for _, tc := range []struct {
		name string
		q    credits.UsageQuery
		want []string
	}{
		{"all", credits.UsageQuery{}, []string{"u7", "u6", "u5", "u4", "u3", "u2", "u1"}},
		{"account", credits.UsageQuery{Account: "a"}, []string{"u7", "u4", "u3", "u1"}},
		{"key", credits.UsageQuery{KeyID: "k1"}, []string{"u7", "u4", "u2", "u1"}},
		{"account and key", credits.UsageQuery{Account: "a", KeyID: "k1"}, []string{"u7", "u4", "u1"}},
		{"unknown account", credits.UsageQuery{Account: "zzz"}, nil},
		{"from, inclusive", credits.UsageQuery{From: t0.Add(2 * time.Hour)}, []string{"u7", "u6", "u5", "u4", "u3"}},
		{"to, exclusive", credits.UsageQuery{To: t0.Add(2 * time.Hour)}, []string{"u2", "u1"}},
		{"from and to", credits.UsageQuery{From: t0.Add(time.Hour), To: t0.Add(3 * time.Hour)}, []string{"u4", "u3", "u2"}},
		{"from after to", credits.UsageQuery{From: t0.Add(time.Hour), To: t0}, nil},
		{"from in another zone", credits.UsageQuery{From: t0.Add(day).In(time.FixedZone("UTC-5", -5*3600))}, []string{"u7", "u6"}},
		{"key and to", credits.UsageQuery{KeyID: "k2", To: t0.Add(3*time.Hour + time.Microsecond)}, []string{"u5", "u3"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := e.with(t)
			p, err := e.s.Usage(e.ctx, tc.q)
			require.NoError(t, err)
			require.Equal(t, tc.want, nilIfEmpty(ids(p.Records)))
			require.Empty(t, p.NextCursor)
			// Page by page, every limit gives the same records, and
			// the last page has no cursor.
			for limit := 1; limit <= len(tc.want)+1; limit++ {
				q := tc.q
				q.Limit = limit
				var got []string
				for pages := 0; ; pages++ {
					require.Less(t, pages, 10, "paging does not end")
					p, err := e.s.Usage(e.ctx, q)
					require.NoError(t, err)
					require.LessOrEqual(t, len(p.Records), limit)
					got = append(got, ids(p.Records)...)
					if p.NextCursor == "" {
						break
					}
					require.Len(t, p.Records, limit, "a page before the last is short")
					q.Cursor = p.NextCursor
				}
				require.Equal(t, tc.want, nilIfEmpty(got), "limit %d", limit)
			}
		})
	}
	// The records come back whole.
	all := e.usage(credits.UsageQuery{Account: "b"})
	want6, want2 := record("u6", t0.Add(day)), record("u2", t0.Add(time.Hour))
	want6.Account, want6.KeyID = "b", ""
	want2.Account, want2.KeyID = "b", "k1"
	requireRecords(t, []credits.UsageRecord{*want6, *want2}, all)
}

// nilIfEmpty returns nil for an empty slice.
func nilIfEmpty(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	return s
}

func testUsageLimits(e *env) {
	t := e.t
	usageRecords(e)
	for _, tc := range []struct {
		name  string
		o     credits.ListOptions
		field string
	}{
		{"negative limit", credits.ListOptions{Limit: -1}, "limit"},
		{"limit too large", credits.ListOptions{Limit: credits.MaxListLimit + 1}, "limit"},
		{"not base64", credits.ListOptions{Cursor: "!!"}, "cursor"},
		{"not a cursor", credits.ListOptions{Cursor: "bm9waXBl"}, "cursor"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.s.Usage(e.ctx, credits.UsageQuery{ListOptions: tc.o})
			requireInvalid(t, err, tc.field)
		})
	}
	for _, limit := range []int{0, credits.MaxListLimit} {
		p, err := e.s.Usage(e.ctx, credits.UsageQuery{ListOptions: credits.ListOptions{Limit: limit}})
		require.NoError(t, err)
		require.Len(t, p.Records, 7)
		require.Empty(t, p.NextCursor)
	}
}

func testSummary(e *env) {
	t := e.t
	d1 := time.Date(2030, 1, 2, 0, 0, 0, 0, time.UTC)
	d2, d3 := d1.Add(day), d1.Add(2*day)
	type spec struct {
		id, account, key, provider, model string
		start                             time.Time
		known                             bool
		reported, estimated               credits.Tokens
		cost, fee                         credits.Amount
	}
	mk := func(s spec) *credits.UsageRecord {
		return &credits.UsageRecord{ID: s.id, Account: s.account, KeyID: s.key, Provider: s.provider, Model: s.model,
			KeySource: credits.SourceConfigured, Start: s.start, ReportedKnown: s.known, Reported: s.reported,
			Estimated: s.estimated, Cost: s.cost, Fee: s.fee, Status: 200}
	}
	for _, s := range []spec{
		{"r1", "sum-a", "k1", "openai", "gpt-4o", d1.Add(10 * time.Hour), true,
			credits.Tokens{Input: 100, Output: 50, CacheRead: 10}, credits.Tokens{Input: 90, Output: 40}, 1000, 100},
		{"r2", "", "k2", "anthropic", "claude", d2.Add(-time.Microsecond), false,
			credits.Tokens{Input: 1, Output: 1}, credits.Tokens{Input: 200, Output: 20, CacheWrite: 5}, 2000, 0},
		{"r3", "sum-a", "k1", "openai", "gpt-4o-mini", d2, true,
			credits.Tokens{Input: 10, Output: 5}, credits.Tokens{}, 30, 3},
		{"r4", "sum-b", "k2", "openai", "gpt-4o", d3.Add(12 * time.Hour), true,
			credits.Tokens{Input: 1000, Output: 100}, credits.Tokens{Input: 1, Output: 1}, 5000, 500},
	} {
		require.NoError(t, e.s.Record(e.ctx, mk(s)))
	}
	// r5 is paid with credits and could not be paid in full.
	e.buy("order-1", "sum-a", 5*dollar)
	e.reserve("h5", "sum-a", dollar, dollar, time.Minute)
	r5 := mk(spec{"r5", "", "k1", "anthropic", "claude", d3.Add(13 * time.Hour), true,
		credits.Tokens{Input: 300, Output: 30}, credits.Tokens{}, 6_500_000, 500_000})
	s, err := e.s.Settle(e.ctx, "h5", r5.Charge(), r5)
	require.NoError(t, err)
	require.Equal(t, credits.Settlement{Spent: 5 * dollar, Uncollected: 2 * dollar}, s)

	type row = credits.SummaryRow
	tok := func(in, out, cr, cw int64) credits.Tokens {
		return credits.Tokens{Input: in, Output: out, CacheRead: cr, CacheWrite: cw}
	}
	for _, tc := range []struct {
		name string
		q    credits.SummaryQuery
		want []row
	}{
		{"everything", credits.SummaryQuery{}, []row{
			{Requests: 5, Tokens: tok(1610, 205, 10, 5), Cost: 6_508_030, Fee: 500_603, Uncollected: 2 * dollar}}},
		{"by day", credits.SummaryQuery{GroupBy: []credits.Group{credits.GroupDay}}, []row{
			{Day: "2030-01-02", Requests: 2, Tokens: tok(300, 70, 10, 5), Cost: 3000, Fee: 100},
			{Day: "2030-01-03", Requests: 1, Tokens: tok(10, 5, 0, 0), Cost: 30, Fee: 3},
			{Day: "2030-01-04", Requests: 2, Tokens: tok(1300, 130, 0, 0), Cost: 6_505_000, Fee: 500_500, Uncollected: 2 * dollar}}},
		{"by provider and model", credits.SummaryQuery{GroupBy: []credits.Group{credits.GroupProvider, credits.GroupModel}}, []row{
			{Provider: "anthropic", Model: "claude", Requests: 2, Tokens: tok(500, 50, 0, 5), Cost: 6_502_000, Fee: 500_000, Uncollected: 2 * dollar},
			{Provider: "openai", Model: "gpt-4o", Requests: 2, Tokens: tok(1100, 150, 10, 0), Cost: 6000, Fee: 600},
			{Provider: "openai", Model: "gpt-4o-mini", Requests: 1, Tokens: tok(10, 5, 0, 0), Cost: 30, Fee: 3}}},
		{"by model alone", credits.SummaryQuery{GroupBy: []credits.Group{credits.GroupModel}}, []row{
			{Model: "claude", Requests: 2, Tokens: tok(500, 50, 0, 5), Cost: 6_502_000, Fee: 500_000, Uncollected: 2 * dollar},
			{Model: "gpt-4o", Requests: 2, Tokens: tok(1100, 150, 10, 0), Cost: 6000, Fee: 600},
			{Model: "gpt-4o-mini", Requests: 1, Tokens: tok(10, 5, 0, 0), Cost: 30, Fee: 3}}},
		{"by account", credits.SummaryQuery{GroupBy: []credits.Group{credits.GroupAccount}}, []row{
			{Account: "", Requests: 1, Tokens: tok(200, 20, 0, 5), Cost: 2000},
			{Account: "sum-a", Requests: 3, Tokens: tok(410, 85, 10, 0), Cost: 6_501_030, Fee: 500_103, Uncollected: 2 * dollar},
			{Account: "sum-b", Requests: 1, Tokens: tok(1000, 100, 0, 0), Cost: 5000, Fee: 500}}},
		{"by key of one account", credits.SummaryQuery{Account: "sum-a", GroupBy: []credits.Group{credits.GroupKey}}, []row{
			{KeyID: "k1", Requests: 3, Tokens: tok(410, 85, 10, 0), Cost: 6_501_030, Fee: 500_103, Uncollected: 2 * dollar}}},
		{"by key and account of one key", credits.SummaryQuery{KeyID: "k2", GroupBy: []credits.Group{credits.GroupKey, credits.GroupAccount}}, []row{
			{KeyID: "k2", Account: "", Requests: 1, Tokens: tok(200, 20, 0, 5), Cost: 2000},
			{KeyID: "k2", Account: "sum-b", Requests: 1, Tokens: tok(1000, 100, 0, 0), Cost: 5000, Fee: 500}}},
		{"by provider, then day", credits.SummaryQuery{GroupBy: []credits.Group{credits.GroupProvider, credits.GroupDay}}, []row{
			{Provider: "anthropic", Day: "2030-01-02", Requests: 1, Tokens: tok(200, 20, 0, 5), Cost: 2000},
			{Provider: "anthropic", Day: "2030-01-04", Requests: 1, Tokens: tok(300, 30, 0, 0), Cost: 6_500_000, Fee: 500_000, Uncollected: 2 * dollar},
			{Provider: "openai", Day: "2030-01-02", Requests: 1, Tokens: tok(100, 50, 10, 0), Cost: 1000, Fee: 100},
			{Provider: "openai", Day: "2030-01-03", Requests: 1, Tokens: tok(10, 5, 0, 0), Cost: 30, Fee: 3},
			{Provider: "openai", Day: "2030-01-04", Requests: 1, Tokens: tok(1000, 100, 0, 0), Cost: 5000, Fee: 500}}},
		{"by day, then provider", credits.SummaryQuery{GroupBy: []credits.Group{credits.GroupDay, credits.GroupProvider}}, []row{
			{Day: "2030-01-02", Provider: "anthropic", Requests: 1, Tokens: tok(200, 20, 0, 5), Cost: 2000},
			{Day: "2030-01-02", Provider: "openai", Requests: 1, Tokens: tok(100, 50, 10, 0), Cost: 1000, Fee: 100},
			{Day: "2030-01-03", Provider: "openai", Requests: 1, Tokens: tok(10, 5, 0, 0), Cost: 30, Fee: 3},
			{Day: "2030-01-04", Provider: "anthropic", Requests: 1, Tokens: tok(300, 30, 0, 0), Cost: 6_500_000, Fee: 500_000, Uncollected: 2 * dollar},
			{Day: "2030-01-04", Provider: "openai", Requests: 1, Tokens: tok(1000, 100, 0, 0), Cost: 5000, Fee: 500}}},
		{"from inclusive, to exclusive", credits.SummaryQuery{From: d2, To: d3.Add(12 * time.Hour)}, []row{
			{Requests: 1, Tokens: tok(10, 5, 0, 0), Cost: 30, Fee: 3}}},
		{"nothing selected", credits.SummaryQuery{From: d3.Add(day), GroupBy: []credits.Group{credits.GroupDay}}, nil},
		{"nothing selected, no groups", credits.SummaryQuery{Account: "zzz"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := e.s.Summary(e.ctx, tc.q)
			require.NoError(t, err)
			if len(tc.want) == 0 {
				require.Empty(t, got)
				return
			}
			require.Equal(t, tc.want, got)
		})
	}
	for _, gs := range [][]credits.Group{{"week"}, {credits.GroupDay, credits.GroupDay}} {
		_, err := e.s.Summary(e.ctx, credits.SummaryQuery{GroupBy: gs})
		requireInvalid(t, err, "group_by")
	}
}

func testAccounts(e *env) {
	t := e.t
	for i, a := range []string{"acct-e", "acct-c", "acct-a", "acct-d", "acct-b"} {
		e.buy("order-"+a, a, credits.Amount(5+i)*dollar)
	}
	e.reserve("h", "acct-c", 2*dollar, 2*dollar, time.Minute)
	// Neither a refused purchase nor a refused hold nor a usage record
	// makes an account.
	_, err := e.s.Purchase(e.ctx, credits.Purchase{ID: "x", Account: "acct-0", Amount: dollar})
	require.ErrorIs(t, err, credits.ErrPurchaseBelowMinimum)
	_, err = e.s.Reserve(e.ctx, credits.Reservation{ID: "x", Account: "acct-00", Max: 1, Min: 1, TTL: time.Minute})
	require.ErrorIs(t, err, credits.ErrInsufficientCredits)
	r := record("x", e.clock.Now())
	r.Account = "acct-000"
	require.NoError(t, e.s.Record(e.ctx, r))

	want := []string{"acct-a", "acct-b", "acct-c", "acct-d", "acct-e"}
	for limit := 1; limit <= 6; limit++ {
		var got []string
		cursor := ""
		for pages := 0; ; pages++ {
			require.Less(t, pages, 10, "paging does not end")
			p, err := e.s.Accounts(e.ctx, credits.ListOptions{Limit: limit, Cursor: cursor})
			require.NoError(t, err)
			require.LessOrEqual(t, len(p.Accounts), limit)
			for _, b := range p.Accounts {
				got = append(got, b.Account)
				checkIdentity(t, b)
				require.Equal(t, e.balance(b.Account), b)
			}
			if p.NextCursor == "" {
				break
			}
			require.Len(t, p.Accounts, limit, "a page before the last is short")
			cursor = p.NextCursor
		}
		require.Equal(t, want, got, "limit %d", limit)
	}
	p, err := e.s.Accounts(e.ctx, credits.ListOptions{})
	require.NoError(t, err)
	require.Len(t, p.Accounts, 5)
	c := p.Accounts[2]
	require.Equal(t, money{Available: 4 * dollar, Held: 2 * dollar, Purchased: 6 * dollar},
		money{c.Available, c.Held, c.Spent, c.Expired, c.Purchased})
	require.True(t, c.Known)

	for _, tc := range []struct {
		o     credits.ListOptions
		field string
	}{
		{credits.ListOptions{Limit: -1}, "limit"},
		{credits.ListOptions{Limit: credits.MaxListLimit + 1}, "limit"},
		{credits.ListOptions{Cursor: "!!"}, "cursor"},
	} {
		_, err := e.s.Accounts(e.ctx, tc.o)
		requireInvalid(t, err, tc.field)
	}
}

func testLots(e *env) {
	t := e.t
	var want []credits.Lot
	for i := 1; i <= 5; i++ {
		want = append([]credits.Lot{e.buy(fmt.Sprint("lot-", i), "acme", credits.Amount(4+i)*dollar)}, want...)
		e.clock.Advance(day)
	}
	e.reserve("h", "acme", 6*dollar, 6*dollar, time.Minute) // all of lot-1, $1 of lot-2
	want[4].Remaining, want[3].Remaining = 0, 5*dollar
	for limit := 1; limit <= 6; limit++ {
		var got []credits.Lot
		cursor := ""
		for pages := 0; ; pages++ {
			require.Less(t, pages, 10, "paging does not end")
			page, next, err := e.s.Lots(e.ctx, "acme", credits.ListOptions{Limit: limit, Cursor: cursor})
			require.NoError(t, err)
			require.LessOrEqual(t, len(page), limit)
			got = append(got, page...)
			if next == "" {
				break
			}
			require.Len(t, page, limit, "a page before the last is short")
			cursor = next
		}
		require.Len(t, got, len(want), "limit %d", limit)
		for i := range want {
			require.Equal(t, want[i].ID, got[i].ID, "limit %d", limit)
			require.Equal(t, want[i].Remaining, got[i].Remaining, "lot %s", got[i].ID)
			require.Equal(t, want[i].Amount, got[i].Amount)
			requireTime(t, want[i].PurchasedAt, got[i].PurchasedAt, "PurchasedAt")
			requireTime(t, want[i].ExpiresAt, got[i].ExpiresAt, "ExpiresAt")
		}
	}
	page, next, err := e.s.Lots(e.ctx, "nobody", credits.ListOptions{})
	require.NoError(t, err)
	require.Empty(t, page)
	require.Empty(t, next)
	for _, tc := range []struct {
		account string
		o       credits.ListOptions
		field   string
	}{
		{"", credits.ListOptions{}, "account"},
		{"acme", credits.ListOptions{Limit: -1}, "limit"},
		{"acme", credits.ListOptions{Limit: credits.MaxListLimit + 1}, "limit"},
		{"acme", credits.ListOptions{Cursor: "!!"}, "cursor"},
	} {
		_, _, err := e.s.Lots(e.ctx, tc.account, tc.o)
		requireInvalid(t, err, tc.field)
	}
}

func testTransactions(e *env) {
	t := e.t
	p1 := e.buy("p1", "acme", 10*dollar)
	e.clock.Advance(time.Second)
	e.reserve("h1", "acme", 2*dollar, 2*dollar, time.Minute)
	e.settle("h1", dollar)
	e.clock.Advance(time.Second)
	e.buy("p2", "acme", 5*dollar)
	e.buy("other", "other", 5*dollar)
	e.clock.Set(p1.ExpiresAt.Add(time.Second))
	e.sweep()

	type tx struct {
		kind          credits.TransactionKind
		amount        credits.Amount
		lotID, holdID string
	}
	want := []tx{
		{credits.TxExpire, 9 * dollar, "p1", ""},
		{credits.TxPurchase, 5 * dollar, "p2", ""},
		{credits.TxSpend, dollar, "", "h1"},
		{credits.TxPurchase, 10 * dollar, "p1", ""},
	}
	all := e.txs("acme")
	require.Len(t, all, len(want))
	seen := map[string]bool{}
	for i, got := range all {
		w := want[i]
		require.Equal(t, w.kind, got.Kind, "transaction %d", i)
		require.Equal(t, w.amount, got.Amount, "transaction %d", i)
		require.Equal(t, w.holdID, got.HoldID, "transaction %d", i)
		if w.kind != credits.TxSpend {
			require.Equal(t, w.lotID, got.LotID, "transaction %d", i)
		}
		require.Equal(t, "acme", got.Account)
		require.NotEmpty(t, got.ID)
		require.False(t, seen[got.ID], "transaction ID %s twice", got.ID)
		seen[got.ID] = true
		require.Equal(t, time.UTC, got.At.Location())
		if i > 0 {
			require.False(t, got.At.After(all[i-1].At), "transactions not newest first")
		}
	}
	for limit := 1; limit <= 5; limit++ {
		var got []credits.Transaction
		cursor := ""
		for pages := 0; ; pages++ {
			require.Less(t, pages, 10, "paging does not end")
			p, err := e.s.Transactions(e.ctx, "acme", credits.ListOptions{Limit: limit, Cursor: cursor})
			require.NoError(t, err)
			require.LessOrEqual(t, len(p.Transactions), limit)
			got = append(got, p.Transactions...)
			if p.NextCursor == "" {
				break
			}
			require.Len(t, p.Transactions, limit, "a page before the last is short")
			cursor = p.NextCursor
		}
		require.Equal(t, all, got, "limit %d", limit)
	}
	p, err := e.s.Transactions(e.ctx, "nobody", credits.ListOptions{})
	require.NoError(t, err)
	require.Empty(t, p.Transactions)
	require.Empty(t, p.NextCursor)
	for _, tc := range []struct {
		account string
		o       credits.ListOptions
		field   string
	}{
		{"", credits.ListOptions{}, "account"},
		{"acme", credits.ListOptions{Limit: -1}, "limit"},
		{"acme", credits.ListOptions{Limit: credits.MaxListLimit + 1}, "limit"},
		{"acme", credits.ListOptions{Cursor: "!!"}, "cursor"},
	} {
		_, err := e.s.Transactions(e.ctx, tc.account, tc.o)
		requireInvalid(t, err, tc.field)
	}
	e.checkBooks("acme", true)
}

func testArgumentsInvalid(e *env) {
	t := e.t
	e.buy("order-1", "acme", 10*dollar)
	for _, tc := range []struct {
		name  string
		call  func() error
		field string
	}{
		{"Balance without account", func() error { _, err := e.s.Balance(e.ctx, ""); return err }, "account"},
		{"Balance of a malformed account", func() error { _, err := e.s.Balance(e.ctx, "a\tb"); return err }, "account"},
		{"Settle without hold", func() error { _, err := e.s.Settle(e.ctx, "", dollar, nil); return err }, "id"},
		{"Settle negative", func() error { _, err := e.s.Settle(e.ctx, "unknown", -1, nil); return err }, "actual"},
		{"Release without hold", func() error { return e.s.Release(e.ctx, "") }, "id"},
		{"Release of a malformed hold", func() error { return e.s.Release(e.ctx, "a b") }, "id"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			requireInvalid(t, tc.call(), tc.field)
		})
	}
	e.want("acme", money{Available: 10 * dollar, Purchased: 10 * dollar})
}

func testCanceled(e *env) {
	t := e.t
	e.buy("order-1", "acme", 10*dollar)
	h := e.reserve("h1", "acme", 2*dollar, 2*dollar, time.Minute)
	require.NoError(t, e.s.Record(e.ctx, record("r1", e.clock.Now())))
	e.clock.Set(h.ExpiresAt.Add(credits.LotLifetime)) // a Sweep would have work
	before := e.balance("acme")
	txs := e.txs("acme")

	ctx, cancel := context.WithCancel(e.ctx)
	cancel()
	for _, tc := range []struct {
		name string
		call func() error
	}{
		{"Purchase", func() error {
			_, err := e.s.Purchase(ctx, credits.Purchase{ID: "order-2", Account: "acme", Amount: 10 * dollar})
			return err
		}},
		{"Reserve", func() error {
			_, err := e.s.Reserve(ctx, credits.Reservation{ID: "h2", Account: "acme", Max: dollar, Min: dollar, TTL: time.Minute})
			return err
		}},
		{"Settle", func() error { _, err := e.s.Settle(ctx, "h1", dollar, record("r2", e.clock.Now())); return err }},
		{"Release", func() error { return e.s.Release(ctx, "h1") }},
		{"Record", func() error { return e.s.Record(ctx, record("r3", e.clock.Now())) }},
		{"Sweep", func() error { _, err := e.s.Sweep(ctx); return err }},
		{"Balance", func() error { _, err := e.s.Balance(ctx, "acme"); return err }},
		{"Lots", func() error { _, _, err := e.s.Lots(ctx, "acme", credits.ListOptions{}); return err }},
		{"Transactions", func() error { _, err := e.s.Transactions(ctx, "acme", credits.ListOptions{}); return err }},
		{"Accounts", func() error { _, err := e.s.Accounts(ctx, credits.ListOptions{}); return err }},
		{"Usage", func() error { _, err := e.s.Usage(ctx, credits.UsageQuery{}); return err }},
		{"Summary", func() error { _, err := e.s.Summary(ctx, credits.SummaryQuery{}); return err }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.ErrorIs(t, tc.call(), context.Canceled)
		})
	}
	require.Equal(t, before, e.balance("acme"))
	require.Equal(t, txs, e.txs("acme"))
	require.Equal(t, []string{"r1"}, ids(e.usage(credits.UsageQuery{})))
	require.ErrorIs(t, e.s.Release(e.ctx, "h2"), credits.ErrHoldNotFound)
	require.Equal(t, h.Amount, e.reserve("h1", "acme", dollar, dollar, time.Minute).Amount, "the hold is still open")
}

// observe reads account's balance in a loop until stop is closed and
// returns the first broken identity or error.
func observe(ctx context.Context, s credits.Store, account string, stop <-chan struct{}) <-chan error {
	out := make(chan error, 1)
	go func() {
		defer close(out)
		for {
			select {
			case <-stop:
				return
			default:
			}
			b, err := s.Balance(ctx, account)
			switch {
			case err != nil:
				out <- err
				return
			case b.Available < 0 || b.Held < 0 || b.Purchased != b.Available+b.Held+b.Spent+b.Expired:
				out <- fmt.Errorf("balance broke the identity under load: %+v", b)
				return
			}
		}
	}()
	return out
}

// parallel runs fn(i) for i in [0, n) on n goroutines started together and
// returns their errors.
func parallel(n int, fn func(i int) error) []error {
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			errs[i] = fn(i)
		}()
	}
	close(start)
	wg.Wait()
	return errs
}

func testConcurrentReserves(e *env) {
	t := e.t
	e.buy("order-1", "acme", 5*dollar)
	stop := make(chan struct{})
	observed := observe(e.ctx, e.s, "acme", stop)

	// 64 goroutines racing reserves against a small balance never
	// overspend: $5 pays exactly ten holds of 50 cents.
	var won atomic.Int64
	errs := parallel(64, func(i int) error {
		id := fmt.Sprint("h-", i)
		_, err := e.s.Reserve(e.ctx, credits.Reservation{ID: id, Account: "acme", Max: 50 * cent, Min: 50 * cent, TTL: time.Minute})
		if errors.Is(err, credits.ErrInsufficientCredits) {
			return nil
		}
		if err != nil {
			return err
		}
		won.Add(1)
		s, err := e.s.Settle(e.ctx, id, 50*cent, nil)
		if err == nil && s != (credits.Settlement{Spent: 50 * cent}) {
			err = fmt.Errorf("settlement %+v", s)
		}
		return err
	})
	require.NoError(t, errors.Join(errs...))
	require.Equal(t, int64(10), won.Load())
	e.want("acme", money{Spent: 5 * dollar, Purchased: 5 * dollar})
	e.checkBooks("acme", false)

	// Holds of 1 cent to $1 against $5: they hold exactly $5 together.
	e.buy("order-2", "acme", 5*dollar)
	var held atomic.Int64
	holds := make([]string, 64)
	errs = parallel(64, func(i int) error {
		id := fmt.Sprint("g-", i)
		h, err := e.s.Reserve(e.ctx, credits.Reservation{ID: id, Account: "acme", Max: dollar, Min: cent, TTL: time.Minute})
		if errors.Is(err, credits.ErrInsufficientCredits) {
			return nil
		}
		if err != nil {
			return err
		}
		if h.Amount < cent || h.Amount > dollar {
			return fmt.Errorf("hold of %v", h.Amount)
		}
		held.Add(int64(h.Amount))
		holds[i] = id
		return nil
	})
	require.NoError(t, errors.Join(errs...))
	require.Equal(t, int64(5*dollar), held.Load())
	e.want("acme", money{Held: 5 * dollar, Spent: 5 * dollar, Purchased: 10 * dollar})
	errs = parallel(64, func(i int) error {
		if holds[i] == "" {
			return nil
		}
		return e.s.Release(e.ctx, holds[i])
	})
	require.NoError(t, errors.Join(errs...))
	close(stop)
	require.NoError(t, <-observed)
	e.want("acme", money{Available: 5 * dollar, Spent: 5 * dollar, Purchased: 10 * dollar})
}

func testConcurrentEnds(e *env) {
	t := e.t
	e.buy("order-1", "acme", 50*dollar)
	stop := make(chan struct{})
	observed := observe(e.ctx, e.s, "acme", stop)
	var spent credits.Amount
	for round := range 6 {
		id := fmt.Sprint("h-", round)
		// Reserving one ID from many goroutines makes one hold.
		holds := make([]credits.Hold, 16)
		errs := parallel(16, func(i int) error {
			var err error
			holds[i], err = e.s.Reserve(e.ctx, credits.Reservation{ID: id, Account: "acme", Max: 4 * dollar, Min: dollar, TTL: time.Minute})
			return err
		})
		require.NoError(t, errors.Join(errs...))
		for _, h := range holds {
			require.Equal(t, 4*dollar, h.Amount)
			require.True(t, holds[0].CreatedAt.Equal(h.CreatedAt))
		}
		require.Equal(t, 4*dollar, e.balance("acme").Held)

		// Settles and releases racing end it once: either every Settle
		// returns the same Settlement, or the hold was released first
		// and every Settle is ErrHoldClosed.
		settlements := make([]credits.Settlement, 16)
		errs = parallel(16, func(i int) error {
			if i%2 == 0 {
				return e.s.Release(e.ctx, id)
			}
			var err error
			settlements[i], err = e.s.Settle(e.ctx, id, 3*dollar, nil)
			return err
		})
		closed := 0
		for i, err := range errs {
			if errors.Is(err, credits.ErrHoldClosed) && i%2 == 1 {
				closed++
				continue
			}
			require.NoError(t, err)
			if i%2 == 1 {
				require.Equal(t, credits.Settlement{Spent: 3 * dollar, Released: dollar}, settlements[i])
			}
		}
		require.True(t, closed == 0 || closed == 8, "%d of 8 settles were refused", closed)
		if closed == 0 {
			spent += 3 * dollar
		}
		e.want("acme", money{Available: 50*dollar - spent, Spent: spent, Purchased: 50 * dollar})
	}

	// Past its expiry, Sweeps race Settles and Releases: whoever comes
	// first, the hold ends once, and every Settle agrees.
	for round := range 6 {
		id := fmt.Sprint("x-", round)
		e.reserve(id, "acme", 4*dollar, 4*dollar, time.Minute)
		e.clock.Advance(2 * time.Minute)
		settlements := make([]credits.Settlement, 24)
		sweeps := make([]credits.SweepResult, 24)
		errs := parallel(24, func(i int) error {
			var err error
			switch i % 3 {
			case 0:
				err = e.s.Release(e.ctx, id)
			case 1:
				settlements[i], err = e.s.Settle(e.ctx, id, 3*dollar, nil)
			default:
				sweeps[i], err = e.s.Sweep(e.ctx)
			}
			return err
		})
		var closed, swept int
		var first *credits.Settlement
		for i, err := range errs {
			if i%3 == 1 && errors.Is(err, credits.ErrHoldClosed) {
				closed++
				continue
			}
			require.NoError(t, err)
			switch i % 3 {
			case 1:
				if first == nil {
					first = &settlements[i]
				}
				require.Equal(t, *first, settlements[i])
			case 2:
				swept += sweeps[i].HoldsReleased
			}
		}
		require.LessOrEqual(t, swept, 1, "the hold was swept %d times", swept)
		require.True(t, closed == 0 || closed == 8, "%d of 8 settles were refused", closed)
		if closed == 0 {
			require.Contains(t, []credits.Settlement{{Spent: 3 * dollar, Released: dollar}, {Spent: 3 * dollar}}, *first)
			spent += 3 * dollar
		}
		e.want("acme", money{Available: 50*dollar - spent, Spent: spent, Purchased: 50 * dollar})
	}
	close(stop)
	require.NoError(t, <-observed)
	e.checkBooks("acme", false)
}

func testConcurrentPurchases(e *env) {
	t := e.t
	lots := make([]credits.Lot, 16)
	errs := parallel(16, func(i int) error {
		var err error
		lots[i], err = e.s.Purchase(e.ctx, credits.Purchase{ID: "order-1", Account: "acme", Amount: 10 * dollar})
		return err
	})
	require.NoError(t, errors.Join(errs...))
	for _, l := range lots {
		require.Equal(t, "order-1", l.ID)
		require.True(t, lots[0].PurchasedAt.Equal(l.PurchasedAt))
	}
	errs = parallel(16, func(i int) error {
		_, err := e.s.Purchase(e.ctx, credits.Purchase{ID: fmt.Sprint("order-n", i), Account: "new", Amount: 5 * dollar})
		return err
	})
	require.NoError(t, errors.Join(errs...))
	e.want("acme", money{Available: 10 * dollar, Purchased: 10 * dollar})
	e.want("new", money{Available: 80 * dollar, Purchased: 80 * dollar})
	require.Len(t, e.lots("new"), 16)
	p, err := e.s.Accounts(e.ctx, credits.ListOptions{})
	require.NoError(t, err)
	require.Len(t, p.Accounts, 2)
	e.checkBooks("acme", false)
	e.checkBooks("new", false)
}

// The property test's model of holds.
type (
	propHold struct {
		id, account string
		amount      credits.Amount
		expiresAt   time.Time
		state       propState
		settlement  credits.Settlement
		record      string // the usage record kept by its Settle
	}
	propState int
)

const (
	propOpen propState = iota
	propSettled
	propReleased
	propSwept
)

// propModel is what the property test knows of the books: what an
// account bought, spent and holds, whatever expired.
type propModel struct {
	e         *env
	rng       *rand.Rand
	prefix    string
	accounts  []string // the last one never buys
	purchased map[string]credits.Amount
	spent     map[string]credits.Amount
	purchases []credits.Purchase
	holds     []*propHold
	byID      map[string]*propHold
	records   map[string]credits.Amount // record ID → Uncollected
	n         int
	// touched is the account the step changed; "" for all of them.
	touched string
}

func testProperty(e *env) {
	seeds, steps := []uint64{1, 2, 3}, 500
	if testing.Short() {
		seeds, steps = []uint64{1}, 150
	}
	// The seeds share the store and its clock, each with its own accounts
	// and IDs; each ends with every hold ended.
	for _, seed := range seeds {
		e.t.Run(fmt.Sprint("seed ", seed), func(t *testing.T) {
			prefix := fmt.Sprintf("s%d-", seed)
			m := &propModel{
				e: e.with(t), rng: rand.New(rand.NewPCG(seed, 0x5eed)), prefix: prefix,
				accounts:  []string{prefix + "a", prefix + "b", prefix + "c", prefix + "never"},
				purchased: map[string]credits.Amount{}, spent: map[string]credits.Amount{},
				byID: map[string]*propHold{}, records: map[string]credits.Amount{},
			}
			for step := range steps {
				what := m.step()
				if t.Failed() {
					t.Fatalf("seed %d failed at step %d (%s)", seed, step, what)
				}
			}
			m.finish()
		})
	}
}

// id returns a new ID of kind.
func (m *propModel) id(kind string) string {
	m.n++
	return fmt.Sprintf("%s%s%d", m.prefix, kind, m.n)
}

// account picks an account; the one that never buys rarely.
func (m *propModel) account() string {
	if m.rng.IntN(20) == 0 {
		return m.accounts[len(m.accounts)-1]
	}
	return m.accounts[m.rng.IntN(len(m.accounts)-1)]
}

// amount returns a random amount in [lo, hi].
func (m *propModel) amount(lo, hi credits.Amount) credits.Amount {
	return lo + credits.Amount(m.rng.Int64N(int64(hi-lo)+1))
}

// step does one random operation, checks it and the books, and says what
// it did.
func (m *propModel) step() string {
	e, t := m.e, m.e.t
	var what string
	m.touched = ""
	switch r := m.rng.IntN(100); {
	case r < 12:
		what = m.purchase()
	case r < 45:
		what = m.reserve()
	case r < 70 && len(m.holds) > 0:
		what = m.settle()
	case r < 80 && len(m.holds) > 0:
		h := m.holds[m.rng.IntN(len(m.holds))]
		what, m.touched = "release "+h.id, h.account
		require.NoError(t, e.s.Release(e.ctx, h.id), what)
		if h.state == propOpen {
			h.state = propReleased
		}
	case r < 88:
		d := []time.Duration{time.Minute, 20 * time.Minute, 3 * time.Hour, 2 * day, 60 * day, 200 * day}[m.rng.IntN(6)]
		e.clock.Advance(d)
		what = "advance " + d.String()
	case r < 96:
		what = m.sweep()
	case len(m.holds) > 0:
		h := m.holds[m.rng.IntN(len(m.holds))]
		what, m.touched = "reserve again "+h.id, h.account
		got, err := e.s.Reserve(e.ctx, credits.Reservation{ID: h.id, Account: h.account, Max: dollar, Min: 1, TTL: time.Minute})
		if h.state == propOpen {
			require.NoError(t, err, what)
			require.Equal(t, h.amount, got.Amount, what)
		} else {
			require.ErrorIs(t, err, credits.ErrHoldClosed, what)
		}
	default:
		what = "release unknown"
		require.ErrorIs(t, e.s.Release(e.ctx, m.id("unknown")), credits.ErrHoldNotFound)
	}
	// Time and Sweeps change every account; the rest only the one
	// touched.
	for _, a := range m.accounts {
		if m.touched == "" || m.touched == a {
			m.check(a, what)
		}
	}
	return what
}

// check checks account's balance against the model.
func (m *propModel) check(account, what string) credits.Balance {
	e, t := m.e, m.e.t
	b, err := e.s.Balance(e.ctx, account)
	require.NoError(t, err)
	checkIdentity(t, b)
	var held credits.Amount
	for _, h := range m.holds {
		if h.account == account && h.state == propOpen {
			held += h.amount
		}
	}
	require.Equal(t, m.purchased[account], b.Purchased, "purchased of %s after %s", account, what)
	require.Equal(t, m.spent[account], b.Spent, "spent of %s after %s", account, what)
	require.Equal(t, held, b.Held, "held of %s after %s", account, what)
	require.Equal(t, m.purchased[account] > 0, b.Known, "known of %s after %s", account, what)
	return b
}

func (m *propModel) purchase() string {
	e, t := m.e, m.e.t
	if len(m.purchases) > 0 && m.rng.IntN(10) == 0 {
		p := m.purchases[m.rng.IntN(len(m.purchases))]
		_, err := e.s.Purchase(e.ctx, p)
		require.NoError(t, err, "purchase again %s", p.ID)
		m.touched = p.Account
		return "purchase again " + p.ID
	}
	p := credits.Purchase{ID: m.id("p"), Account: m.accounts[m.rng.IntN(len(m.accounts)-1)], Amount: m.amount(credits.MinPurchase, 20*dollar)}
	lot, err := e.s.Purchase(e.ctx, p)
	require.NoError(t, err, "purchase %s", p.ID)
	require.Equal(t, p.Amount, lot.Remaining)
	m.purchases = append(m.purchases, p)
	m.touched = p.Account
	m.purchased[p.Account] += p.Amount
	return fmt.Sprintf("purchase %s %s $%s", p.ID, p.Account, p.Amount)
}

func (m *propModel) reserve() string {
	e, t := m.e, m.e.t
	account := m.account()
	m.touched = account
	avail := m.check(account, "nothing").Available
	hi := m.amount(1, 6*dollar)
	lo := m.amount(1, hi)
	if m.rng.IntN(3) == 0 {
		lo = hi
	}
	ttl := []time.Duration{time.Minute, time.Hour, credits.MaxHoldTTL}[m.rng.IntN(3)]
	r := credits.Reservation{ID: m.id("h"), Account: account, Max: hi, Min: lo, TTL: ttl}
	what := fmt.Sprintf("reserve %s %s $%s..$%s of $%s", r.ID, account, lo, hi, avail)
	h, err := e.s.Reserve(e.ctx, r)
	if want := min(hi, avail); want < lo {
		var ie *credits.InsufficientError
		require.ErrorAs(t, err, &ie, what)
		require.Equal(t, credits.InsufficientError{Account: account, Available: avail, Min: lo, Never: m.purchased[account] == 0}, *ie, what)
		return what
	}
	require.NoError(t, err, what)
	require.Equal(t, min(hi, avail), h.Amount, what)
	require.True(t, e.clock.Now().Add(ttl).Equal(h.ExpiresAt), what)
	ph := &propHold{id: r.ID, account: account, amount: h.Amount, expiresAt: h.ExpiresAt}
	m.holds = append(m.holds, ph)
	m.byID[ph.id] = ph
	return what
}

func (m *propModel) settle() string {
	e, t := m.e, m.e.t
	h := m.holds[m.rng.IntN(len(m.holds))]
	m.touched = h.account
	avail := m.check(h.account, "nothing").Available
	actual := m.amount(0, 2*h.amount+dollar)
	var rec *credits.UsageRecord
	if m.rng.IntN(3) == 0 {
		rec = record(m.id("r"), e.clock.Now())
		rec.Cost, rec.Fee = actual, 0
	}
	what := fmt.Sprintf("settle %s ($%s, state %d) for $%s of $%s", h.id, h.amount, h.state, actual, avail)
	s, err := e.s.Settle(e.ctx, h.id, actual, rec)
	var want credits.Settlement
	switch h.state {
	case propReleased:
		require.ErrorIs(t, err, credits.ErrHoldClosed, what)
		return what
	case propSettled:
		require.NoError(t, err, what)
		require.Equal(t, h.settlement, s, what)
		return what
	case propOpen:
		fromHold := min(actual, h.amount)
		want.Released = h.amount - fromHold
		want.Spent = fromHold + min(actual-fromHold, avail)
	case propSwept:
		want.Spent = min(actual, avail)
	}
	want.Uncollected = actual - want.Spent
	require.NoError(t, err, what)
	require.Equal(t, want, s, what)
	h.state, h.settlement = propSettled, s
	m.spent[h.account] += s.Spent
	if rec != nil {
		h.record = rec.ID
		m.records[rec.ID] = s.Uncollected
	}
	return what
}

func (m *propModel) sweep() string {
	e, t := m.e, m.e.t
	now := e.clock.Now()
	var want credits.SweepResult
	for _, h := range m.holds {
		if h.state == propOpen && !now.Before(h.expiresAt) {
			want.HoldsReleased++
			want.Released += h.amount
			h.state = propSwept
		}
	}
	res := e.sweep()
	require.Equal(t, want.HoldsReleased, res.HoldsReleased, "holds swept")
	require.Equal(t, want.Released, res.Released, "money of holds swept")
	require.GreaterOrEqual(t, res.Expired, credits.Amount(0))
	// After a Sweep the transactions add up to the balance, and the lots'
	// remainders to what is available.
	for _, a := range m.accounts {
		e.checkBooks(a, true)
		b := e.balance(a)
		var sum credits.Amount
		for _, l := range e.lots(a) {
			require.GreaterOrEqual(t, l.Remaining, credits.Amount(0))
			require.LessOrEqual(t, l.Remaining, l.Amount)
			if !now.Before(l.ExpiresAt) {
				require.Zero(t, l.Remaining, "lot %s past its expiry", l.ID)
			}
			sum += l.Remaining
		}
		require.Equal(t, b.Available, sum, "lots' remainders of %s", a)
	}
	return "sweep"
}

// finish ends every hold with a final Sweep and checks the books and the
// usage records.
func (m *propModel) finish() {
	e, t := m.e, m.e.t
	e.clock.Advance(credits.MaxHoldTTL)
	m.sweep()
	for _, h := range m.holds {
		require.NotEqual(t, propOpen, h.state, "hold %s still open", h.id)
	}
	for _, a := range m.accounts {
		b := m.check(a, "the final sweep")
		require.Zero(t, b.Held)
	}
	kept := map[string]credits.Amount{}
	for _, r := range e.usage(credits.UsageQuery{}) {
		if _, ok := m.records[r.ID]; ok {
			require.True(t, r.Paid, "record %s", r.ID)
			kept[r.ID] = r.Uncollected
		}
	}
	require.Equal(t, m.records, kept)
}
