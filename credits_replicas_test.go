package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/llmgate/gateway/catalog"
	"github.com/llmgate/gateway/credits"
	"github.com/llmgate/gateway/keys"
	"github.com/llmgate/gateway/providers"
	"github.com/llmgate/gateway/providers/providertest"
	"github.com/llmgate/gateway/store/postgres"
	"github.com/llmgate/gateway/store/postgres/pgtest"
)

// greedyUpstream is a fake upstream of one wire format shared by every
// replica. It answers each request in the shape the request asks for
// (JSON or a stream, with the providertest builders) after a short pause,
// so that the requests of all replicas overlap, and reports a usage that is
// sometimes far above what the request was allowed: every fourth answer
// claims three times the maximum output tokens it was sent and a long
// prompt, the others a small answer.
type greedyUpstream struct {
	srv    *httptest.Server
	format providers.Format
	n      atomic.Int64 // requests received
}

func startGreedyUpstream(t *testing.T, format providers.Format) *greedyUpstream {
	t.Helper()
	u := &greedyUpstream{format: format}
	u.srv = httptest.NewServer(http.HandlerFunc(u.serve))
	t.Cleanup(u.srv.Close)
	return u
}

// url is the API root to configure a provider with.
func (u *greedyUpstream) url() string { return u.srv.URL + "/v1/" }

