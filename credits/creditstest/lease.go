package creditstest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/llmgate/gateway/credits"
)

// leaseTests are the subtests of credits.Leaser, run for stores that
// implement it.
var leaseTests = []struct {
	name string
	fn   func(e *env, l credits.Leaser)
}{
	{"FlushSpendGrow", testFlushSpendGrow},
	{"FlushEarliestExpiryFirst", testFlushEarliestExpiryFirst},
	{"FlushSwept", testFlushSwept},
	{"FlushRecords", testFlushRecords},
	{"FlushRefused", testFlushRefused},
	{"FlushConcurrent", testFlushConcurrent},
}

// flush runs f, which must succeed.
func (e *env) flush(l credits.Leaser, f credits.LeaseFlush) credits.FlushResult {
	e.t.Helper()
	r, err := l.Flush(e.ctx, f)
	require.NoError(e.t, err)
	return r
}

func testFlushSpendGrow(e *env, l credits.Leaser) {
	t := e.t
	e.buy("order-1", "acme", 10*dollar)
	lease := e.reserve("lease-1", "acme", 4*dollar, 4*dollar, time.Minute)
	e.clock.Advance(time.Second)

	// Spend part of the hold: it stays open with the rest.
	r := e.flush(l, credits.LeaseFlush{HoldID: "lease-1", Seq: 1, Spent: 1_500_000})
	require.False(t, r.Replayed)
	require.False(t, r.Swept)
	require.Equal(t, credits.Amount(1_500_000), r.Spent)
	require.Zero(t, r.Uncollected)
	require.Zero(t, r.Grown)
	require.Equal(t, credits.Amount(2_500_000), r.Hold.Amount)
	require.Equal(t, "acme", r.Hold.Account)
	requireTime(t, lease.ExpiresAt, r.Hold.ExpiresAt, "ExpiresAt without TTL")
	e.want("acme", money{Available: 6 * dollar, Held: 2_500_000, Spent: 1_500_000, Purchased: 10 * dollar})
	txs := e.txs("acme")
	require.Equal(t, credits.TxSpend, txs[0].Kind)
	require.Equal(t, credits.Amount(1_500_000), txs[0].Amount)
	require.Equal(t, "lease-1", txs[0].HoldID)

	// A flush of nothing with a TTL moves the expiry only.
	e.clock.Advance(time.Second)
	r = e.flush(l, credits.LeaseFlush{HoldID: "lease-1", Seq: 2, TTL: time.Hour})
	requireTime(t, e.clock.Now().Add(time.Hour), r.Hold.ExpiresAt, "ExpiresAt after TTL")
	require.Len(t, e.txs("acme"), len(txs), "a flush spending nothing wrote a transaction")

	// A retry of the last applied Seq, or an older one, changes nothing.
	for _, seq := range []int64{2, 1} {
		r = e.flush(l, credits.LeaseFlush{HoldID: "lease-1", Seq: seq, Spent: dollar, Grow: dollar, TTL: 2 * time.Hour})
		require.True(t, r.Replayed)
		require.Equal(t, credits.Amount(2_500_000), r.Hold.Amount)
		requireTime(t, e.clock.Now().Add(time.Hour), r.Hold.ExpiresAt, "ExpiresAt after a replay")
	}
	require.Len(t, e.txs("acme"), len(txs), "a replayed flush wrote a transaction")
	e.want("acme", money{Available: 6 * dollar, Held: 2_500_000, Spent: 1_500_000, Purchased: 10 * dollar})
	// Seqs may skip.
	r = e.flush(l, credits.LeaseFlush{HoldID: "lease-1", Seq: 5, Spent: 500_000, Grow: 3 * dollar})
	require.Equal(t, credits.Amount(500_000), r.Spent)
	require.Equal(t, 3*dollar, r.Grown)
	require.Equal(t, 5*dollar, r.Hold.Amount)
	e.want("acme", money{Available: 3 * dollar, Held: 5 * dollar, Spent: 2 * dollar, Purchased: 10 * dollar})
	_, err := e.s.Reserve(e.ctx, credits.Reservation{ID: "h-other", Account: "acme", Max: 4 * dollar, Min: 4 * dollar, TTL: time.Minute})
	require.ErrorIs(t, err, credits.ErrInsufficientCredits, "grown money is held")

	// Grow takes at most what is available.
	r = e.flush(l, credits.LeaseFlush{HoldID: "lease-1", Seq: 6, Grow: 100 * dollar})
	require.Equal(t, 3*dollar, r.Grown)
	require.Equal(t, 8*dollar, r.Hold.Amount)
	e.want("acme", money{Held: 8 * dollar, Spent: 2 * dollar, Purchased: 10 * dollar})

	// Spending beyond the hold takes the available money, at most all.
	e.buy("order-2", "acme", 5*dollar)
	r = e.flush(l, credits.LeaseFlush{HoldID: "lease-1", Seq: 7, Spent: 9 * dollar})
	require.Equal(t, 9*dollar, r.Spent)
	require.Zero(t, r.Uncollected)
	require.Zero(t, r.Hold.Amount)
	e.want("acme", money{Available: 4 * dollar, Spent: 11 * dollar, Purchased: 15 * dollar})
	r = e.flush(l, credits.LeaseFlush{HoldID: "lease-1", Seq: 8, Spent: 5 * dollar, Grow: dollar})
	require.Equal(t, 4*dollar, r.Spent)
	require.Equal(t, dollar, r.Uncollected)
	require.Zero(t, r.Grown)
	e.want("acme", money{Spent: 15 * dollar, Purchased: 15 * dollar})

	// The lease ends like any hold.
	e.buy("order-3", "acme", 5*dollar)
	r = e.flush(l, credits.LeaseFlush{HoldID: "lease-1", Seq: 9, Grow: 2 * dollar})
	require.Equal(t, 2*dollar, r.Hold.Amount)
	require.NoError(t, e.s.Release(e.ctx, "lease-1"))
	e.want("acme", money{Available: 5 * dollar, Spent: 15 * dollar, Purchased: 20 * dollar})
	e.checkBooks("acme", false)
}

