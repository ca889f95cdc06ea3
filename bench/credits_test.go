package main

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/llmgate/gateway/bench/internal/benchledger"
	"github.com/llmgate/gateway/credits"
)

// ledgerServer serves benchledger.Handler over a funded credits.Memory
// that has settled paid requests and recorded unpaid ones, and returns its
// host and the ledger.
func ledgerServer(t *testing.T, paid, unpaid int) (string, *credits.Memory) {
	t.Helper()
	m := credits.NewMemory(credits.MemoryOptions{})
	require.NoError(t, benchledger.Fund(context.Background(), m))
	for i := range paid {
		settleOne(t, m, "paid-"+string(rune('a'+i)))
	}
	for i := range unpaid {
		id := "unpaid-" + string(rune('a'+i))
		require.NoError(t, m.Record(context.Background(), &credits.UsageRecord{ID: id, RequestID: id, Account: benchledger.Account,
			Cost: 10, KeySource: credits.SourceClient, Status: http.StatusOK, Start: time.Now(), End: time.Now()}))
	}
	srv := httptest.NewServer(benchledger.Handler(m, nil, http.NotFoundHandler()))
	t.Cleanup(srv.Close)
	return hostOf(srv.URL), m
}

// settleOne holds and settles request id for 100 µ$ in m, with its usage
// record.
func settleOne(t *testing.T, m *credits.Memory, id string) {
	t.Helper()
	ctx := context.Background()
	h, err := m.Reserve(ctx, credits.Reservation{ID: id, Account: benchledger.Account, Max: credits.Cent, Min: 1, TTL: time.Minute})
	require.NoError(t, err)
	_, err = m.Settle(ctx, h.ID, 100, &credits.UsageRecord{ID: id, RequestID: id, Account: benchledger.Account, Cost: 100,
		KeySource: credits.SourceConfigured, Status: http.StatusOK, Start: time.Now(), End: time.Now()})
	require.NoError(t, err)
}

func TestChargeCheck(t *testing.T) {
	for _, tc := range []struct {
		name         string
		paid, unpaid int
		want         string // "" for no error
	}{
		{"charged", 3, 0, ""},
		{"nothing metered", 0, 0, "the path does not charge"},
		{"recorded, not paid", 0, 2, "the path does not charge"},
		{"some not paid", 2, 1, "not every request paid with credits"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			host, _ := ledgerServer(t, tc.paid, tc.unpaid)
			err := chargeCheck(context.Background(), host)
			if tc.want == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tc.want)
		})
	}
	t.Run("no ledger", func(t *testing.T) {
		srv := httptest.NewServer(http.NotFoundHandler())
		defer srv.Close()
		require.ErrorContains(t, chargeCheck(context.Background(), hostOf(srv.URL)), "reading the ledger: status 404")
	})
}

func TestSettled(t *testing.T) {
	host, m := ledgerServer(t, 1, 0)
	// The second request settles while settled waits for it.
	go func() {
		time.Sleep(150 * time.Millisecond)
		settleOne(t, m, "late")
	}()
	snap, err := settled(context.Background(), host, 2)
	require.NoError(t, err)
	require.EqualValues(t, 2, snap.Records)
	require.EqualValues(t, 200, snap.Spent)
}

func TestLedgerCheckProblem(t *testing.T) {
	ok := benchledger.Snapshot{Records: 100, Spent: 1000, Cost: 900, Fee: 100}
	for _, tc := range []struct {
		name   string
		c      ledgerCheck
		failed int
		want   string // "" for none
	}{
		{"every request charged", ledgerCheck{sent: 100, snap: ok}, 0, ""},
		{"failed requests may leave no record", ledgerCheck{sent: 103, snap: ok}, 3, ""},
		{"missing records", ledgerCheck{sent: 103, snap: ok}, 2, "100 usage records for 103 requests"},
		{"more records than requests", ledgerCheck{sent: 99, snap: ok}, 5, "100 usage records for 99 requests"},
		{"nothing spent", ledgerCheck{sent: 0, snap: benchledger.Snapshot{}}, 0, "nothing was spent"},
		{"open holds", ledgerCheck{sent: 100, snap: benchledger.Snapshot{Records: 100, Spent: 1000, Cost: 1000, Held: 50}}, 0, "$0.00005 still held"},
		{"unpaid records", ledgerCheck{sent: 100, snap: benchledger.Snapshot{Records: 100, Spent: 1000, Cost: 1200}}, 0, "not every request paid"},
		{"unreadable", ledgerCheck{sent: 100, snap: ok, err: errors.New("reading the ledger: EOF")}, 0, "reading the ledger: EOF"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.c.problem(tc.failed)
			if tc.want == "" {
				require.Empty(t, got)
				return
			}
			require.Contains(t, got, tc.want)
		})
	}
}

func TestAddedRatio(t *testing.T) {
	first := func(ms ...float64) []*window {
		var ws []*window
		for _, v := range ms {
			ws = append(ws, win(10, 0, time.Duration(v*float64(time.Millisecond))))
		}
		return ws
	}
	m := map[string][]*window{
		pathDirect:  first(1, 1, 1),
		pathPlain:   first(2, 1, 3), // adds 1, nothing, 2
		pathCredits: first(2.5, 5, 4),
	}
	require.Equal(t, []float64{1.5, 1.5}, addedRatio(m, pathCredits), "the round where the ReverseProxy added nothing is skipped")
	require.Empty(t, addedRatio(m, creditsPath(ledgerSQLite)))
}

