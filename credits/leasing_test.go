package credits_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/llmgate/gateway/credits"
	"github.com/llmgate/gateway/credits/creditstest"
)

const (
	dollar = credits.Dollar
	cent   = credits.Cent
)

// leased is a Memory store and a Leasing of it, flushed by hand.
type leased struct {
	t     *testing.T
	ctx   context.Context
	clock *creditstest.Clock
	store *credits.Memory
	l     *credits.Leasing
}

func newLeased(t *testing.T, o credits.LeasingOptions) *leased {
	clock := creditstest.NewClock(creditstest.StartTime())
	s := credits.NewMemory(credits.MemoryOptions{Now: clock.Now})
	if o.FlushInterval == 0 {
		o.FlushInterval = time.Hour // ticked by hand
	}
	o.Now = clock.Now
	x := &leased{t: t, ctx: t.Context(), clock: clock, store: s, l: credits.NewLeasing(s, o)}
	t.Cleanup(func() { _ = x.l.Close(context.Background()) })
	return x
}

func (x *leased) buy(account string, amount credits.Amount) {
	x.t.Helper()
	_, err := x.store.Purchase(x.ctx, credits.Purchase{ID: fmt.Sprintf("order-%s-%d-%d", account, amount, rand.Int()), Account: account, Amount: amount})
	require.NoError(x.t, err)
}

func (x *leased) reserve(id string, hi credits.Amount) credits.Hold {
	x.t.Helper()
	h, err := x.l.Reserve(x.ctx, credits.Reservation{ID: id, Account: "acme", Max: hi, Min: 1, TTL: time.Hour})
	require.NoError(x.t, err)
	return h
}

func (x *leased) storeBalance() credits.Balance {
	x.t.Helper()
	b, err := x.store.Balance(x.ctx, "acme")
	require.NoError(x.t, err)
	require.Equal(x.t, b.Purchased, b.Available+b.Held+b.Spent+b.Expired, "identity of %+v", b)
	return b
}

func usageRecord(id string, at time.Time, cost credits.Amount) *credits.UsageRecord {
	return &credits.UsageRecord{ID: id, RequestID: id, Provider: "openai", Model: "gpt-4o", KeySource: credits.SourceConfigured,
		Cost: cost, Status: 200, Start: at, End: at.Add(time.Second)}
}

func (x *leased) records() []credits.UsageRecord {
	x.t.Helper()
	p, err := x.store.Usage(x.ctx, credits.UsageQuery{ListOptions: credits.ListOptions{Limit: credits.MaxListLimit}})
	require.NoError(x.t, err)
	return p.Records
}

func TestLeasingHoldsInMemoryAndWritesBack(t *testing.T) {
	x := newLeased(t, credits.LeasingOptions{Size: dollar, Idle: 100 * time.Hour})
	x.buy("acme", 100*dollar)
	for i := range 10 {
		h := x.reserve(fmt.Sprint("r", i), 5*cent)
		require.Equal(t, 5*cent, h.Amount)
	}
	// The store holds one lease; the requests' holds are in memory.
	require.Equal(t, credits.Balance{Account: "acme", Available: 99 * dollar, Held: dollar, Purchased: 100 * dollar, Known: true},
		withoutExpiry(x.storeBalance()))
	b, err := x.l.Balance(x.ctx, "acme")
	require.NoError(t, err)
	require.Equal(t, 50*cent, b.Held)
	require.Equal(t, 99*dollar+50*cent, b.Available)

	for i := range 10 {
		s, err := x.l.Settle(x.ctx, fmt.Sprint("r", i), 3*cent, usageRecord(fmt.Sprint("r", i), x.clock.Now(), 3*cent))
		require.NoError(t, err)
		require.Equal(t, credits.Settlement{Spent: 3 * cent, Released: 2 * cent}, s)
	}
	again, err := x.l.Settle(x.ctx, "r0", 4*cent, nil)
	require.NoError(t, err)
	require.Equal(t, credits.Settlement{Spent: 3 * cent, Released: 2 * cent}, again, "a replayed Settle")
	require.NoError(t, x.l.Release(x.ctx, "r0"), "releasing a settled hold does nothing")
	require.Zero(t, x.storeBalance().Spent, "nothing is written before a flush")
	require.Empty(t, x.records())

	x.l.Tick()
	// Spent written back with every record, and the lease grown back.
	sb := x.storeBalance()
	require.Equal(t, 30*cent, sb.Spent)
	require.Equal(t, dollar, sb.Held)
	recs := x.records()
	require.Len(t, recs, 10)
	for _, r := range recs {
		require.True(t, r.Paid)
		require.Equal(t, "acme", r.Account)
	}
	b, err = x.l.Balance(x.ctx, "acme")
	require.NoError(t, err)
	require.Equal(t, credits.Balance{Account: "acme", Available: 99*dollar + 70*cent, Spent: 30 * cent, Purchased: 100 * dollar, Known: true}, withoutExpiry(b))

	// Close gives the lease back.
	require.NoError(t, x.l.Close(x.ctx))
	require.Equal(t, credits.Balance{Account: "acme", Available: 99*dollar + 70*cent, Spent: 30 * cent, Purchased: 100 * dollar, Known: true},
		withoutExpiry(x.storeBalance()))
	txs, err := x.store.Transactions(x.ctx, "acme", credits.ListOptions{})
	require.NoError(t, err)
	require.Equal(t, credits.TxSpend, txs.Transactions[0].Kind)
	require.Equal(t, 30*cent, txs.Transactions[0].Amount, "one spend per flush")
}