func testFlushEarliestExpiryFirst(e *env, l credits.Leaser) {
	t := e.t
	e.buy("order-1", "acme", 5*dollar)
	e.clock.Advance(10 * day)
	second := e.buy("order-2", "acme", 5*dollar)
	e.reserve("lease-1", "acme", 7*dollar, 7*dollar, time.Hour)
	require.Equal(t, map[string]credits.Amount{"order-1": 0, "order-2": 3 * dollar}, e.remaining("acme"))

	// Spending takes the hold's earliest lot first.
	e.flush(l, credits.LeaseFlush{HoldID: "lease-1", Seq: 1, Spent: 6 * dollar})
	// Growing takes what is left, earliest expiry first.
	e.clock.Advance(day)
	e.buy("order-0", "acme", 5*dollar) // expires last
	r := e.flush(l, credits.LeaseFlush{HoldID: "lease-1", Seq: 2, Grow: 4 * dollar})
	require.Equal(t, 4*dollar, r.Grown)
	require.Equal(t, map[string]credits.Amount{"order-1": 0, "order-2": 0, "order-0": 4 * dollar}, e.remaining("acme"))
	// The hold has order-2's $1 + $3 and order-0's $1; spending $1.5
	// takes order-2's first.
	e.flush(l, credits.LeaseFlush{HoldID: "lease-1", Seq: 3, Spent: 1_500_000})
	require.NoError(t, e.s.Release(e.ctx, "lease-1"))
	require.Equal(t, map[string]credits.Amount{"order-1": 0, "order-2": 2_500_000, "order-0": 5 * dollar}, e.remaining("acme"))
	e.want("acme", money{Available: 7_500_000, Spent: 7_500_000, Purchased: 15 * dollar})

	// Money a lease holds of a lot that expires meanwhile expires when it
	// goes back.
	e.reserve("lease-2", "acme", 7_500_000, 7_500_000, credits.MaxHoldTTL)
	e.clock.Set(second.ExpiresAt)
	e.flush(l, credits.LeaseFlush{HoldID: "lease-2", Seq: 1, Spent: dollar, TTL: time.Hour})
	require.NoError(t, e.s.Release(e.ctx, "lease-2"))
	e.want("acme", money{Available: 5 * dollar, Spent: 8_500_000, Expired: 1_500_000, Purchased: 15 * dollar})
	e.sweep()
	e.checkBooks("acme", true)
}

