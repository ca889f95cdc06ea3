package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/llmgate/gateway/config"
	"github.com/llmgate/gateway/credits"
	"github.com/llmgate/gateway/store/sqlite"
)

// creditsStore is a store that keeps keys (the file's SQLite store) and
// credits (a credits.Memory shared by every opening in a test), as the
// SQLite and PostgreSQL stores will.
type creditsStore struct {
	keyStore
	*credits.Memory
}

// withCredits returns an opener of the file's store that adds m's
// credits.
func withCredits(m *credits.Memory) opener {
	return func(ctx context.Context, f *config.File, logger *slog.Logger) (keyStore, error) {
		st, err := openStore(ctx, f, logger)
		if err != nil || st == nil {
			return st, err
		}
		return creditsStore{st, m}, nil
	}
}

// keysOnly is a store that keeps keys and no credits.
type keysOnly struct{ keyStore }

// withoutCredits opens the file's store and hides any credits it keeps.
func withoutCredits(ctx context.Context, f *config.File, logger *slog.Logger) (keyStore, error) {
	st, err := openStore(ctx, f, logger)
	if err != nil || st == nil {
		return st, err
	}
	return keysOnly{st}, nil
}

// llmgateCredits runs "llmgate credits args..." (or "llmgate usage ...",
// when args[0] is "usage") on open and returns its stdout, stderr and
// error.
func llmgateCredits(t *testing.T, open opener, env map[string]string, args ...string) (string, string, error) {
	t.Helper()
	var stdout, stderr syncBuffer
	var err error
	if len(args) > 0 && args[0] == "usage" {
		err = usageCommand(context.Background(), args[1:], mapEnv(env), &stdout, &stderr, open)
	} else {
		err = creditsCommand(context.Background(), args, mapEnv(env), &stdout, &stderr, open)
	}
	return stdout.String(), stderr.String(), err
}

// tableRows returns the lines of a table, each split into its columns
// (two or more spaces apart).
func tableRows(out string) [][]string {
	sep := regexp.MustCompile(`\s{2,}`)
	var rows [][]string
	for _, l := range strings.Split(strings.TrimRight(out, "\n"), "\n") {
		rows = append(rows, sep.Split(strings.TrimSpace(l), -1))
	}
	return rows
}

// creditsConfig writes a configuration with a SQLite store in dir whose
// other fields need variables the credits subcommands do not need.
func creditsConfig(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "llmgate.yaml")
	writeFile(t, path, `
store: sqlite:`+filepath.Join(dir, "llmgate.db")+`
endpoint: prod
key_encryption_keys: [{id: kek-1, key: "${env:LLMGATE_KEK}"}]
admin: {listen: "127.0.0.1:0", token: "${env:LLMGATE_ADMIN_TOKEN}"}
credits: {enabled: true, fee_percent: 2.5}
providers:
  - id: openai
    api_keys: [{value: "${env:OPENAI_API_KEY}"}]
`)
	return path
}