func withoutExpiry(b credits.Balance) credits.Balance {
	b.NextExpiry = time.Time{}
	return b
}

func TestLeasingHoldsInTheStoreWhenItCannotLease(t *testing.T) {
	t.Run("little money", func(t *testing.T) {
		x := newLeased(t, credits.LeasingOptions{Size: dollar}) // 10 leases' worth needed
		x.buy("acme", 9*dollar)
		x.reserve("r1", 10*cent)
		require.Equal(t, 10*cent, x.storeBalance().Held, "the request's own hold is in the store")
		x.reserve("r2", 10*cent)
		require.Equal(t, 20*cent, x.storeBalance().Held)
		_, err := x.l.Settle(x.ctx, "r1", 5*cent, nil)
		require.NoError(t, err)
		require.Equal(t, 5*cent, x.storeBalance().Spent, "settled in the store at once")
		require.NoError(t, x.l.Release(x.ctx, "r2"))
		require.Zero(t, x.storeBalance().Held)
		// All of it can be held: no lease keeps any of it away.
		h, err := x.l.Reserve(x.ctx, credits.Reservation{ID: "r3", Account: "acme", Max: 100 * dollar, Min: 1, TTL: time.Hour})
		require.NoError(t, err)
		require.Equal(t, 9*dollar-5*cent, h.Amount)
	})
	t.Run("a request larger than a lease", func(t *testing.T) {
		x := newLeased(t, credits.LeasingOptions{Size: dollar})
		x.buy("acme", 100*dollar)
		x.reserve("small", cent)
		x.reserve("big", 2*dollar)
		require.Equal(t, 3*dollar, x.storeBalance().Held, "the lease and the big request's own hold")
		_, err := x.l.Settle(x.ctx, "big", dollar, nil)
		require.NoError(t, err)
		require.Equal(t, dollar, x.storeBalance().Spent)
	})
	t.Run("a lease spent to its end", func(t *testing.T) {
		x := newLeased(t, credits.LeasingOptions{Size: dollar})
		x.buy("acme", 100*dollar)
		x.reserve("a", 60*cent)
		x.reserve("b", 60*cent) // the lease has 40¢ left: the store holds it
		require.NoError(t, x.store.Release(x.ctx, "b"), "b is a hold of the store's")
		require.ErrorIs(t, x.store.Release(x.ctx, "a"), credits.ErrHoldNotFound, "a is the lease's")
		// Meanwhile the lease is grown back: a's 60¢ and $1 free.
		require.Eventually(t, func() bool { return x.storeBalance().Held == dollar+60*cent }, 5*time.Second, time.Millisecond)
	})
}