func (u *greedyUpstream) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	var req struct {
		Model               string `json:"model"`
		Stream              bool   `json:"stream"`
		MaxTokens           int    `json:"max_tokens"`
		MaxCompletionTokens int    `json:"max_completion_tokens"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		providertest.Error(u.format, http.StatusBadRequest, err.Error()).ServeHTTP(w, r)
		return
	}
	n := u.n.Add(1)
	maxOut := max(req.MaxTokens, req.MaxCompletionTokens, 1)
	usage := providertest.Usage{Input: 40, Output: min(maxOut, 20)}
	if n%4 == 0 {
		usage = providertest.Usage{Input: 4000, Output: 3 * maxOut}
	}
	deltas := []string{"Hel", "lo"}
	var step providertest.Step
	switch {
	case u.format == providers.FormatOpenAI && req.Stream:
		step = providertest.OpenAIChatStream(req.Model, deltas, usage, true)
	case u.format == providers.FormatOpenAI:
		step = providertest.OpenAIChat(req.Model, "Hello", usage)
	case req.Stream:
		step = providertest.AnthropicStream(req.Model, deltas, usage)
	default:
		step = providertest.AnthropicMessage(req.Model, "Hello", usage)
	}
	step.HeaderDelay = time.Duration(5+n%4*5) * time.Millisecond
	step.ServeHTTP(w, r)
}

// sweepCounting is a replica's ledger: its postgres.Store, with the holds
// its sweeps released counted.
type sweepCounting struct {
	*postgres.Store
	released *atomic.Int64
}

func (s sweepCounting) Sweep(ctx context.Context) (credits.SweepResult, error) {
	res, err := s.Store.Sweep(ctx)
	s.released.Add(int64(res.HoldsReleased))
	return res, err
}

// openCount counts the open holds in the database at dsn.
func openCount(t *testing.T, dsn string) int {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	require.NoError(t, err)
	defer conn.Close(ctx)
	var n int
	require.NoError(t, conn.QueryRow(ctx, `SELECT count(*) FROM `+postgres.DefaultSchema+`.credit_holds WHERE state = 'open'`).Scan(&n))
	return n
}

// TestCreditsReplicasNeverOverspend runs four gateways, each with its own
// postgres.Store (its own connection pool) on one database, in front of
// shared fake upstreams whose answers often claim far more tokens than
// the request was allowed. 96 clients spread over the replicas spend one
// account whose balance pays for a handful of worst cases, with JSON and
// streamed requests in both dialects, while every replica sweeps. Only the
// account's row lock in PostgreSQL stands between them and an overspend:
// the account must never go below zero, pay more than it had, or keep a
// hold open, and every answer must be either a paid 200 or a 403
// credits_exhausted that sent nothing upstream. It runs twice: with holds
// that outlive the requests, and with holds that expire while their
// requests are upstream, so that the replicas' sweepers release them
// under the requests' feet and the late settlements spend from what is
// available then.
func TestCreditsReplicasNeverOverspend(t *testing.T) {
	for _, tc := range []struct {
		name   string
		ttl    time.Duration
		leased bool
	}{
		{"holds outlive requests", 0, false}, // the default, an hour
		{"holds expire mid-request", 3 * time.Millisecond, false},
		// Each replica holds from leases (credits.Leasing) of 1¢: the
		// chat requests' worst cases fit one, the Claude ones do not
		// and hold in the store.
		{"leased", 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) { replicasNeverOverspend(t, tc.ttl, tc.leased) })
	}
}

// replicasNeverOverspend is TestCreditsReplicasNeverOverspend with the
// gateways' hold TTL, and leases or not.
func replicasNeverOverspend(t *testing.T, holdTTL time.Duration, leased bool) {
	const (
		replicas  = 4
		clients   = 24 // per replica
		perClient = 3  // requests, one after the other
		account   = "acme"
	)
	// What the account can spend: 60,000 µ$, a few worst cases (a
	// priced-chat worst case is about 8,500 µ$, a priced-claude one about
	// 32,000 µ$); with leases a dollar, a hundred leases of 1¢, so that
	// they are open for most of the run before the account runs out.
	spendable := 60_000 * credits.Microdollar
	if leased {
		spendable = credits.Dollar
	}
	outside := 5*credits.Dollar - spendable
	ctx := context.Background()
	dsn := pgtest.NewDatabase(t)
	open := func() *postgres.Store {
		s, err := postgres.Open(ctx, dsn, postgres.Options{})
		require.NoError(t, err)
		t.Cleanup(func() { _ = s.Close() })
		return s
	}
	oa, an := startGreedyUpstream(t, providers.FormatOpenAI), startGreedyUpstream(t, providers.FormatAnthropic)

	type replica struct {
		gw  *Gateway
		srv *httptest.Server
	}
	reps := make([]replica, replicas)
	var (
		stores  []*postgres.Store
		swept   atomic.Int64 // holds the replicas' sweeps released
		leasing []*credits.Leasing
		// leaseLog has what the leases logged (failed flushes say why).
		leaseLog lockedBuffer
	)
	defer func() {
		if t.Failed() {
			t.Logf("the leases logged:\n%s", leaseLog.String())
		}
	}()
	for i := range reps {
		st := open()
		stores = append(stores, st)
		var ledger credits.Ledger = sweepCounting{st, &swept}
		if leased {
			l := credits.NewLeasing(sweepCounting{st, &swept}, credits.LeasingOptions{Size: 10_000, MinBalance: 1,
				FlushInterval: 10 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(&leaseLog, nil))})
			t.Cleanup(func() { _ = l.Close(context.Background()) })
			leasing = append(leasing, l)
			ledger = l
		}
		gw, err := New(
			WithProvider(ProviderConfig{ID: "openai", BaseURL: oa.url(), Keys: []ProviderKey{{Value: "sk-oa-1"}},
				Models: []catalog.Model{pricedChat}}),
			WithProvider(ProviderConfig{ID: "anthropic", BaseURL: an.url(), Keys: []ProviderKey{{Value: "sk-an-1"}},
				Models: []catalog.Model{pricedClaude}}),
			WithKeyStore(st, KeyStoreOptions{Endpoint: "gw"}),
			WithLogger(slog.New(slog.DiscardHandler)),
			WithMetering(ledger, MeteringOptions{Credits: true, FeeBasisPoints: testFees.FeeBasisPoints,
				FeePerMillionTokens: testFees.FeePerMillionTokens, HoldTTL: holdTTL, SweepInterval: 5 * time.Millisecond}),
		)
		require.NoError(t, err)
		srv := httptest.NewServer(gw)
		t.Cleanup(func() {
			srv.Close()
			_ = gw.Close()
		})
		reps[i] = replica{gw: gw, srv: srv}
	}

	// One key of the account, and its money: $5 of which all but
	// spendable is held by something outside the gateways.
	k, token, err := keys.NewKey("gw")
	require.NoError(t, err)
	k.Account = account
	k, err = stores[0].Create(ctx, k)
	require.NoError(t, err)
	_, err = stores[0].Purchase(ctx, credits.Purchase{ID: "p-1", Account: account, Amount: 5 * credits.Dollar})
	require.NoError(t, err)
	_, err = stores[1].Reserve(ctx, credits.Reservation{ID: "outside", Account: account, Min: outside, Max: outside, TTL: time.Hour})
	require.NoError(t, err)

	// A watcher reads the balance through a pool of its own all along:
	// the account is never below zero, and the identity holds in every
	// snapshot.
	watcher := open()
	var (
		violations []string
		samples    int
	)
	stop, watched := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(watched)
		for {
			select {
			case <-stop:
				return
			default:
			}
			b, err := watcher.Balance(ctx, account)
			samples++
			switch {
			case err != nil:
				violations = append(violations, "balance: "+err.Error())
			case b.Available < 0 || b.Held < outside || b.Spent > spendable ||
				b.Purchased != b.Available+b.Held+b.Spent+b.Expired:
				violations = append(violations, fmt.Sprintf("%+v", b))
			}
			time.Sleep(time.Millisecond)
		}
	}()

	// The requests: both dialects, JSON and streams, each asking for the
	// most its model allows or more.
	kinds := []struct{ path, body string }{
		{"/v1/chat/completions", chatBody("priced-chat", `"max_tokens":5000`)},
		{"/v1/chat/completions", chatBody("priced-chat", `"max_completion_tokens":1000`, `"stream":true`)},
		{"/v1/messages", `{"model":"priced-claude","max_tokens":2000,"stream":true,"messages":[{"role":"user","content":"Hi"}]}`},
		{"/v1/messages", `{"model":"openai:priced-chat","max_tokens":4000,"messages":[{"role":"user","content":"Hi"}]}`},
		{"/v1/chat/completions", chatBody("anthropic:priced-claude", `"max_tokens":2000`, `"stream":true`)},
	}
	type result struct {
		id     string
		status int
		body   []byte
		err    error
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients}}
	t.Cleanup(client.CloseIdleConnections)
	results := make(chan result, replicas*clients*perClient)
	var wg sync.WaitGroup
	for r := range reps {
		for c := range clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range perClient {
					kind := kinds[(r+c+i)%len(kinds)]
					req, err := http.NewRequest(http.MethodPost, reps[r].srv.URL+kind.path, strings.NewReader(kind.body))
					if err != nil {
						results <- result{err: err}
						continue
					}
					req.Header.Set("Content-Type", "application/json")
					req.Header.Set("Authorization", "Bearer "+token)
					resp, err := client.Do(req)
					if err != nil {
						results <- result{err: err}
						continue
					}
					b, err := io.ReadAll(resp.Body)
					resp.Body.Close()
					results <- result{id: resp.Header.Get(HeaderRequestID), status: resp.StatusCode, body: b, err: err}
				}
			}()
		}
	}
	wg.Wait()
	close(results)
	// Closing a server waits for its handlers, which settle after the
	// response has gone: from here on every request has ended.
	for _, rep := range reps {
		rep.srv.Close()
	}
	for _, l := range leasing {
		require.NoError(t, l.Close(ctx), "the leases are written back and given back")
	}
	close(stop)
	<-watched

	ok, refused := map[string]bool{}, map[string]bool{}
	for r := range results {
		require.NoError(t, r.err)
		require.NotEmpty(t, r.id)
		switch r.status {
		case http.StatusOK:
			require.Contains(t, string(r.body), "Hel", "the answer arrived")
			ok[r.id] = true
		case http.StatusForbidden:
			require.True(t, bytes.Contains(r.body, []byte(`credits_exhausted`)), string(r.body))
			refused[r.id] = true
		default:
			t.Fatalf("status %d: %s", r.status, r.body)
		}
	}
	t.Logf("%d paid, %d refused, %d holds swept, %d balance samples", len(ok), len(refused), swept.Load(), samples)
	require.Equal(t, replicas*clients*perClient, len(ok)+len(refused))
	require.NotEmpty(t, ok)
	require.NotEmpty(t, refused)
	require.Empty(t, violations, "balances seen during the load")
	if holdTTL == 0 {
		require.Zero(t, swept.Load(), "no hold outlived its TTL")
	} else {
		require.Positive(t, swept.Load(), "sweeps released holds of requests in flight")
	}
	require.EqualValues(t, len(ok), oa.n.Load()+an.n.Load(), "only the paid requests went upstream")

	b, err := watcher.Balance(ctx, account)
	require.NoError(t, err)
	require.Equal(t, b.Purchased, b.Available+b.Held+b.Spent+b.Expired, "the accounting identity")
	require.Equal(t, 5*credits.Dollar, b.Purchased)
	require.Equal(t, outside, b.Held, "only the outside hold is left")
	require.Equal(t, 1, openCount(t, dsn), "no hold is left open but the outside one")
	require.GreaterOrEqual(t, b.Available, credits.Amount(0))
	require.LessOrEqual(t, b.Spent, spendable, "never more than the account had")
	require.Zero(t, b.Expired)

	// Every request left one usage record: the paid ones paid, and
	// together they paid what the account spent.
	var (
		recs   []credits.UsageRecord
		cursor string
	)
	for {
		page, err := watcher.Usage(ctx, credits.UsageQuery{Account: account, ListOptions: credits.ListOptions{Limit: credits.MaxListLimit, Cursor: cursor}})
		require.NoError(t, err)
		recs = append(recs, page.Records...)
		if cursor = page.NextCursor; cursor == "" {
			break
		}
	}
	require.Len(t, recs, len(ok)+len(refused))
	var paid, uncollected credits.Amount
	for _, rec := range recs {
		require.Equal(t, k.ID, rec.KeyID)
		switch {
		case ok[rec.RequestID]:
			require.True(t, rec.Paid, "%+v", rec)
			require.Equal(t, http.StatusOK, rec.Status)
			require.Equal(t, credits.SourceConfigured, rec.KeySource)
			require.True(t, rec.ReportedKnown)
			require.Positive(t, rec.Charge())
			paid += rec.Charge() - rec.Uncollected
			uncollected += rec.Uncollected
		case refused[rec.RequestID]:
			require.False(t, rec.Paid, "%+v", rec)
			require.Equal(t, "credits_exhausted", rec.Error)
			require.Equal(t, http.StatusForbidden, rec.Status)
			require.Empty(t, rec.Attempts, "nothing went upstream")
		default:
			t.Fatalf("a usage record of no request: %+v", rec)
		}
	}
	require.Equal(t, b.Spent, paid, "the paid records add up to what the account spent")
	if leased {
		txs, err := watcher.Transactions(ctx, account, credits.ListOptions{Limit: credits.MaxListLimit})
		require.NoError(t, err)
		fromLeases := 0
		for _, tx := range txs.Transactions {
			if tx.Kind == credits.TxSpend && strings.HasPrefix(tx.HoldID, "lease-") {
				fromLeases++
			}
		}
		require.Positive(t, fromLeases, "some requests were paid from leases")
		t.Logf("%d spends written back from leases", fromLeases)
	}
	require.Positive(t, uncollected, "the upstream claimed more than the account could pay")
	t.Logf("spent %s of %s, uncollected %s", b.Spent, spendable, uncollected)
}
