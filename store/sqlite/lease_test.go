package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/llmgate/gateway/credits"
	"github.com/llmgate/gateway/credits/creditstest"
	"github.com/llmgate/gateway/internal/benchcpu"
	"github.com/llmgate/gateway/internal/reqid"
)

const dollar = credits.Dollar

func flush(t testing.TB, s *Store, f credits.LeaseFlush) credits.FlushResult {
	t.Helper()
	r, err := s.Flush(context.Background(), f)
	require.NoError(t, err)
	return r
}

// portions returns what the hold holds of each lot, as credit_hold_lots
// has it.
func portions(t *testing.T, s *Store, holdID string) map[string]credits.Amount {
	return amounts(t, s, `SELECT lot_id, amount FROM credit_hold_lots WHERE hold_id = ?`, holdID)
}

// remaining returns the lots' remainders as credit_lots has them (whether
// expired or not).
func remaining(t *testing.T, s *Store, account string) map[string]credits.Amount {
	return amounts(t, s, `SELECT id, remaining FROM credit_lots WHERE account = ?`, account)
}

// amounts returns the (ID, amount) rows of query by ID.
func amounts(t *testing.T, s *Store, query string, arg string) map[string]credits.Amount {
	t.Helper()
	rows, err := s.r.Query(query, arg)
	require.NoError(t, err)
	defer rows.Close()
	out := map[string]credits.Amount{}
	for rows.Next() {
		var (
			id  string
			amt int64
		)
		require.NoError(t, rows.Scan(&id, &amt))
		out[id] = credits.Amount(amt)
	}
	require.NoError(t, rows.Err())
	return out
}

// checkHolds checks that every open hold's amount is what its portions add
// up to, and every account's held total the sum of its open holds.
func checkHolds(t *testing.T, s *Store) {
	t.Helper()
	var bad int
	require.NoError(t, s.r.QueryRow(`SELECT COUNT(*) FROM credit_holds h
WHERE h.state = 'open' AND h.amount != (SELECT COALESCE(SUM(amount), 0) FROM credit_hold_lots WHERE hold_id = h.id)`).Scan(&bad))
	require.Zero(t, bad, "open holds whose portions do not add up to their amount")
	require.NoError(t, s.r.QueryRow(`SELECT COUNT(*) FROM credit_accounts a
WHERE a.held != (SELECT COALESCE(SUM(amount), 0) FROM credit_holds WHERE account = a.id AND state = 'open')`).Scan(&bad))
	require.Zero(t, bad, "accounts whose held total is not their open holds'")
}