// TestCreditsCommands buys credits and reads them back with an empty
// environment: the subcommands need only the store.
func TestCreditsCommands(t *testing.T) {
	m := credits.NewMemory(credits.MemoryOptions{})
	open := withCredits(m)
	path := creditsConfig(t, t.TempDir())

	stdout, stderr, err := llmgateCredits(t, open, nil, "buy", "-config", path, "-account", "team-a", "-amount", "10.00",
		"-id", "order-1", "-note", "invoice\t7")
	require.NoError(t, err, stderr)
	require.Equal(t, "Bought $10.00 of credits for account \"team-a\".\n", stderr)
	rows := tableRows(stdout)
	require.Len(t, rows, 2, stdout)
	require.Equal(t, []string{"LOT", "ACCOUNT", "AMOUNT", "REMAINING", "PURCHASED", "EXPIRES", "NOTE"}, rows[0])
	require.Equal(t, []string{"order-1", "team-a", "$10.00", "$10.00"}, rows[1][:4])
	purchased, err := time.Parse("2006-01-02 15:04Z", rows[1][4])
	require.NoError(t, err)
	expires, err := time.Parse("2006-01-02 15:04Z", rows[1][5])
	require.NoError(t, err)
	require.Equal(t, credits.LotLifetime, expires.Sub(purchased))
	require.Equal(t, "invoice 7", rows[1][6])

	// A replay buys nothing.
	stdout, stderr, err = llmgateCredits(t, open, nil, "buy", "-config", path, "-account", "team-a", "-amount", "10", "-id", "order-1")
	require.NoError(t, err)
	require.Contains(t, stderr, `Purchase "order-1" was made before: nothing was bought.`)
	require.Contains(t, stdout, "order-1")
	_, _, err = llmgateCredits(t, open, nil, "buy", "-config", path, "-account", "team-a", "-amount", "11", "-id", "order-1")
	require.ErrorContains(t, err, `purchase "order-1" was made before for another account or amount; nothing was bought`)

	// Without -id, a new purchase each time.
	stdout, _, err = llmgateCredits(t, open, nil, "buy", "-config", path, "-account", "team-b", "-amount", "$5")
	require.NoError(t, err)
	require.Regexp(t, `(?m)^pur_[a-z2-7]{26}\s+team-b\s+\$5\.00\s+\$5\.00\s`, stdout)

	// Spend some of team-a's credits, as the gateway would.
	ctx := context.Background()
	h, err := m.Reserve(ctx, credits.Reservation{ID: "req_1", Account: "team-a", Max: credits.Dollar, Min: 1, TTL: time.Hour})
	require.NoError(t, err)
	start := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	_, err = m.Settle(ctx, h.ID, 1_500_000-1_250_000, &credits.UsageRecord{ID: "req_1", RequestID: "req_1", KeyID: "key_a",
		Provider: "openai", Model: "gpt-4o", KeySource: credits.SourceConfigured, Reported: credits.Tokens{Input: 1000, Output: 200},
		ReportedKnown: true, Cost: 243_903, Fee: 6_097, Status: 200, Start: start, End: start.Add(time.Second)})
	require.NoError(t, err)
	require.NoError(t, m.Record(ctx, &credits.UsageRecord{ID: "req_2", RequestID: "req_2", KeyID: "key_b", Provider: "anthropic",
		Model: "claude", KeySource: credits.SourceClient, Estimated: credits.Tokens{Input: 10, Output: 5, CacheRead: 3},
		Cost: 100, Status: 200, Start: start.Add(24 * time.Hour)}))

	// balance of one account, then of all.
	stdout, stderr, err = llmgateCredits(t, open, nil, "balance", "-config", path, "-account", "team-a")
	require.NoError(t, err, stderr)
	rows = tableRows(stdout)
	require.Equal(t, []string{"ACCOUNT", "AVAILABLE", "HELD", "SPENT", "EXPIRED", "PURCHASED", "NEXT EXPIRY"}, rows[0])
	require.Equal(t, []string{"team-a", "$9.75", "$0.00", "$0.25", "$0.00", "$10.00"}, rows[1][:6])
	require.Len(t, rows, 2)
	stdout, _, err = llmgateCredits(t, open, nil, "balance", "-config", path)
	require.NoError(t, err)
	rows = tableRows(stdout)
	require.Len(t, rows, 3, stdout)
	require.Equal(t, "team-a", rows[1][0])
	require.Equal(t, []string{"team-b", "$5.00"}, rows[2][:2])
	stdout, stderr, err = llmgateCredits(t, open, nil, "balance", "-config", path, "-account", "nobody")
	require.NoError(t, err)
	require.Contains(t, stderr, `Account "nobody" has never bought credits.`)
	require.Equal(t, []string{"nobody", "$0.00"}, tableRows(stdout)[1][:2])

	// transactions, newest first.
	stdout, _, err = llmgateCredits(t, open, nil, "transactions", "-config", path, "-account", "team-a")
	require.NoError(t, err)
	rows = tableRows(stdout)
	require.Len(t, rows, 3, stdout)
	require.Equal(t, []string{"AT", "KIND", "AMOUNT", "LOT", "HOLD", "NOTE"}, rows[0])
	require.Equal(t, []string{"spend", "-$0.25", "-", "req_1", "-"}, rows[1][1:])
	require.Equal(t, []string{"purchase", "+$10.00", "order-1", "-", "invoice 7"}, rows[2][1:])
	stdout, _, err = llmgateCredits(t, open, nil, "transactions", "-config", path, "-account", "team-a", "-limit", "1")
	require.NoError(t, err)
	require.Len(t, tableRows(stdout), 2)
	_, stderr, err = llmgateCredits(t, open, nil, "transactions", "-config", path, "-account", "nobody")
	require.NoError(t, err)
	require.Contains(t, stderr, `No transactions of account "nobody"`)

	// usage: one total, then grouped, then filtered.
	stdout, _, err = llmgateCredits(t, open, nil, "usage", "-config", path)
	require.NoError(t, err)
	rows = tableRows(stdout)
	require.Equal(t, []string{"REQUESTS", "INPUT", "OUTPUT", "CACHE READ", "CACHE WRITE", "COST", "FEE", "UNCOLLECTED"}, rows[0])
	require.Equal(t, []string{"2", "1010", "205", "3", "0", "$0.244003", "$0.006097", "$0.00"}, rows[1])
	stdout, _, err = llmgateCredits(t, open, nil, "usage", "-config", path, "-group-by", "day,provider")
	require.NoError(t, err)
	rows = tableRows(stdout)
	require.Len(t, rows, 4, stdout)
	require.Equal(t, []string{"DAY", "PROVIDER", "REQUESTS"}, rows[0][:3])
	require.Equal(t, []string{"2026-03-01", "openai", "1", "1000", "200"}, rows[1][:5])
	require.Equal(t, []string{"2026-03-02", "anthropic", "1", "10", "5"}, rows[2][:5])
	require.Equal(t, []string{"TOTAL", "2", "1010", "205"}, rows[3][:4])
	stdout, _, err = llmgateCredits(t, open, nil, "usage", "-config", path, "-account", "team-a", "-group-by", "model")
	require.NoError(t, err)
	require.Equal(t, []string{"gpt-4o", "1", "1000", "200", "0", "0", "$0.243903", "$0.006097", "$0.00"}, tableRows(stdout)[1])
	stdout, _, err = llmgateCredits(t, open, nil, "usage", "-config", path, "-key", "key_b", "-from", "2026-03-02", "-to", "2026-03-03T00:00:00Z")
	require.NoError(t, err)
	require.Equal(t, "1", tableRows(stdout)[1][0])
	stdout, stderr, err = llmgateCredits(t, open, nil, "usage", "-config", path, "-from", "2027-01-01")
	require.NoError(t, err)
	require.Empty(t, stdout)
	require.Contains(t, stderr, "No usage records match")
}