func TestLeasingCollectsWhatARequestCostBeyondItsHold(t *testing.T) {
	x := newLeased(t, credits.LeasingOptions{Size: dollar, Idle: 100 * time.Hour})
	x.buy("acme", 100*dollar)
	x.reserve("a", 90*cent)
	x.reserve("b", 5*cent)
	// a costs $1.20: its 90¢, the lease's free 5¢, and 25¢ more.
	s, err := x.l.Settle(x.ctx, "a", dollar+20*cent, nil)
	require.NoError(t, err)
	require.Equal(t, dollar+20*cent, s.Spent)
	x.l.Tick()
	sb := x.storeBalance()
	require.Equal(t, dollar+20*cent, sb.Spent, "the excess is collected")
	require.Equal(t, dollar+5*cent, sb.Held, "the lease is grown back to b's hold and its size")
	// b is still covered.
	_, err = x.l.Settle(x.ctx, "b", 5*cent, nil)
	require.NoError(t, err)
	require.NoError(t, x.l.Close(x.ctx))
	sb = x.storeBalance()
	require.Equal(t, dollar+25*cent, sb.Spent)
	require.Zero(t, sb.Held)
}

func TestLeasingGivesIdleLeasesBack(t *testing.T) {
	x := newLeased(t, credits.LeasingOptions{Size: dollar, FlushInterval: time.Hour, Idle: 2 * time.Hour})
	x.buy("acme", 100*dollar)
	x.reserve("a", cent)
	x.l.Tick()
	x.l.Tick()
	require.Equal(t, dollar, x.storeBalance().Held, "a lease with a request in flight stays")
	_, err := x.l.Settle(x.ctx, "a", cent, nil)
	require.NoError(t, err)
	x.l.Tick()
	require.Equal(t, dollar, x.storeBalance().Held, "not idle yet")
	x.l.Tick()
	x.l.Tick()
	sb := x.storeBalance()
	require.Zero(t, sb.Held, "an idle lease is given back")
	require.Equal(t, cent, sb.Spent)
	x.reserve("b", cent)
	require.Equal(t, dollar, x.storeBalance().Held, "a new lease")
}

func TestLeasingCrashLosesOnlyWhatWasNotWrittenBack(t *testing.T) {
	x := newLeased(t, credits.LeasingOptions{Size: dollar, TTL: 3 * time.Hour})
	x.buy("acme", 100*dollar)
	x.reserve("a", 10*cent)
	_, err := x.l.Settle(x.ctx, "a", 10*cent, usageRecord("a", x.clock.Now(), 10*cent))
	require.NoError(t, err)
	x.l.Tick()
	x.reserve("b", 10*cent)
	_, err = x.l.Settle(x.ctx, "b", 10*cent, usageRecord("b", x.clock.Now(), 10*cent))
	require.NoError(t, err)
	x.reserve("c", 10*cent) // in flight
	x.l.Abandon()

	x.clock.Advance(4 * time.Hour)
	res, err := x.store.Sweep(x.ctx)
	require.NoError(t, err)
	require.Equal(t, 1, res.HoldsReleased)
	sb := x.storeBalance()
	require.Zero(t, sb.Held)
	require.Equal(t, 10*cent, sb.Spent, "the flushed request is paid; b's charge is lost, never doubled")
	require.Equal(t, 100*dollar-10*cent, sb.Available)
	require.Len(t, x.records(), 1)
}

// flaky is a Memory whose Flush fails: before applying (down) or after
// (the answer is lost).
type flaky struct {
	*credits.Memory
	mu          sync.Mutex
	down, lost  int
	flushes     int
	lastRecords int
}

func (f *flaky) Flush(ctx context.Context, lf credits.LeaseFlush) (credits.FlushResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.flushes++
	if f.down > 0 {
		f.down--
		return credits.FlushResult{}, fmt.Errorf("%w: connection refused", credits.ErrUnavailable)
	}
	res, err := f.Memory.Flush(ctx, lf)
	f.lastRecords = len(lf.Records)
	if err == nil && f.lost > 0 {
		f.lost--
		return credits.FlushResult{}, fmt.Errorf("%w: connection reset", credits.ErrUnavailable)
	}
	return res, err
}