// TestFlushThenEnd checks that Settle, Release and Sweep end a lease whose
// amount and portions flushes changed.
func TestFlushThenEnd(t *testing.T) {
	ctx := context.Background()
	ledgerStores(t, func(t *testing.T, s *Store, clock *creditstest.Clock) {
		// a expires a day before b.
		buy(t, s, "a", "acct", 5*dollar)
		clock.Advance(24 * time.Hour)
		buy(t, s, "b", "acct", 5*dollar)
		reserve(t, s, "lease", "acct", 3*dollar, 3*dollar)
		require.Equal(t, map[string]credits.Amount{"a": 3 * dollar}, portions(t, s, "lease"))

		r := flush(t, s, credits.LeaseFlush{HoldID: "lease", Seq: 1, Spent: dollar})
		require.Equal(t, 2*dollar, r.Hold.Amount)
		require.Equal(t, map[string]credits.Amount{"a": 2 * dollar}, portions(t, s, "lease"))
		// Growing adds to the portion of a lot the hold has, then takes
		// the next lot.
		r = flush(t, s, credits.LeaseFlush{HoldID: "lease", Seq: 2, Grow: 4 * dollar})
		require.Equal(t, 4*dollar, r.Grown)
		require.Equal(t, 6*dollar, r.Hold.Amount)
		require.Equal(t, map[string]credits.Amount{"a": 4 * dollar, "b": 2 * dollar}, portions(t, s, "lease"))
		require.Equal(t, map[string]credits.Amount{"a": 0, "b": 3 * dollar}, remaining(t, s, "acct"))
		checkHolds(t, s)
		// A portion spent to nothing goes.
		r = flush(t, s, credits.LeaseFlush{HoldID: "lease", Seq: 3, Spent: 4_500_000})
		require.Equal(t, 1_500_000*credits.Microdollar, r.Hold.Amount)
		require.Equal(t, map[string]credits.Amount{"b": 1_500_000}, portions(t, s, "lease"))
		checkHolds(t, s)

		// Settle spends from what is left of the lease and gives the rest
		// back to b.
		st, err := s.Settle(ctx, "lease", dollar, nil)
		require.NoError(t, err)
		require.Equal(t, credits.Settlement{Spent: dollar, Released: 500_000}, st)
		require.Equal(t, map[string]credits.Amount{"a": 0, "b": 3_500_000}, remaining(t, s, "acct"))
		b := balance(t, s, "acct")
		require.Equal(t, 3_500_000*credits.Microdollar, b.Available)
		require.Equal(t, 6_500_000*credits.Microdollar, b.Spent)
		require.Zero(t, b.Held)
		checkHolds(t, s)

		// Release gives back what a grown lease holds, to each lot.
		reserve(t, s, "lease-2", "acct", dollar, dollar)
		flush(t, s, credits.LeaseFlush{HoldID: "lease-2", Seq: 1, Spent: 200_000, Grow: 2 * dollar})
		require.Equal(t, map[string]credits.Amount{"b": 2_800_000}, portions(t, s, "lease-2"))
		require.NoError(t, s.Release(ctx, "lease-2"))
		require.Equal(t, map[string]credits.Amount{"a": 0, "b": 3_300_000}, remaining(t, s, "acct"))
		require.Zero(t, balance(t, s, "acct").Held)

		// A lease spent to nothing stays open; Settle then pays from the
		// available money, Release gives nothing back.
		reserve(t, s, "lease-3", "acct", dollar, dollar)
		r = flush(t, s, credits.LeaseFlush{HoldID: "lease-3", Seq: 1, Spent: dollar})
		require.Zero(t, r.Hold.Amount)
		require.Empty(t, portions(t, s, "lease-3"))
		checkHolds(t, s)
		st, err = s.Settle(ctx, "lease-3", 300_000, nil)
		require.NoError(t, err)
		require.Equal(t, credits.Settlement{Spent: 300_000}, st)
		reserve(t, s, "lease-4", "acct", dollar, dollar)
		flush(t, s, credits.LeaseFlush{HoldID: "lease-4", Seq: 1, Spent: dollar})
		require.NoError(t, s.Release(ctx, "lease-4"))
		b = balance(t, s, "acct")
		require.Equal(t, 1_000_000*credits.Microdollar, b.Available)
		require.Zero(t, b.Held)

		// Sweep releases what a grown lease holds.
		reserve(t, s, "lease-5", "acct", 100_000, 100_000)
		flush(t, s, credits.LeaseFlush{HoldID: "lease-5", Seq: 1, Grow: 500_000})
		clock.Advance(time.Hour)
		res, err := s.Sweep(ctx)
		require.NoError(t, err)
		require.Equal(t, credits.SweepResult{HoldsReleased: 1, Released: 600_000}, res)
		b = balance(t, s, "acct")
		require.Equal(t, dollar, b.Available)
		require.Zero(t, b.Held)
		checkHolds(t, s)
	})
}

// TestFlushRecordsTwice checks records repeated within one flush: the
// first is kept, a repeat with the same content is a no-op, with other
// content a conflict.
func TestFlushRecordsTwice(t *testing.T) {
	ledgerStores(t, func(t *testing.T, s *Store, clock *creditstest.Clock) {
		buy(t, s, "p", "acct", 10*dollar)
		reserve(t, s, "lease", "acct", dollar, dollar)
		r1, r2 := testRecord("r1", clock.Now()), testRecord("r2", clock.Now())
		other := testRecord("r2", clock.Now())
		other.Cost++
		r := flush(t, s, credits.LeaseFlush{HoldID: "lease", Seq: 1, Spent: 3 * r1.Charge(),
			Records: []*credits.UsageRecord{r1, r1, r2, other}})
		require.Equal(t, []string{"r2"}, r.Conflicts)
		require.Equal(t, 3*r1.Charge(), r.Spent)
		page, err := s.Usage(context.Background(), credits.UsageQuery{})
		require.NoError(t, err)
		require.Len(t, page.Records, 2)
		for _, got := range page.Records {
			require.Equal(t, r1.Cost, got.Cost)
			require.True(t, got.Paid)
		}
	})
}