func testFlushSwept(e *env, l credits.Leaser) {
	t := e.t
	e.buy("order-1", "acme", 10*dollar)
	e.reserve("lease-1", "acme", 3*dollar, 3*dollar, time.Minute)
	e.clock.Advance(2 * time.Minute)
	require.Equal(t, credits.SweepResult{HoldsReleased: 1, Released: 3 * dollar}, e.sweep())

	// A lease that outlived its expiry pays from the available money and
	// grows no more.
	rec := record("r1", e.clock.Now())
	r := e.flush(l, credits.LeaseFlush{HoldID: "lease-1", Seq: 1, Spent: dollar, Records: []*credits.UsageRecord{rec}, Grow: dollar, TTL: time.Hour})
	require.True(t, r.Swept)
	require.Equal(t, dollar, r.Spent)
	require.Zero(t, r.Grown)
	require.Zero(t, r.Hold.Amount)
	e.want("acme", money{Available: 9 * dollar, Spent: dollar, Purchased: 10 * dollar})
	require.Equal(t, []string{"r1"}, ids(e.usage(credits.UsageQuery{Account: "acme"})))
	r = e.flush(l, credits.LeaseFlush{HoldID: "lease-1", Seq: 2, Spent: 10 * dollar})
	require.Equal(t, 9*dollar, r.Spent)
	require.Equal(t, dollar, r.Uncollected)
	e.want("acme", money{Spent: 10 * dollar, Purchased: 10 * dollar})
	require.NoError(t, e.s.Release(e.ctx, "lease-1"))
	e.checkBooks("acme", true)

	// A lease spent to nothing is still open, and swept like any hold.
	e.buy("order-2", "acme", 10*dollar)
	e.reserve("lease-2", "acme", 2*dollar, 2*dollar, time.Minute)
	r = e.flush(l, credits.LeaseFlush{HoldID: "lease-2", Seq: 1, Spent: 2 * dollar})
	require.Zero(t, r.Hold.Amount)
	again := e.reserve("lease-2", "acme", dollar, dollar, time.Minute)
	require.Zero(t, again.Amount, "a lease of nothing is open")
	e.clock.Advance(2 * time.Minute)
	require.Equal(t, credits.SweepResult{HoldsReleased: 1}, e.sweep())
	r = e.flush(l, credits.LeaseFlush{HoldID: "lease-2", Seq: 2, Spent: dollar})
	require.True(t, r.Swept)
	e.want("acme", money{Available: 7 * dollar, Spent: 13 * dollar, Purchased: 20 * dollar})
	e.checkBooks("acme", true)
}