func TestLeasingRetriesFlushesWithoutChargingTwice(t *testing.T) {
	clock := creditstest.NewClock(creditstest.StartTime())
	f := &flaky{Memory: credits.NewMemory(credits.MemoryOptions{Now: clock.Now})}
	ctx := t.Context()
	_, err := f.Purchase(ctx, credits.Purchase{ID: "o1", Account: "acme", Amount: 100 * dollar})
	require.NoError(t, err)
	l := credits.NewLeasing(f, credits.LeasingOptions{Size: dollar, FlushInterval: time.Hour, Idle: 100 * time.Hour, Now: clock.Now, MaxPending: 4})
	defer l.Close(context.Background())
	settle := func(id string, cost credits.Amount) error {
		_, err := l.Reserve(ctx, credits.Reservation{ID: id, Account: "acme", Max: 10 * cent, Min: 1, TTL: time.Hour})
		require.NoError(t, err)
		_, err = l.Settle(ctx, id, cost, usageRecord(id, clock.Now(), cost))
		return err
	}
	require.NoError(t, settle("a", 10*cent))
	f.mu.Lock()
	f.lost = 1 // applied, answer lost
	f.mu.Unlock()
	l.Tick()
	require.NoError(t, settle("b", 7*cent))
	l.Tick() // retries the first batch (replayed), then writes b
	b, err := f.Balance(ctx, "acme")
	require.NoError(t, err)
	require.Equal(t, 17*cent, b.Spent)
	require.Equal(t, dollar, b.Held, "the lease is whole after a replay")

	// While the store is down settlements wait, up to MaxPending.
	f.mu.Lock()
	f.down = 100
	f.mu.Unlock()
	for i := range 4 {
		require.NoError(t, settle(fmt.Sprint("d", i), cent))
		l.Tick()
	}
	require.ErrorIs(t, settle("d4", cent), credits.ErrUnavailable)
	require.NoError(t, l.Release(ctx, "d4"))
	f.mu.Lock()
	f.down = 0
	f.mu.Unlock()
	l.Tick()
	b, err = f.Balance(ctx, "acme")
	require.NoError(t, err)
	require.Equal(t, 21*cent, b.Spent)
	require.NoError(t, settle("d5", cent))
	require.NoError(t, l.Close(ctx))
	b, err = f.Balance(ctx, "acme")
	require.NoError(t, err)
	require.Equal(t, credits.Balance{Account: "acme", Available: 100*dollar - 22*cent, Spent: 22 * cent, Purchased: 100 * dollar, Known: true}, withoutExpiry(b))
	p, err := f.Usage(ctx, credits.UsageQuery{})
	require.NoError(t, err)
	require.Len(t, p.Records, 7)
}

func TestLeasingReplicasNeverOverspend(t *testing.T) {
	m := credits.NewMemory(credits.MemoryOptions{})
	creditstest.LeasingReplicas(t, m, m, m)
}

// A replica holds its requests from a lease: the store sees one hold per
// account instead of one per request, and one write per flush.
func ExampleNewLeasing() {
	ctx := context.Background()
	store := credits.NewMemory(credits.MemoryOptions{}) // or a store/sqlite or store/postgres Store
	if _, err := store.Purchase(ctx, credits.Purchase{ID: "order-1", Account: "acme", Amount: 100 * credits.Dollar}); err != nil {
		panic(err)
	}
	l := credits.NewLeasing(store, credits.LeasingOptions{Size: credits.Dollar})
	// Give l to the gateway: gateway.WithMetering(l, gateway.MeteringOptions{Credits: true}).
	hold, err := l.Reserve(ctx, credits.Reservation{ID: "req-1", Account: "acme", Max: 10 * credits.Cent, Min: credits.Cent, TTL: time.Hour})
	if err != nil {
		panic(err)
	}
	b, _ := store.Balance(ctx, "acme")
	fmt.Printf("the request holds $%s; the store holds $%s for this replica\n", hold.Amount, b.Held)
	if _, err := l.Settle(ctx, "req-1", 1234, nil); err != nil {
		panic(err)
	}
	// Close writes back what was spent and gives the lease back.
	if err := l.Close(ctx); err != nil {
		panic(err)
	}
	b, _ = store.Balance(ctx, "acme")
	fmt.Printf("spent $%s, held $%s\n", b.Spent, b.Held)
	// Output:
	// the request holds $0.10; the store holds $1.00 for this replica
	// spent $0.001234, held $0.00
}