// TestMigrateLeases upgrades a database at version 2 with holds in it:
// credit_holds is rebuilt with flush_seq and amounts that may be 0, its
// rows, index and the foreign key that references it kept.
func TestMigrateLeases(t *testing.T) {
	ctx := context.Background()
	embedded, err := loadMigrations(migrationFiles, "migrations")
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(embedded), 3)
	require.Equal(t, "0003_leases", embedded[2].Name)

	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	us := now.UnixMicro()
	path := filepath.Join(t.TempDir(), "llmgate.db")
	db, err := sql.Open("sqlite", path+"?_pragma=foreign_keys(1)")
	require.NoError(t, err)
	require.NoError(t, migrate(ctx, db, embedded[:2], 0))
	life := credits.LotLifetime.Microseconds()
	hour := time.Hour.Microseconds()
	for _, q := range []struct {
		sql  string
		args []any
	}{
		// $10 bought; "open" holds $3 of it, "settled" spent $1.
		{`INSERT INTO credit_accounts (id, purchased, held, spent, created_at) VALUES ('acct', ?, ?, ?, ?)`,
			[]any{10 * dollar, 3 * dollar, dollar, us}},
		{`INSERT INTO credit_lots (id, account, amount, remaining, purchased_at, expires_at) VALUES ('p1', 'acct', ?, ?, ?, ?)`,
			[]any{10 * dollar, 6 * dollar, us, us + life}},
		{`INSERT INTO credit_holds (id, account, amount, state, created_at, expires_at) VALUES ('open', 'acct', ?, 'open', ?, ?)`,
			[]any{3 * dollar, us, us + hour}},
		{`INSERT INTO credit_holds (id, account, amount, state, created_at, expires_at, ended_at, spent, released)
VALUES ('settled', 'acct', ?, 'settled', ?, ?, ?, ?, ?)`, []any{2 * dollar, us, us + hour, us, dollar, dollar}},
		{`INSERT INTO credit_hold_lots (hold_id, lot_id, amount) VALUES ('open', 'p1', ?), ('settled', 'p1', ?)`,
			[]any{3 * dollar, 2 * dollar}},
		{`INSERT INTO credit_transactions (account, kind, amount, lot_id, at) VALUES ('acct', 'purchase', ?, 'p1', ?)`,
			[]any{10 * dollar, us}},
		{`INSERT INTO credit_transactions (account, kind, amount, hold_id, at) VALUES ('acct', 'spend', ?, 'settled', ?)`,
			[]any{dollar, us}},
	} {
		_, err := db.Exec(q.sql, q.args...)
		require.NoError(t, err, q.sql)
	}
	// Version 2 refuses a hold of nothing.
	_, err = db.Exec(`UPDATE credit_holds SET amount = 0 WHERE id = 'open'`)
	require.ErrorContains(t, err, "CHECK")
	require.NoError(t, db.Close())

	clock := creditstest.NewClock(now.Add(time.Minute))
	s, err := Open(ctx, path, Options{Now: clock.Now})
	require.NoError(t, err)
	defer s.Close()
	require.Equal(t, []int{1, 2, 3}, versions(t, s.r))

	// The rows are kept, with flush_seq 0.
	var (
		hs    []holdRow
		count int
	)
	rows, err := s.r.Query(`SELECT ` + holdColumns + ` FROM credit_holds ORDER BY id`)
	require.NoError(t, err)
	for rows.Next() {
		var h holdRow
		require.NoError(t, rows.Scan(h.dest()...))
		hs = append(hs, h)
	}
	require.NoError(t, rows.Err())
	require.NoError(t, rows.Close())
	require.Equal(t, []holdRow{
		{id: "open", account: "acct", state: holdOpen, amount: int64(3 * dollar), created: us, expires: us + hour},
		{id: "settled", account: "acct", state: holdSettled, amount: int64(2 * dollar), created: us, expires: us + hour,
			ending: us, spent: int64(dollar), released: int64(dollar)},
	}, hs)
	require.NoError(t, s.r.QueryRow(`SELECT COUNT(*) FROM credit_hold_lots`).Scan(&count))
	require.Equal(t, 2, count)
	require.Equal(t, map[string]credits.Amount{"p1": 3 * dollar}, portions(t, s, "open"))

	// The schema: no table left behind, the index back, the foreign keys
	// whole and pointing at the new table, the file sound.
	require.NoError(t, s.r.QueryRow(`SELECT COUNT(*) FROM sqlite_schema WHERE name LIKE '%_v3'`).Scan(&count))
	require.Zero(t, count)
	var idx string
	require.NoError(t, s.r.QueryRow(`SELECT sql FROM sqlite_schema WHERE type = 'index' AND name = 'credit_holds_open'`).Scan(&idx))
	require.Contains(t, idx, "ON credit_holds")
	var refs []string
	rows, err = s.r.Query(`SELECT "table" FROM pragma_foreign_key_list('credit_hold_lots') ORDER BY "table"`)
	require.NoError(t, err)
	for rows.Next() {
		var ref string
		require.NoError(t, rows.Scan(&ref))
		refs = append(refs, ref)
	}
	require.NoError(t, rows.Close())
	require.Equal(t, []string{"credit_holds", "credit_lots"}, refs)
	rows, err = s.r.Query(`PRAGMA foreign_key_check`)
	require.NoError(t, err)
	require.False(t, rows.Next(), "foreign key violations")
	require.NoError(t, rows.Close())
	var ok string
	require.NoError(t, s.r.QueryRow(`PRAGMA integrity_check`).Scan(&ok))
	require.Equal(t, "ok", ok)
	_, err = s.w.Exec(`INSERT INTO credit_hold_lots (hold_id, lot_id, amount) VALUES ('nope', 'p1', 1)`)
	require.ErrorContains(t, err, "FOREIGN KEY")

	// The migrated hold is a lease: spent to nothing, grown, settled.
	b := balance(t, s, "acct")
	require.Equal(t, credits.Balance{Account: "acct", Available: 6 * dollar, Held: 3 * dollar, Spent: dollar,
		Purchased: 10 * dollar, NextExpiry: time.UnixMicro(us + life).UTC(), Known: true}, b)
	r := flush(t, s, credits.LeaseFlush{HoldID: "open", Seq: 1, Spent: 3 * dollar})
	require.Zero(t, r.Hold.Amount)
	r = flush(t, s, credits.LeaseFlush{HoldID: "open", Seq: 2, Grow: dollar})
	require.Equal(t, dollar, r.Hold.Amount)
	st, err := s.Settle(ctx, "open", 500_000, nil)
	require.NoError(t, err)
	require.Equal(t, credits.Settlement{Spent: 500_000, Released: 500_000}, st)
	b = balance(t, s, "acct")
	require.Equal(t, 5_500_000*credits.Microdollar, b.Available)
	require.Equal(t, 4_500_000*credits.Microdollar, b.Spent)
	require.Zero(t, b.Held)
	checkHolds(t, s)
}