func testFlushRecords(e *env, l credits.Leaser) {
	t := e.t
	e.buy("order-1", "acme", 10*dollar)
	e.reserve("lease-1", "acme", 5*dollar, 5*dollar, time.Hour)
	now := e.clock.Now()
	r1, r2 := record("r1", now), record("r2", now.Add(time.Second))
	r2.Account = "acme"
	r2.Uncollected = 7
	before := cloneRecord(r1)
	r := e.flush(l, credits.LeaseFlush{HoldID: "lease-1", Seq: 1, Spent: r1.Charge(), Records: []*credits.UsageRecord{r1}})
	require.Equal(t, before, r1, "Flush changed its argument")
	require.Empty(t, r.Conflicts)

	// A record kept before: with the same content nothing happens, with
	// other content (Record keeps it unpaid) it is a conflict, and the
	// rest of the flush happens.
	kept := record("r3", now.Add(2*time.Second))
	require.NoError(t, e.s.Record(e.ctx, kept))
	r = e.flush(l, credits.LeaseFlush{HoldID: "lease-1", Seq: 2, Spent: r2.Charge() + kept.Charge(),
		Records: []*credits.UsageRecord{r1, r2, kept}})
	require.Equal(t, []string{"r3"}, r.Conflicts)
	require.Equal(t, r2.Charge()+kept.Charge(), r.Spent)

	got := e.usage(credits.UsageQuery{})
	w1, w2, w3 := *r1, *r2, *kept
	w1.Account, w1.Paid = "acme", true
	w2.Paid = true
	requireRecords(t, []credits.UsageRecord{w3, w2, w1}, got)

	// The records of a replayed flush are not looked at.
	r = e.flush(l, credits.LeaseFlush{HoldID: "lease-1", Seq: 2, Records: []*credits.UsageRecord{record("r9", now)}})
	require.True(t, r.Replayed)
	require.Len(t, e.usage(credits.UsageQuery{}), 3)
	spent := r1.Charge() + r2.Charge() + kept.Charge()
	e.want("acme", money{Available: 5 * dollar, Held: 5*dollar - spent, Spent: spent, Purchased: 10 * dollar})
}

func testFlushRefused(e *env, l credits.Leaser) {
	t := e.t
	e.buy("order-1", "acme", 10*dollar)
	e.buy("order-2", "beta", 10*dollar)
	e.reserve("lease-1", "acme", 2*dollar, 2*dollar, time.Hour)
	e.reserve("released", "acme", dollar, dollar, time.Hour)
	require.NoError(t, e.s.Release(e.ctx, "released"))
	e.reserve("settled", "acme", dollar, dollar, time.Hour)
	e.settle("settled", dollar)
	before := e.balance("acme")
	txs := len(e.txs("acme"))

	_, err := l.Flush(e.ctx, credits.LeaseFlush{HoldID: "unknown", Seq: 1, Spent: dollar})
	require.ErrorIs(t, err, credits.ErrHoldNotFound)
	for _, id := range []string{"released", "settled"} {
		_, err = l.Flush(e.ctx, credits.LeaseFlush{HoldID: id, Seq: 1, Spent: dollar, Records: []*credits.UsageRecord{record("r-"+id, e.clock.Now())}})
		require.ErrorIs(t, err, credits.ErrHoldClosed, id)
	}
	beta := record("r-beta", e.clock.Now())
	beta.Account = "beta"
	many := make([]*credits.UsageRecord, credits.MaxFlushRecords+1)
	for i := range many {
		many[i] = record(fmt.Sprint("m", i), e.clock.Now())
	}
	bad := record("r-bad", e.clock.Now())
	bad.Cost = -1
	for _, tc := range []struct {
		name  string
		f     credits.LeaseFlush
		field string
	}{
		{"no hold", credits.LeaseFlush{Seq: 1}, "hold_id"},
		{"seq 0", credits.LeaseFlush{HoldID: "lease-1"}, "seq"},
		{"negative spent", credits.LeaseFlush{HoldID: "lease-1", Seq: 1, Spent: -1}, "spent"},
		{"negative grow", credits.LeaseFlush{HoldID: "lease-1", Seq: 1, Grow: -1}, "grow"},
		{"negative ttl", credits.LeaseFlush{HoldID: "lease-1", Seq: 1, TTL: -time.Second}, "ttl"},
		{"ttl too long", credits.LeaseFlush{HoldID: "lease-1", Seq: 1, TTL: credits.MaxHoldTTL + time.Second}, "ttl"},
		{"too many records", credits.LeaseFlush{HoldID: "lease-1", Seq: 1, Records: many}, "records"},
		{"bad record", credits.LeaseFlush{HoldID: "lease-1", Seq: 1, Spent: dollar, Records: []*credits.UsageRecord{record("ok", e.clock.Now()), bad}}, "record.cost"},
		{"record of another account", credits.LeaseFlush{HoldID: "lease-1", Seq: 1, Spent: dollar, Records: []*credits.UsageRecord{record("ok", e.clock.Now()), beta}}, "record.account"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := l.Flush(e.ctx, tc.f)
			requireInvalid(t, err, tc.field)
		})
	}
	ctx, cancel := context.WithCancel(e.ctx)
	cancel()
	_, err = l.Flush(ctx, credits.LeaseFlush{HoldID: "lease-1", Seq: 1, Spent: dollar})
	require.Error(t, err)

	require.Equal(t, before, e.balance("acme"), "a refused flush changed the balance")
	require.Len(t, e.txs("acme"), txs)
	require.Len(t, e.usage(credits.UsageQuery{}), 0, "a refused flush kept records")
	// The lease is untouched: Seq 1 is still to come.
	r := e.flush(l, credits.LeaseFlush{HoldID: "lease-1", Seq: 1, Spent: dollar})
	require.False(t, r.Replayed)
	require.Equal(t, dollar, r.Hold.Amount)
}