func TestCreditsCommandErrors(t *testing.T) {
	dir := t.TempDir()
	path := creditsConfig(t, dir)
	noStore := filepath.Join(dir, "nostore.yaml")
	writeFile(t, noStore, "providers: [{id: openai}]\n")
	unsetStore := filepath.Join(dir, "unset.yaml")
	writeFile(t, unsetStore, "store: ${env:DATABASE_URL}\n")
	open := withCredits(credits.NewMemory(credits.MemoryOptions{}))
	tests := []struct {
		name       string
		open       opener
		args       []string
		wantErr    string
		wantStderr string
	}{
		{name: "help", args: []string{"-h"}, wantStderr: "llmgate credits buy"},
		{name: "subcommand help", args: []string{"buy", "-h"}, wantStderr: "-amount dollars"},
		{name: "usage help", args: []string{"usage", "-h"}, wantStderr: "-group-by dimensions"},
		{name: "no subcommand", args: nil, wantErr: "name a subcommand", wantStderr: "Usage:"},
		{name: "unknown subcommand", args: []string{"refund"}, wantErr: `unknown subcommand "refund"`},
		{name: "no config", args: []string{"balance"}, wantErr: "credits balance: -config is required"},
		{name: "usage without config", args: []string{"usage"}, wantErr: "usage: -config is required"},
		{name: "unknown flag", args: []string{"buy", "-config", path, "-currency", "EUR"}, wantErr: "flag provided but not defined: -currency"},
		{name: "extra argument", args: []string{"balance", "-config", path, "x"}, wantErr: `unexpected arguments ["x"]`},
		{name: "missing file", args: []string{"balance", "-config", filepath.Join(dir, "none.yaml")}, wantErr: "no such file"},
		{name: "no store", args: []string{"balance", "-config", noStore}, wantErr: "names no key store"},
		{name: "store variable unset", args: []string{"balance", "-config", unsetStore}, wantErr: "store: ${env:DATABASE_URL} is not set"},
		{name: "store without credits", open: withoutCredits, args: []string{"balance", "-config", path}, wantErr: "does not keep credits in this build"},
		{name: "buy without account", args: []string{"buy", "-config", path, "-amount", "10"}, wantErr: "-account is required"},
		{name: "buy without amount", args: []string{"buy", "-config", path, "-account", "a"}, wantErr: "-amount is required"},
		{name: "buy a float", args: []string{"buy", "-config", path, "-account", "a", "-amount", "1e2"}, wantErr: `-amount "1e2" is not a number of dollars`},
		{name: "buy a negative amount", args: []string{"buy", "-config", path, "-account", "a", "-amount", "-10"}, wantErr: "is not a number of dollars"},
		{name: "buy below the minimum", args: []string{"buy", "-config", path, "-account", "a", "-amount", "4.99"}, wantErr: "$4.99 is below the minimum purchase of $5.00"},
		{name: "buy with a bad account", args: []string{"buy", "-config", path, "-account", "a b", "-amount", "5"}, wantErr: "invalid account"},
		{name: "buy with a long note", args: []string{"buy", "-config", path, "-account", "a", "-amount", "5", "-note", strings.Repeat("n", 256)}, wantErr: "invalid note"},
		{name: "balance of a bad account", args: []string{"balance", "-config", path, "-account", strings.Repeat("a", 129)}, wantErr: "invalid account"},
		{name: "transactions without account", args: []string{"transactions", "-config", path}, wantErr: "-account is required"},
		{name: "transactions with a bad limit", args: []string{"transactions", "-config", path, "-account", "a", "-limit", "0"}, wantErr: "-limit must be at least 1"},
		{name: "usage with a bad time", args: []string{"usage", "-config", path, "-from", "yesterday"}, wantErr: `-from "yesterday" is not an RFC 3339 time`},
		{name: "usage with to before from", args: []string{"usage", "-config", path, "-from", "2026-03-02", "-to", "2026-03-01"}, wantErr: "-to must be after -from"},
		{name: "usage with a bad dimension", args: []string{"usage", "-config", path, "-group-by", "day,week"}, wantErr: `unknown dimension "week"`},
		{name: "usage with a dimension twice", args: []string{"usage", "-config", path, "-group-by", "day,day"}, wantErr: "given twice"},
		{name: "usage with a bad key", args: []string{"usage", "-config", path, "-key", "a b"}, wantErr: "invalid -key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := tt.open
			if o == nil {
				o = open
			}
			stdout, stderr, err := llmgateCredits(t, o, nil, tt.args...)
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
			} else {
				require.NoError(t, err)
			}
			require.Contains(t, stderr, tt.wantStderr)
			require.Empty(t, stdout)
		})
	}
}