// BenchmarkFlush measures Flush on a file: one lease spent from and grown
// by flushes of 100 (or 1000) usage records each, one after the other,
// records like the gateway's (gatewayRecord). Beside ns/op (per flush) it
// reports records/s and cpu-ns/record, the CPU time (user and system, all
// threads) the process spent in Flush per record (building the records is
// not counted), to set against BenchmarkReserveSettle's cpu-ns/op (a
// Reserve and a Settle with its record).
func BenchmarkFlush(b *testing.B) {
	for _, n := range []int{100, 1000} {
		b.Run(fmt.Sprint("records-", n), func(b *testing.B) {
			ctx := context.Background()
			s, err := Open(ctx, filepath.Join(b.TempDir(), "llmgate.db"), Options{})
			require.NoError(b, err)
			defer s.Close()
			for i := range 10 {
				buy(b, s, fmt.Sprint("p", i), "acct", credits.MaxPurchase)
			}
			if _, err := s.Reserve(ctx, credits.Reservation{ID: "lease", Account: "acct", Max: 10 * dollar, Min: dollar, TTL: time.Hour}); err != nil {
				b.Fatal(err)
			}
			recs := make([]*credits.UsageRecord, n)
			b.ReportAllocs()
			b.ResetTimer()
			var cpu time.Duration
			for i := range b.N {
				var spent credits.Amount
				for j := range recs {
					recs[j] = gatewayRecord(j)
					spent += recs[j].Charge()
				}
				before := benchcpu.Process()
				if _, err := s.Flush(ctx, credits.LeaseFlush{HoldID: "lease", Seq: int64(i + 1), Spent: spent,
					Records: recs, Grow: spent, TTL: time.Hour}); err != nil {
					b.Fatal(err)
				}
				cpu += benchcpu.Process() - before
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "records/s")
			if cpu > 0 {
				b.ReportMetric(float64(cpu)/float64(b.N*n), "cpu-ns/record")
			}
		})
	}
}

// gatewayRecord returns a usage record like the gateway's: its ID a
// request ID, one served attempt, times in the local zone with a monotonic
// reading.
func gatewayRecord(i int) *credits.UsageRecord {
	id := reqid.New()
	start := time.Now().Add(-800 * time.Millisecond)
	return &credits.UsageRecord{ID: id, RequestID: id, KeyID: "key_01jq3v6m2x8k", Account: "acct",
		Provider: "openai", Model: "gpt-4o-mini", KeySource: credits.SourceConfigured,
		Reported: credits.Tokens{Input: 812 + int64(i%97), Output: 164, CacheRead: 256}, ReportedKnown: true,
		Estimated: credits.Tokens{Input: 805, Output: 160}, Cost: credits.Amount(223 + i%13), Fee: 11,
		Status: 200, Stream: i%2 == 0, Start: start, End: start.Add(780 * time.Millisecond),
		Attempts: []credits.AttemptRecord{{Provider: "openai", Model: "gpt-4o-mini", KeyID: "pk_openai_1",
			KeySource: credits.SourceConfigured, Status: 200, Served: true, Start: start.Add(200 * time.Microsecond),
			Duration: 779 * time.Millisecond}},
	}
}