func testFlushConcurrent(e *env, l credits.Leaser) {
	t := e.t
	e.buy("order-1", "acme", 5*dollar)
	// Eight replicas grow their leases and spend from them while requests
	// hold and settle on their own: nobody holds or spends more than the
	// account has.
	const replicas, rounds = 8, 15
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		spent   credits.Amount
		records int
	)
	for i := range replicas {
		wg.Add(2)
		go func() {
			defer wg.Done()
			id := fmt.Sprint("lease-", i)
			h, err := e.s.Reserve(e.ctx, credits.Reservation{ID: id, Account: "acme", Max: dollar, Min: 1, TTL: time.Hour})
			if err != nil {
				assert.ErrorIs(t, err, credits.ErrInsufficientCredits)
				return
			}
			have := h.Amount
			for seq := int64(1); seq <= rounds; seq++ {
				use := min(have, 40*cent)
				r, err := l.Flush(e.ctx, credits.LeaseFlush{HoldID: id, Seq: seq, Spent: use, Grow: 20 * cent,
					Records: []*credits.UsageRecord{record(fmt.Sprint(id, "-", seq), e.clock.Now())}})
				if !assert.NoError(t, err) {
					return
				}
				assert.Equal(t, use, r.Spent, "a lease spending what it holds is always paid")
				assert.Equal(t, have-use+r.Grown, r.Hold.Amount)
				have = r.Hold.Amount
				mu.Lock()
				spent += r.Spent
				records++
				mu.Unlock()
			}
			assert.NoError(t, e.s.Release(e.ctx, id))
		}()
		go func() {
			defer wg.Done()
			for j := range rounds {
				id := fmt.Sprint("h-", i, "-", j)
				h, err := e.s.Reserve(e.ctx, credits.Reservation{ID: id, Account: "acme", Max: 10 * cent, Min: 10 * cent, TTL: time.Hour})
				if err != nil {
					assert.ErrorIs(t, err, credits.ErrInsufficientCredits)
					continue
				}
				s, err := e.s.Settle(e.ctx, id, h.Amount, nil)
				assert.NoError(t, err)
				mu.Lock()
				spent += s.Spent
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	b := e.balance("acme")
	require.Equal(t, spent, b.Spent)
	require.Zero(t, b.Held)
	require.Equal(t, 5*dollar, b.Available+b.Spent)
	e.checkBooks("acme", false)
	require.Len(t, e.usage(credits.UsageQuery{Account: "acme"}), records)
}
