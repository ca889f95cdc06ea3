package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
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

// flush runs f, which must succeed.
func flush(t testing.TB, s *postgres.Store, f credits.LeaseFlush) credits.FlushResult {
	t.Helper()
	r, err := s.Flush(context.Background(), f)
	require.NoError(t, err)
	return r
}

// TestFlushEmptyLease spends leases down to nothing: they stay open
// without allocations, and a Sweep, a Settle and a Release end them as
// any hold.
func TestFlushEmptyLease(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.NewDatabase(t)
	c := creditstest.NewClock(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	s := open(t, dsn, postgres.Options{Now: c.Now})
	buy(t, s, "p1", "acme", 10*dollar)
	for _, id := range []string{"lease-1", "lease-2", "lease-3"} {
		reserve(t, s, id, "acme", dollar, dollar)
		r := flush(t, s, credits.LeaseFlush{HoldID: id, Seq: 1, Spent: dollar})
		require.Zero(t, r.Hold.Amount)
		require.Equal(t, dollar, r.Spent)
	}
	require.Zero(t, queryInt(t, dsn, `SELECT count(*) FROM llmgate.credit_hold_allocations`), "allocations spent to nothing")
	require.Equal(t, 3, queryInt(t, dsn, `SELECT count(*) FROM llmgate.credit_holds WHERE state = 'open' AND amount = 0`))

	// An empty lease grows again, from nothing.
	r := flush(t, s, credits.LeaseFlush{HoldID: "lease-1", Seq: 2, Grow: 2 * dollar})
	require.Equal(t, 2*dollar, r.Hold.Amount)
	r = flush(t, s, credits.LeaseFlush{HoldID: "lease-1", Seq: 3, Spent: 2 * dollar})
	require.Zero(t, r.Hold.Amount)

	// Settled, an empty lease spends from the available money.
	st, err := s.Settle(ctx, "lease-2", dollar, nil)
	require.NoError(t, err)
	require.Equal(t, credits.Settlement{Spent: dollar}, st)
	require.NoError(t, s.Release(ctx, "lease-3"))
	b := balance(t, s, "acme")
	require.Equal(t, credits.Balance{Account: "acme", Available: 4 * dollar, Spent: 6 * dollar, Purchased: 10 * dollar,
		NextExpiry: b.NextExpiry, Known: true}, b)

	// Past its expiry, a Sweep releases it (it holds nothing), and a
	// flush then finds it swept.
	c.Advance(2 * time.Minute)
	res, err := s.Sweep(ctx)
	require.NoError(t, err)
	require.Equal(t, credits.SweepResult{HoldsReleased: 1}, res)
	r = flush(t, s, credits.LeaseFlush{HoldID: "lease-1", Seq: 4, Spent: dollar, Grow: dollar, TTL: time.Hour})
	require.True(t, r.Swept)
	require.Equal(t, dollar, r.Spent)
	require.Zero(t, r.Grown)
	require.Zero(t, r.Hold.Amount)
	require.Equal(t, 4, queryInt(t, dsn, `SELECT flush_seq FROM llmgate.credit_holds WHERE id = 'lease-1' AND state = 'expired'`),
		"a swept lease keeps its Seq")
	b = balance(t, s, "acme")
	require.Equal(t, credits.Balance{Account: "acme", Available: 3 * dollar, Spent: 7 * dollar, Purchased: 10 * dollar,
		NextExpiry: b.NextExpiry, Known: true}, b)
}

// TestFlushRecordIDs keeps records whose IDs come twice in one flush, or
// were kept before by Settle and Record: the same content is a no-op,
// other content a conflict, listed in the records' order.
func TestFlushRecordIDs(t *testing.T) {
	ctx := context.Background()
	s, c := newLedger(t)
	buy(t, s, "p1", "acme", 100*dollar)
	reserve(t, s, "h1", "acme", dollar, dollar)
	start := c.Now().Add(123456789 * time.Nanosecond) // stored to the microsecond
	settled := usageRecord(1, "", "key1", start)
	_, err := s.Settle(ctx, "h1", settled.Charge(), settled)
	require.NoError(t, err)
	recorded := usageRecord(2, "", "key1", start)
	require.NoError(t, s.Record(ctx, recorded))
	h, err := s.Reserve(ctx, credits.Reservation{ID: "lease", Account: "acme", Min: 10 * dollar, Max: 10 * dollar, TTL: time.Hour})
	require.NoError(t, err)

	// Records in an order that is not their IDs': r998 ... r3, IDs
	// twice, and the records kept before.
	var recs []*credits.UsageRecord
	var spent credits.Amount
	var want []string
	for n := 998; n >= 3; n-- {
		r := usageRecord(n, "", "key1", start.Add(time.Duration(n)*time.Millisecond))
		recs = append(recs, r)
		spent += r.Charge()
		switch n {
		case 500: // the same again: a no-op
			recs = append(recs, usageRecord(n, "acme", "key1", r.Start))
		case 400: // other content: a conflict
			other := usageRecord(n, "acme", "key1", r.Start)
			other.Model = "other"
			recs = append(recs, other)
			want = append(want, other.ID)
		}
	}
	// Kept by Settle, paid, with the same content; kept by Record,
	// unpaid: a conflict.
	recs = append(recs, settled, recorded)
	want = append(want, recorded.ID)
	require.Len(t, recs, credits.MaxFlushRecords)
	r := flush(t, s, credits.LeaseFlush{HoldID: "lease", Seq: 1, Spent: spent, Records: recs})
	require.Equal(t, want, r.Conflicts)
	require.Equal(t, h.Amount-spent, r.Hold.Amount)

	u, err := s.Usage(ctx, credits.UsageQuery{Account: "acme", ListOptions: credits.ListOptions{Limit: credits.MaxListLimit}})
	require.NoError(t, err)
	require.Len(t, u.Records, 997, "r1 and r3 to r998 (r2 is no account's), each once")
	byID := map[string]credits.UsageRecord{}
	for _, rec := range u.Records {
		byID[rec.ID] = rec
	}
	wantRec := func(n int) credits.UsageRecord {
		w := *usageRecord(n, "acme", "key1", start.Add(time.Duration(n)*time.Millisecond))
		w.Start, w.End = w.Start.Truncate(time.Microsecond), w.End.Truncate(time.Microsecond)
		for i := range w.Attempts {
			w.Attempts[i].Start = w.Attempts[i].Start.Truncate(time.Microsecond)
		}
		w.Paid = true
		return w
	}
	require.Equal(t, wantRec(400), byID["r400"], "the first of an ID is kept")
	require.Equal(t, wantRec(3), byID["r3"])
	require.False(t, byID["r2"].Paid, "Record's is kept")
	require.Equal(t, "gpt-4o", byID["r400"].Model)

	// A record without End or attempts.
	bare := &credits.UsageRecord{ID: "bare", Start: start}
	r = flush(t, s, credits.LeaseFlush{HoldID: "lease", Seq: 2, Records: []*credits.UsageRecord{bare}})
	require.Empty(t, r.Conflicts)
	u, err = s.Usage(ctx, credits.UsageQuery{From: start.Truncate(time.Microsecond), To: start.Add(time.Microsecond)})
	require.NoError(t, err)
	require.Equal(t, []string{"r2", "r1", "bare"}, []string{u.Records[0].ID, u.Records[1].ID, u.Records[2].ID})
	require.Equal(t, credits.UsageRecord{ID: "bare", Account: "acme", Paid: true, Start: start.Truncate(time.Microsecond)},
		u.Records[2])
}

// TestFlushReplicas races replicas (Stores with pools of their own on one
// database) that each spend a lease of one account and hold and settle
// for single requests on it, with Sweeps and refused flushes among them:
// each replica's calls share transactions in its account's lane, and
// nothing is held or spent beyond what the account has.
func TestFlushReplicas(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.NewDatabase(t)
	const replicas, rounds, requests = 3, 20, 24
	stores := make([]*postgres.Store, replicas)
	for i := range stores {
		stores[i] = open(t, dsn, postgres.Options{})
	}
	buy(t, stores[0], "p1", "acme", 10*dollar)
	buy(t, stores[0], "p2", "beta", 10*dollar)

	var (
		spent   atomic.Int64
		records atomic.Int64
		leasing atomic.Int64 // leases flushing
		wg      sync.WaitGroup
	)
	leasing.Store(replicas)
	start := make(chan struct{})
	for i, s := range stores {
		wg.Go(func() { // the lease
			defer leasing.Add(-1)
			<-start
			id := fmt.Sprint("lease-", i)
			h, err := s.Reserve(ctx, credits.Reservation{ID: id, Account: "acme", Max: dollar, Min: 1, TTL: time.Hour})
			if err != nil {
				if !errors.Is(err, credits.ErrInsufficientCredits) {
					t.Errorf("reserve %s: %v", id, err)
				}
				return
			}
			have := h.Amount
			for seq := int64(1); seq <= rounds; seq++ {
				var recs []*credits.UsageRecord
				for j := range 10 {
					recs = append(recs, usageRecord(int(seq)*100+j+i*10000, "", "k", time.Now()))
				}
				use := min(have, 30*credits.Cent)
				r, err := s.Flush(ctx, credits.LeaseFlush{HoldID: id, Seq: seq, Spent: use, Grow: 20 * credits.Cent,
					Records: recs, TTL: time.Hour})
				if err != nil {
					t.Errorf("flush %s %d: %v", id, seq, err)
					return
				}
				if r.Spent != use || r.Hold.Amount != have-use+r.Grown || len(r.Conflicts) > 0 {
					t.Errorf("flush %s %d: %+v", id, seq, r)
				}
				have = r.Hold.Amount
				spent.Add(int64(r.Spent))
				records.Add(int64(len(recs)))
				// A refused flush, in the same lane: it changes
				// nothing.
				beta := usageRecord(-i, "beta", "k", time.Now())
				if _, err := s.Flush(ctx, credits.LeaseFlush{HoldID: id, Seq: seq + 1, Spent: dollar,
					Records: []*credits.UsageRecord{beta}}); !errors.Is(err, credits.ErrInvalid) {
					t.Errorf("flush of beta's record: %v", err)
				}
			}
			if err := s.Release(ctx, id); err != nil {
				t.Errorf("release %s: %v", id, err)
			}
		})
		for w := range requests {
			wg.Go(func() { // requests, as long as the leases flush
				<-start
				for n := 0; leasing.Load() > 0; n++ {
					id := fmt.Sprintf("h-%d-%d-%d", i, w, n)
					h, err := s.Reserve(ctx, credits.Reservation{ID: id, Account: "acme", Max: 10 * credits.Cent, Min: 1, TTL: time.Hour})
					if err != nil {
						if !errors.Is(err, credits.ErrInsufficientCredits) {
							t.Errorf("reserve %s: %v", id, err)
						}
						continue
					}
					st, err := s.Settle(ctx, id, min(h.Amount, 1000), nil)
					if err != nil {
						t.Errorf("settle %s: %v", id, err)
						return
					}
					spent.Add(int64(st.Spent))
				}
			})
		}
		wg.Go(func() {
			<-start
			if _, err := s.Sweep(ctx); err != nil {
				t.Errorf("sweep: %v", err)
			}
		})
	}
	close(start)
	wg.Wait()
	b := balance(t, stores[0], "acme")
	require.Equal(t, credits.Amount(spent.Load()), b.Spent)
	require.Zero(t, b.Held)
	require.Equal(t, 10*dollar, b.Available+b.Spent)
	require.Zero(t, queryInt(t, dsn, `SELECT count(*) FROM llmgate.credit_hold_allocations`), "ended holds keep no allocations")
	require.Equal(t, int(records.Load()), queryInt(t, dsn, `SELECT count(*) FROM llmgate.usage_records WHERE paid AND account = 'acme'`))
	require.Equal(t, 10*dollar, balance(t, stores[1], "beta").Available)
}

// BenchmarkFlush measures a lease's flushes on one account: each spends
// for its records and grows the lease back, as a replica does every
// second. Compare records/s with BenchmarkReserveSettle's holds/s: each
// record stands for a request that would otherwise have held and
// settled, and written its record with the Settle.
func BenchmarkFlush(b *testing.B) {
	ctx := context.Background()
	dsn := withPoolSize(pgtest.NewDatabase(b), 16)
	s := open(b, dsn, postgres.Options{})
	const accounts = 8
	for i := range accounts {
		a := fmt.Sprint("acct-", i)
		buy(b, s, "p-"+a, a, credits.MaxPurchase)
	}
	var ids, leases atomic.Int64
	start := time.Now()
	for _, bc := range []struct {
		name                          string
		records, goroutines, accounts int
	}{
		{"100 records/one account/1", 100, 1, 1},
		{"1000 records/one account/1", 1000, 1, 1},
		{"100 records/8 accounts/8", 100, 8, accounts},
	} {
		b.Run(bc.name, func(b *testing.B) {
			procs := runtime.GOMAXPROCS(0)
			b.SetParallelism(max(1, bc.goroutines/procs))
			b.ReportAllocs()
			// loop flushes a lease of its own, as a replica does, until
			// next says to stop.
			loop := func(next func() bool) {
				n := leases.Add(1)
				id := fmt.Sprint("lease-", n)
				if _, err := s.Reserve(ctx, credits.Reservation{ID: id, Account: fmt.Sprint("acct-", n%int64(bc.accounts)),
					Max: 100 * dollar, Min: 1, TTL: time.Hour}); err != nil {
					b.Error(err)
					return
				}
				recs := make([]*credits.UsageRecord, bc.records)
				for seq := int64(1); next(); seq++ {
					var spent credits.Amount
					for i := range recs {
						recs[i] = usageRecord(int(ids.Add(1)), "", "key1", start)
						spent += recs[i].Charge()
					}
					r, err := s.Flush(ctx, credits.LeaseFlush{HoldID: id, Seq: seq, Spent: spent, Grow: spent,
						TTL: time.Hour, Records: recs})
					if err != nil || r.Replayed || len(r.Conflicts) > 0 {
						b.Error(r, err)
						return
					}
				}
			}
			if bc.goroutines == 1 { // a lone replica: its latency
				i := 0
				loop(func() bool { i++; return i <= b.N })
			} else {
				b.RunParallel(func(pb *testing.PB) { loop(pb.Next) })
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "flushes/s")
			b.ReportMetric(float64(b.N*bc.records)/b.Elapsed().Seconds(), "records/s")
		})
	}
}

// TestLeasingReplicas runs three credits.Leasing replicas, each on its own
// Store (its own pool) of one database (creditstest.LeasingReplicas).
func TestLeasingReplicas(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	var stores []creditstest.LeasingStore
	for range 3 {
		stores = append(stores, open(t, dsn, postgres.Options{}))
	}
	creditstest.LeasingReplicas(t, stores...)
}