// TestCreditsCommandsOnTheStore runs the credits subcommands through run,
// on the store the file names: once the SQLite store keeps credits they
// buy and read; until then they say it does not.
func TestCreditsCommandsOnTheStore(t *testing.T) {
	path := creditsConfig(t, t.TempDir())
	ctx := context.Background()
	f, err := config.ReadFile(path, mapEnv(keysEnv()))
	require.Error(t, err, "OPENAI_API_KEY is not set")
	st, err := openStore(ctx, f, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	_, keeps := st.(credits.Store)
	require.NoError(t, st.Close())

	var stdout, stderr syncBuffer
	err = run(ctx, []string{"credits", "buy", "-config", path, "-account", "a", "-amount", "5", "-id", "p1"}, mapEnv(nil), &stdout, &stderr)
	if !keeps {
		require.ErrorContains(t, err, "credits buy: the store sqlite:"+filepath.Join(filepath.Dir(path), "llmgate.db")+" does not keep credits in this build")
		err = run(ctx, []string{"usage", "-config", path}, mapEnv(nil), &stdout, &stderr)
		require.ErrorContains(t, err, "usage: the store sqlite:")
		return
	}
	require.NoError(t, err, stderr.String())
	require.Contains(t, stdout.String(), "p1")
	stdout = syncBuffer{}
	require.NoError(t, run(ctx, []string{"credits", "balance", "-config", path, "-account", "a"}, mapEnv(nil), &stdout, &stderr))
	require.Equal(t, []string{"a", "$5.00"}, tableRows(stdout.String())[1][:2])
}

// TestServerCredits serves a file with credits on a store that keeps them:
// the gateway meters into it, and the admin listener serves the credits
// routes on the same store as the subcommands.
func TestServerCredits(t *testing.T) {
	up := newDemoUpstream(t)
	m := credits.NewMemory(credits.MemoryOptions{})
	path := keysConfig(t, t.TempDir(), up.URL, adminLines+"\ncredits: {enabled: true, fee_percent: 2.5, hold_ttl: 1h}\nlimits: {max_input_tokens: 100000}")
	r := startServerHooks(t, []string{"-config", path}, keysEnv(), hooks{open: withCredits(m)})
	require.Equal(t, "credits", r.srv.meteringMode())
	require.NotNil(t, r.srv.ledger())

	_, stderr, err := llmgateCredits(t, withCredits(m), nil, "buy", "-config", path, "-account", "team-a", "-amount", "20")
	require.NoError(t, err, stderr)
	status, body := r.adminDo(t, http.MethodGet, "/admin/v1/credits/balance?account=team-a", testAdminToken, "")
	require.Equal(t, http.StatusOK, status, body)
	var b struct {
		Available       string `json:"available"`
		AvailableMicros int64  `json:"available_micros"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &b), body)
	require.Equal(t, "20.00", b.Available)
	require.EqualValues(t, 20_000_000, b.AvailableMicros)

	status, body = r.adminDo(t, http.MethodPost, "/admin/v1/credits/purchases", testAdminToken, `{"account":"team-b","amount":"5.00","id":"x1"}`)
	require.Equal(t, http.StatusCreated, status, body)
	stdout, _, err := llmgateCredits(t, withCredits(m), nil, "balance", "-config", path)
	require.NoError(t, err)
	require.Len(t, tableRows(stdout), 3, "the admin API's purchase is in the same store: "+stdout)
	status, body = r.adminDo(t, http.MethodGet, "/admin/v1/usage/summary", "", "")
	require.Equal(t, http.StatusUnauthorized, status, body)

	require.NoError(t, r.stop())
	logs := r.stderr.String()
	require.Contains(t, logs, "metering=credits")
	require.Contains(t, logs, `msg="llmgate admin API listening" addr=`+r.srv.admin.addr+" path=/admin/v1/keys credits=true")
}

// TestServerWithoutCredits serves a store that keeps no credits: metering
// is off, the credits routes answer 501, and a file enabling credits is
// refused, at start and on reload.
func TestServerWithoutCredits(t *testing.T) {
	up := newDemoUpstream(t)
	dir := t.TempDir()
	path := keysConfig(t, dir, up.URL, adminLines)
	r := startServerHooks(t, []string{"-config", path}, keysEnv(), hooks{open: withoutCredits})
	require.Equal(t, "off", r.srv.meteringMode())
	status, body := r.adminDo(t, http.MethodGet, "/admin/v1/credits/balance?account=a", testAdminToken, "")
	require.Equal(t, http.StatusNotImplemented, status, body)
	require.Contains(t, body, `"code":"credits_not_configured"`)

	writeFile(t, path, readFile(t, path)+"\ncredits: {enabled: true}\n")
	err := r.srv.reload()
	require.ErrorContains(t, err, "credits.enabled: the store sqlite:"+filepath.Join(dir, "llmgate.db")+" does not keep credits in this build")
	require.NoError(t, r.stop())
	require.Contains(t, r.stderr.String(), "metering=off")

	var stdout, stderr syncBuffer
	err = serve(context.Background(), []string{"-config", path, "-listen", "127.0.0.1:0"}, mapEnv(keysEnv()), &stdout, &stderr, hooks{open: withoutCredits})
	require.ErrorContains(t, err, "credits.enabled: the store sqlite:")
}

// TestServerUsageOnly meters without charging: a store that keeps credits
// and a file without credits.enabled.
func TestServerUsageOnly(t *testing.T) {
	up := newDemoUpstream(t)
	path := keysConfig(t, t.TempDir(), up.URL, "")
	token := createKey(t, path)
	r := startServerHooks(t, []string{"-config", path}, keysEnv(), hooks{open: withCredits(credits.NewMemory(credits.MemoryOptions{}))})
	require.Equal(t, "usage", r.srv.meteringMode())
	status, body := r.chat(t, "Authorization", "Bearer "+token)
	require.Equal(t, http.StatusOK, status, body)
	require.NoError(t, r.stop())
	require.Contains(t, r.stderr.String(), "metering=usage")
}

// TestExampleConfigCredits keeps the commented credits, limits and store
// lines of llmgate.example.yaml valid once uncommented.
func TestExampleConfigCredits(t *testing.T) {
	data, err := os.ReadFile("llmgate.example.yaml")
	require.NoError(t, err)
	var out []string
	block := false
	for _, l := range strings.Split(string(data), "\n") {
		switch {
		case strings.HasPrefix(l, "# store:"), strings.HasPrefix(l, "# credits:"), strings.HasPrefix(l, "# limits:"):
			block = true
			l = strings.TrimPrefix(l, "# ")
		case block && strings.HasPrefix(l, "#   "):
			l = strings.TrimPrefix(l, "# ")
		default:
			block = false
		}
		out = append(out, l)
	}
	f, err := config.Parse([]byte(strings.Join(out, "\n")), mapEnv(map[string]string{"OPENAI_API_KEY": "a", "ANTHROPIC_API_KEY": "b"}))
	require.NoError(t, err)
	require.True(t, f.Credits.Enabled)
	require.Equal(t, config.Percent(250), *f.Credits.FeePercent)
	require.Equal(t, config.Dollars(credits.Dollar), *f.Credits.Lease.Size)
	require.Equal(t, 100000, *f.Limits.MaxInputTokens)
	require.NoError(t, f.Check())
}

// TestServerCreditsLeased serves credits from the SQLite store through
// leases (on by default): requests are held in memory, their spends and
// usage records reach the store within a flush interval, and at shutdown
// the lease is written back and given back, leaving exact books.
func TestServerCreditsLeased(t *testing.T) {
	up := newDemoUpstream(t)
	dir := t.TempDir()
	db := filepath.Join(dir, "llmgate.db")
	path := filepath.Join(dir, "llmgate.yaml")
	writeFile(t, path, fmt.Sprintf(`
store: sqlite:%s
endpoint: prod
key_encryption_keys: [{id: kek-1, key: "${env:LLMGATE_KEK}"}]
credits: {enabled: true, fee_percent: 10, lease: {flush_interval: 50ms}}
providers:
  - id: lab
    base_url: %s/v1/
    api_keys: [{value: sk-upstream-key}]
    models: [{id: qwen3, pricing: {input: 2000000, output: 8000000}}]
`, db, up.URL))
	token := createKey(t, path, "-account", "acme")
	_, stderr, err := llmgateCredits(t, openStore, nil, "buy", "-config", path, "-account", "acme", "-amount", "50.00", "-id", "order-1")
	require.NoError(t, err, stderr)

	r := startServerHooks(t, []string{"-config", path}, keysEnv(), hooks{})
	require.NotNil(t, r.srv.leasing, "credits are leased by default")
	const n = 12
	for range n {
		status, body := r.chat(t, "Authorization", "Bearer "+token)
		require.Equal(t, http.StatusOK, status, body)
	}

	st, err := sqlite.Open(t.Context(), db, sqlite.Options{})
	require.NoError(t, err)
	defer st.Close()
	books := func() (credits.Balance, []credits.UsageRecord) {
		t.Helper()
		b, err := st.Balance(t.Context(), "acme")
		require.NoError(t, err)
		require.Equal(t, b.Purchased, b.Available+b.Held+b.Spent+b.Expired, "the accounting identity")
		p, err := st.Usage(t.Context(), credits.UsageQuery{Account: "acme"})
		require.NoError(t, err)
		return b, p.Records
	}
	// Within a few flush intervals every request is in the store, paid.
	var (
		b    credits.Balance
		recs []credits.UsageRecord
	)
	require.Eventually(t, func() bool { b, recs = books(); return len(recs) == n }, 10*time.Second, 20*time.Millisecond)
	var charged credits.Amount
	for _, rec := range recs {
		require.True(t, rec.Paid)
		require.Positive(t, rec.Cost)
		charged += rec.Charge()
	}
	require.Eventually(t, func() bool { b, _ = books(); return b.Spent == charged }, 10*time.Second, 20*time.Millisecond)
	require.Equal(t, credits.DefaultLeaseSize, b.Held, "the store holds the replica's lease, not each request")

	// At shutdown the lease is given back.
	require.NoError(t, r.stop())
	b, recs = books()
	require.Len(t, recs, n)
	require.Zero(t, b.Held)
	require.Equal(t, charged, b.Spent)
	require.Equal(t, 50*credits.Dollar-charged, b.Available)
}