func TestLeasingSync(t *testing.T) {
	x := newLeased(t, credits.LeasingOptions{Size: dollar, Idle: 100 * time.Hour})
	x.buy("acme", 100*dollar)
	x.reserve("a", 10*cent)
	x.reserve("b", 10*cent)
	_, err := x.l.Settle(x.ctx, "a", 4*cent, usageRecord("a", x.clock.Now(), 4*cent))
	require.NoError(t, err)
	require.NoError(t, x.l.Sync(x.ctx))
	sb := x.storeBalance()
	require.Equal(t, 4*cent, sb.Spent, "what was settled is written back")
	require.Equal(t, dollar+10*cent, sb.Held, "the lease of a request in flight stays, grown back to its hold and Size")
	require.Len(t, x.records(), 1)
	_, err = x.l.Settle(x.ctx, "b", 5*cent, usageRecord("b", x.clock.Now(), 5*cent))
	require.NoError(t, err)
	require.NoError(t, x.l.Sync(x.ctx))
	sb = x.storeBalance()
	require.Equal(t, 9*cent, sb.Spent)
	require.Zero(t, sb.Held, "an unused lease is given back")
	x.reserve("c", 10*cent)
	require.Equal(t, dollar, x.storeBalance().Held, "the next request opens a lease")
}

func TestLeasingGrowsALowLeaseAtOnce(t *testing.T) {
	x := newLeased(t, credits.LeasingOptions{Size: dollar}) // no timed flush within the test
	x.buy("acme", 100*dollar)
	x.reserve("a", 80*cent)
	// 20¢ left: the flusher is woken to grow the lease back to 80¢ + $1.
	require.Eventually(t, func() bool { return x.storeBalance().Held == dollar+80*cent }, 5*time.Second, time.Millisecond)
	x.reserve("b", 90*cent) // from the grown lease, which is low again
	require.Eventually(t, func() bool { return x.storeBalance().Held == dollar+170*cent }, 5*time.Second, time.Millisecond)
}

func TestLeasingUncollectedIsExact(t *testing.T) {
	x := newLeased(t, credits.LeasingOptions{Size: dollar, MinBalance: 1, Idle: 100 * time.Hour})
	x.buy("acme", 5*dollar)
	x.reserve("a", 10*cent)
	x.reserve("b", 10*cent)
	// Everything else is held outside this replica, but 30¢.
	_, err := x.store.Reserve(x.ctx, credits.Reservation{ID: "outside", Account: "acme", Max: 5*dollar - dollar - 30*cent, Min: 1, TTL: time.Hour})
	require.NoError(t, err)
	// a costs $1: its 10¢, the lease's free 80¢, and 10¢ from the store.
	s, err := x.l.Settle(x.ctx, "a", dollar, usageRecord("a", x.clock.Now(), dollar))
	require.NoError(t, err)
	require.Equal(t, credits.Settlement{Spent: dollar}, s)
	// b costs $1 too: its 10¢ and the store's last 20¢; 70¢ cannot be
	// collected.
	s, err = x.l.Settle(x.ctx, "b", dollar, usageRecord("b", x.clock.Now(), dollar))
	require.NoError(t, err)
	require.Equal(t, credits.Settlement{Spent: 30 * cent, Uncollected: 70 * cent}, s)
	again, err := x.l.Settle(x.ctx, "b", dollar, nil)
	require.NoError(t, err)
	require.Equal(t, s, again, "a replay")
	require.NoError(t, x.l.Close(x.ctx))
	sb := x.storeBalance()
	require.Equal(t, dollar+30*cent, sb.Spent)
	require.Zero(t, sb.Available)
	var paid, uncollected credits.Amount
	for _, r := range x.records() {
		paid += r.Charge() - r.Uncollected
		uncollected += r.Uncollected
	}
	require.Equal(t, sb.Spent, paid, "the records say what the account paid")
	require.Equal(t, 70*cent, uncollected)
}