func TestRenderCredits(t *testing.T) {
	cfg, err := parseFlags([]string{"-quick", "-credits", "-credits-ledgers", "memory,sqlite", "-rounds", "1"})
	require.NoError(t, err)
	rep := newReport(cfg, "Pinned.", true)
	sqlitePath := creditsPath(ledgerSQLite)
	require.Equal(t, []string{pathDirect, pathPlain, pathLLMGate, pathKeys, pathCredits, sqlitePath}, rep.paths, "-credits implies -keys")
	cpu := map[string]time.Duration{pathDirect: 0, pathPlain: 100, pathLLMGate: 100, pathKeys: 104, pathCredits: 120, sqlitePath: 500}
	for _, m := range []map[string][]*window{rep.json, rep.single, rep.stream} {
		for p, c := range cpu {
			m[p] = []*window{win(100, c*time.Microsecond, time.Millisecond)}
		}
	}
	// Large: the ReverseProxy adds 1 ms to the first byte, the memory
	// path 1.5 ms (1.5×, met), the SQLite path 3 ms (3×, not met).
	first := map[string]time.Duration{pathDirect: 1000, pathPlain: 2000, pathLLMGate: 1800, pathCredits: 2500, sqlitePath: 4000}
	for _, name := range []string{"same JSON", "same stream"} {
		rep.large[name] = map[string][]*window{}
		for p, f := range first {
			rep.large[name][p] = []*window{win(10, cpu[p]*time.Microsecond, f*time.Microsecond)}
		}
	}
	rep.ledgers = []ledgerCheck{
		{path: pathCredits, scenario: "JSON, 1 client, streaming", sent: 300, snap: benchledger.Snapshot{Records: 300, Spent: 3000, Cost: 3000}},
		{path: sqlitePath, scenario: "JSON, 1 client, streaming", sent: 300, snap: benchledger.Snapshot{Records: 250, Spent: 2500, Cost: 2500}},
	}

	var b strings.Builder
	rep.render(&b)
	out := b.String()
	row := func(cells ...string) {
		t.Helper()
		pattern := `(?m)^\|\s*` + strings.Join(cells, `\s*\|\s*`) + `\s*\|`
		require.Regexp(t, regexp.MustCompile(pattern), out)
	}
	mem, sql := `llmgate \+ keys \+ credits \(memory\)`, `llmgate \+ keys \+ credits \(SQLite\)`
	require.Contains(t, out, "### Keys and credits ÷ httputil.ReverseProxy (target: CPU ≤ 1.25×)")
	row("httputil.ReverseProxy", "100 µs", "100 µs", "100 µs")
	row(mem, "120 µs", "120 µs", "120 µs")
	row(mem, "httputil.ReverseProxy", `1\.20×`, `1\.20×`, `1\.20×`, "met")
	row(mem, "llmgate", `1\.20×`, `1\.20×`, `1\.20×`, "")
	row(mem, `llmgate \+ gateway keys`, `1\.15×`, `1\.15×`, `1\.15×`, "")
	row(sql, "httputil.ReverseProxy", `5\.00×`, `5\.00×`, `5\.00×`, `\*\*not met\*\*`)
	row(`llmgate \+ gateway keys`, "httputil.ReverseProxy", `1\.04×`, `1\.04×`, `1\.04×`, "")

	require.Contains(t, out, "#### Time added to the first byte with credits ÷ the ReverseProxy's (target: ≤ 2×)")
	row("httputil.ReverseProxy", `\+1\.00 ms`, "—", `\+1\.00 ms`, "—", "")
	row("llmgate", `\+0\.800 ms`, `0\.80×`, `\+0\.800 ms`, `0\.80×`, "")
	row(mem, `\+1\.50 ms`, `1\.50×`, `\+1\.50 ms`, `1\.50×`, "met")
	row(sql, `\+3\.00 ms`, `3\.00×`, `\+3\.00 ms`, `3\.00×`, `\*\*not met\*\*`)

	row(mem, "JSON, 1 client, streaming", "300", "300", `\$0\.003`, `\$0\.003`, `\$0\.00`, "ok")
	row(sql, "JSON, 1 client, streaming", "300", "250", `\$0\.0025`, `\$0\.0025`, `\$0\.00`, `\*\*250 usage records for 300 requests\*\*`)
	banner := strings.Index(out, "> **⚠ CREDITS NOT VERIFIED")
	require.Positive(t, banner)
	require.Less(t, banner, strings.Index(out, "### JSON chat completions"), "the banner opens the report")
	require.Contains(t, out, "> - llmgate + keys + credits (SQLite) (JSON, 1 client, streaming): 250 usage records for 300 requests\n")
	require.Equal(t, 2, strings.Count(out, "CREDITS NOT VERIFIED"), "at the top and the bottom")
	require.Len(t, rep.ledgerProblems(), 1)
}
