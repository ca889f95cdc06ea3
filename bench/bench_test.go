package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"testing"
	"time"

	gateway "github.com/llmgate/gateway"
	"github.com/llmgate/gateway/bench/internal/gatewaykey"
	"github.com/llmgate/gateway/bench/internal/strategies"
	"github.com/llmgate/gateway/catalog"
	"github.com/llmgate/gateway/keys"
	"github.com/llmgate/gateway/tokens"
	"github.com/stretchr/testify/require"
)

func TestParseStatCPU(t *testing.T) {
	// The command name holds spaces and a ')' to check that fields are
	// counted from the last ')'.
	line := "4242 (proxy (x) y) S 1 4242 4242 0 -1 4194560 1234 0 0 0 250 75 0 0 20 0 9 0 123456 1000000 2000 18446744073709551615\n"
	got, err := parseStatCPU([]byte(line))
	require.NoError(t, err)
	require.Equal(t, 3250*time.Millisecond, got)
	_, err = parseStatCPU([]byte("4242 (x) S 1 2"))
	require.Error(t, err)
}

func TestParseSchedstat(t *testing.T) {
	got, err := parseSchedstat([]byte("1055476 1703132 8\n"))
	require.NoError(t, err)
	require.Equal(t, 1055476*time.Nanosecond, got)
	_, err = parseSchedstat([]byte(""))
	require.Error(t, err)
}

func TestCPUTimeOfSelf(t *testing.T) {
	cmd := exec.Command("sleep", "0.1")
	require.NoError(t, cmd.Start())
	defer cmd.Wait()
	d, err := cpuTime(cmd.Process.Pid)
	require.NoError(t, err)
	require.GreaterOrEqual(t, d, time.Duration(0))
}

func TestParseStatusMemory(t *testing.T) {
	status := "Name:\tproxy\nVmPeak:\t 1000 kB\nVmHWM:\t   20480 kB\nVmRSS:\t   10240 kB\nThreads:\t5\n"
	rss, peak, err := parseStatusMemory([]byte(status))
	require.NoError(t, err)
	require.EqualValues(t, 10<<20, rss)
	require.EqualValues(t, 20<<20, peak)
	_, _, err = parseStatusMemory([]byte("Name:\tx\nVmRSS:\t1 kB\n"))
	require.Error(t, err, "a status without VmHWM")
}

func TestPercentileAndMedian(t *testing.T) {
	var d []time.Duration
	for i := 1; i <= 100; i++ {
		d = append(d, time.Duration(i))
	}
	for _, c := range []struct {
		p    float64
		want time.Duration
	}{{0.5, 50}, {0.99, 99}, {1, 100}, {0, 1}} {
		require.Equal(t, c.want, percentile(d, c.p), "percentile(%v)", c.p)
	}
	require.Zero(t, percentile(nil, 0.5))
	require.Equal(t, 2.0, median([]float64{3, 1, 2}))
	require.Equal(t, 2.5, median([]float64{4, 1, 3, 2}))
	require.True(t, math.IsNaN(median(nil)))
}

// sseStream renders a stream like the fake upstream's with n content
// chunks, using eol as the line ending.
func sseStream(n int, eol string) string {
	var b strings.Builder
	ev := func(data string) { b.WriteString("data: " + data + eol + eol) }
	ev(`{"choices":[{"delta":{"role":"assistant","content":""}}],"usage":null}`)
	for range n {
		ev(`{"choices":[{"delta":{"content":"x"}}],"usage":null}`)
	}
	ev(`{"choices":[{"delta":{},"finish_reason":"stop"}],"usage":null}`)
	ev(`{"choices":[],"usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3}}`)
	ev("[DONE]")
	return b.String()
}

func TestReadChatStream(t *testing.T) {
	const n = 5
	full := sseStream(n, "\n")
	tests := []struct {
		name   string
		stream string
		ok     bool
	}{
		{"complete", full, true},
		{"CRLF", sseStream(n, "\r\n"), true},
		{"with comment", ": keep-alive\n\n" + full, true},
		{"truncated before DONE", strings.TrimSuffix(full, "data: [DONE]\n\n"), false},
		{"cut inside an event", strings.TrimSuffix(full, "\n\n"), false},
		{"a chunk missing", strings.Replace(full, "data: {\"choices\":[{\"delta\":{\"content\":\"x\"}}],\"usage\":null}\n\n", "", 1), false},
		{"no usage", strings.Replace(full, `"usage":{"prompt_tokens"`, `"usage":{"x"`, 1), false},
		{"data after DONE", full + "data: {}\n\n", false},
		{"empty", "", false},
	}
	br := bufio.NewReaderSize(nil, 64<<10)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			first, err := readChatStream(br, strings.NewReader(tc.stream), wantEvents(n), time.Now(), nil)
			if tc.ok {
				require.NoError(t, err)
				require.Positive(t, first)
				return
			}
			var ce *checkError
			require.ErrorAs(t, err, &ce)
			require.Equal(t, errIncomplete, ce.kind)
		})
	}
}

// messagesStream renders an Anthropic stream with n text deltas.
func messagesStream(n int) string {
	var b strings.Builder
	ev := func(name, data string) { b.WriteString("event: " + name + "\ndata: " + data + "\n\n") }
	ev("message_start", `{"type":"message_start","message":{"usage":{"input_tokens":9}}}`)
	ev("content_block_start", `{"type":"content_block_start","index":0}`)
	ev("ping", `{"type":"ping"}`)
	for range n {
		ev("content_block_delta", `{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"x"}}`)
	}
	ev("content_block_stop", `{"type":"content_block_stop","index":0}`)
	ev("message_delta", `{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":3}}`)
	ev("message_stop", `{"type":"message_stop"}`)
	return b.String()
}

func TestReadMessagesStream(t *testing.T) {
	full := messagesStream(3)
	tests := []struct {
		name   string
		stream string
		ok     bool
	}{
		{"complete", full, true},
		{"no message_stop", strings.TrimSuffix(full, "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"), false},
		{"no text", messagesStream(0), false},
		{"not message_start first", strings.Replace(full, "event: message_start", "event: ping", 1), false},
		{"no usage", strings.Replace(full, `"usage":{"output_tokens"`, `"x":{"output_tokens"`, 1), false},
		{"event after message_stop", full + "event: ping\ndata: {}\n\n", false},
		{"error event", strings.Replace(full, "event: message_delta", "event: error", 1), false},
		{"cut inside an event", strings.TrimSuffix(full, "\n\n"), false},
	}
	br := bufio.NewReaderSize(nil, 4<<10)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := readMessagesStream(br, strings.NewReader(tc.stream), time.Now(), nil)
			if tc.ok {
				require.NoError(t, err)
				return
			}
			var ce *checkError
			require.ErrorAs(t, err, &ce)
			require.Equal(t, errIncomplete, ce.kind)
		})
	}
}

func TestTally(t *testing.T) {
	var a, b tally
	a.add(&checkError{errStatus, "502"})
	a.add(&checkError{errStatus, "503"})
	b.add(errors.New("connection reset"))
	a.merge(b)
	require.Equal(t, 3, a.total())
	require.Equal(t, "1 × transport error (e.g. connection reset); 2 × unexpected status (e.g. 502)", a.String())
}

func TestFormat(t *testing.T) {
	for _, c := range []struct{ got, want string }{
		{commas(1234567.4), "1,234,567"},
		{commas(999), "999"},
		{commas(-1234), "-1,234"},
		{fmtMs(0.41234), "0.412 ms"},
		{fmtMs(12.345), "12.3 ms"},
		{fmtAdded(-0.05), "−0.050 ms"},
		{fmtRatio(1.234), "1.23×"},
		{fmtRatio(math.NaN()), "—"},
	} {
		require.Equal(t, c.want, c.got)
	}
	var b strings.Builder
	tb := &table{head: []string{"Path", "p50"}}
	tb.add("llmgate", "1 ms")
	tb.write(&b)
	require.Equal(t, "| Path    |  p50 |\n| ------- | ---: |\n| llmgate | 1 ms |\n", b.String())
}

func TestParseFlags(t *testing.T) {
	c, err := parseFlags([]string{"-quick", "-concurrency", "4"})
	require.NoError(t, err)
	require.Equal(t, time.Second, c.duration)
	require.Equal(t, 1, c.rounds)
	require.Equal(t, 32, c.streams)
	require.Equal(t, 4, c.concurrency)
	require.Equal(t, 200, c.scaleStreams)
	require.False(t, c.strategies, "-strategies is opt-in")
	require.False(t, c.keys, "-keys is opt-in")
	c, err = parseFlags([]string{"-baseline", "192e4bb", "-scale-streams", "4000", "-strategies", "-keys"})
	require.NoError(t, err)
	require.Equal(t, 5, c.rounds)
	require.Equal(t, 256, c.streams)
	require.Equal(t, 4000, c.scaleStreams)
	require.Equal(t, "192e4bb", c.baseline)
	require.True(t, c.strategies)
	require.True(t, c.keys)
	require.False(t, c.credits, "-credits is opt-in")
	c, err = parseFlags([]string{"-credits"})
	require.NoError(t, err)
	require.True(t, c.keys, "-credits implies -keys")
	require.Equal(t, []string{ledgerMemory, ledgerSQLite, ledgerSQLiteLease}, c.ledgers)
	c, err = parseFlags([]string{"-credits", "-credits-ledgers", "sqlite, sqlite"})
	require.NoError(t, err)
	require.Equal(t, []string{ledgerSQLite}, c.ledgers)
	c, err = parseFlags([]string{"-credits-ledgers", "sqlite"})
	require.NoError(t, err)
	require.False(t, c.keys)
	require.Empty(t, c.ledgers, "without -credits, no credits path")
	for _, bad := range [][]string{{"-rounds", "0"}, {"-large-concurrency", "0"}, {"-scale-streams", "-1"}, {"-baseline", "-x"},
		{"-credits", "-credits-ledgers", "postgres"}, {"-credits", "-credits-ledgers", ""}} {
		_, err := parseFlags(bad)
		require.Error(t, err, "%q", bad)
	}
}

func TestLargeSpecs(t *testing.T) {
	sameJSON, sameStream, crossJSON, crossStream := largeSpecs(380_000, 20)
	for _, s := range []*spec{sameJSON, sameStream, crossJSON, crossStream} {
		require.True(t, json.Valid(s.body), s.name)
		require.InDelta(t, 400_000, len(s.body), 20_000, s.name)
	}
	var chat struct {
		Model    string        `json:"model"`
		Messages []chatMessage `json:"messages"`
	}
	require.NoError(t, json.Unmarshal(crossJSON.body, &chat))
	require.Equal(t, anthropicModel, chat.Model)
	require.Equal(t, "system", chat.Messages[0].Role)
	var msgs struct {
		Model    string        `json:"model"`
		System   string        `json:"system"`
		Messages []chatMessage `json:"messages"`
		Stream   bool          `json:"stream"`
	}
	require.NoError(t, json.Unmarshal(crossStream.body, &msgs))
	require.Equal(t, openAIModel, msgs.Model)
	require.True(t, msgs.Stream)
	require.Equal(t, chat.Messages[0].Content, msgs.System)
	// Anthropic wants user and assistant turns alternating, user first and
	// last.
	for i, m := range msgs.Messages {
		require.Equal(t, []string{"user", "assistant"}[i%2], m.Role)
	}
	require.Equal(t, "user", msgs.Messages[len(msgs.Messages)-1].Role)
	require.Contains(t, msgs.Messages[1].Content, "```go\n// ")
	require.Contains(t, msgs.Messages[1].Content, "\nfunc ")
	require.Equal(t, conversation(5000), conversation(5000), "the same for the same size")
	require.True(t, bytes.Contains(sameStream.body, []byte(`"stream":true`)))
	require.Equal(t, wantEvents(20), sameStream.want)

	// The default large request is the ~100k-token prompt the credits
	// paths' first-byte target is about.
	sameJSON, _, _, _ = largeSpecs(380_000, 20)
	require.InDelta(t, 100_000, tokens.NewCounter().EstimateOpenAIChat(catalog.EncodingO200K, sameJSON.body), 5_000)
}

func TestCopyGoFiles(t *testing.T) {
	from, to := t.TempDir(), t.TempDir()
	require.NoError(t, writeFile(from+"/a.go", "package a"))
	require.NoError(t, writeFile(from+"/a_test.go", "package a"))
	require.NoError(t, writeFile(from+"/sub/b.go", "package sub"))
	require.NoError(t, writeFile(from+"/README.md", "x"))
	require.NoError(t, copyGoFiles(from, to))
	var got []string
	for _, f := range []string{"a.go", "a_test.go", "sub/b.go", "README.md"} {
		if fileExists(to + "/" + f) {
			got = append(got, f)
		}
	}
	require.Equal(t, []string{"a.go", "sub/b.go"}, got)
}

func TestFirstLines(t *testing.T) {
	require.Equal(t, "a\nb\n…", firstLines("a\nb\nc\n", 2))
	require.Equal(t, "a", firstLines("a\n", 2))
}

// TestStrategiesKeepTheRequestedModels checks what the llmgate+cel path
// relies on: for every request of the scenarios, a gateway set up like
// bench/cmd/proxy -strategies evaluates all three strategies, the first two
// yield nothing and the third keeps the requested model.
func TestStrategiesKeepTheRequestedModels(t *testing.T) {
	var opts []gateway.Option
	for _, id := range []string{"openai", "anthropic"} {
		opts = append(opts, gateway.WithProvider(gateway.ProviderConfig{
			ID: id, BaseURL: "http://127.0.0.1:1/v1/", Keys: []gateway.ProviderKey{{Value: "sk-bench"}},
		}))
	}
	gw, err := gateway.New(append(opts, gateway.WithModelSelection(strategies.Exprs()...))...)
	require.NoError(t, err)
	defer gw.Close()

	jsonSpec, streamSpec := chatSpecs(20)
	sameJSON, sameStream, crossJSON, crossStream := largeSpecs(20_000, 20)
	for _, tc := range []struct {
		spec *spec
		want string
	}{
		{jsonSpec, "openai:gpt-4o-mini"},
		{streamSpec, "openai:gpt-4o-mini"},
		{sameJSON, "openai:" + openAIModel},
		{sameStream, "openai:" + openAIModel},
		{crossJSON, "anthropic:" + anthropicModel},
		{crossStream, "openai:" + openAIModel},
	} {
		t.Run(tc.spec.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, tc.spec.path, bytes.NewReader(tc.spec.body))
			r.Header.Set("Content-Type", "application/json")
			plan, err := gw.Explain(context.Background(), r)
			require.NoError(t, err)
			require.Len(t, plan.Selection, 3)
			for _, step := range plan.Selection[:2] {
				require.Zero(t, step.AfterClient, step.Strategy)
			}
			require.Empty(t, plan.Selection[2].Error)
			require.Equal(t, []string{tc.want}, plan.Selection[2].Models)
			require.NotEmpty(t, plan.Candidates)
			require.Equal(t, tc.want, plan.Candidates[0].Provider+":"+plan.Candidates[0].Model)
		})
	}
}

// newKeysGateway returns a gateway set up like bench/cmd/proxy, with -keys
// when withKeys, whose providers are unreachable.
func newKeysGateway(t *testing.T, withKeys bool) *gateway.Gateway {
	t.Helper()
	var opts []gateway.Option
	for _, id := range []string{"openai", "anthropic"} {
		opts = append(opts, gateway.WithProvider(gateway.ProviderConfig{
			ID: id, BaseURL: "http://127.0.0.1:1/v1/", Keys: []gateway.ProviderKey{{Value: "sk-bench"}},
		}))
	}
	if withKeys {
		store := keys.NewMemoryStore()
		_, err := store.Create(context.Background(), gatewaykey.Key())
		require.NoError(t, err)
		opts = append(opts, gateway.WithKeyStore(store, gateway.KeyStoreOptions{Endpoint: gatewaykey.Endpoint}))
	}
	gw, err := gateway.New(opts...)
	require.NoError(t, err)
	t.Cleanup(func() { gw.Close() })
	return gw
}

// TestRequestsCarryTheGatewayKey checks what the llmgate+keys path relies
// on: every request the load generator sends authenticates with a gateway
// set up like bench/cmd/proxy -keys, and the same request without its
// token does not.
func TestRequestsCarryTheGatewayKey(t *testing.T) {
	gw := newKeysGateway(t, true)
	jsonSpec, streamSpec := chatSpecs(20)
	sameJSON, sameStream, crossJSON, crossStream := largeSpecs(20_000, 20)
	w := newLoadGen().newWorker("127.0.0.1:1", 4096)
	for _, s := range []*spec{jsonSpec, streamSpec, sameJSON, sameStream, crossJSON, crossStream} {
		t.Run(s.name, func(t *testing.T) {
			r, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(w.request(s))))
			require.NoError(t, err)
			require.Equal(t, "Bearer "+gatewaykey.Token, r.Header.Get("Authorization"))
			_, err = gw.Explain(context.Background(), r)
			require.NoError(t, err)

			r, err = http.ReadRequest(bufio.NewReader(bytes.NewReader(w.request(s))))
			require.NoError(t, err)
			r.Header.Del("Authorization")
			_, err = gw.Explain(context.Background(), r)
			var ge *gateway.Error
			require.ErrorAs(t, err, &ge)
			require.Equal(t, gateway.KindUnauthorized, ge.Kind)
		})
	}
}

func TestAuthCheck(t *testing.T) {
	jsonSpec, _ := chatSpecs(20)
	for _, tc := range []struct {
		name    string
		handler http.Handler
		ok      bool
	}{
		{"keys required", newKeysGateway(t, true), true},
		{"no key store", newKeysGateway(t, false), false},
		{"no gateway", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{}`))
		}), false},
		{"refuses only requests without a token", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("Authorization") == "" {
				w.WriteHeader(http.StatusUnauthorized)
			}
		}), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(tc.handler)
			defer srv.Close()
			err := authCheck(context.Background(), hostOf(srv.URL), jsonSpec)
			if tc.ok {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, "want 401: the path does not authenticate")
		})
	}
}

// TestSentAndQuery checks what the ledger check and the direct path of the
// large-body scenario rely on: the load generator counts the requests it
// sends to each host, and a target's query reaches the server.
func TestSentAndQuery(t *testing.T) {
	var queries []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		queries = append(queries, r.URL.RawQuery) // one client: no concurrent calls
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"choices":[{"finish_reason":"stop"}],"usage":{"prompt_tokens":1}}`))
	}))
	defer srv.Close()
	host := hostOf(srv.URL)
	gen := newLoadGen()
	defer gen.close()
	m := measurer{variants: map[variant]*spec{}}
	jsonSpec, _ := chatSpecs(20)
	direct := target{name: pathDirect, host: host, query: "?delay=0s"}
	s := m.specFor(direct, jsonSpec)
	require.Same(t, s, m.specFor(direct, jsonSpec), "the same variant each time")
	require.Same(t, jsonSpec, m.specFor(target{host: host}, jsonSpec), "no query, no variant")
	require.Equal(t, "/v1/chat/completions", jsonSpec.path, "the spec itself is unchanged")

	require.NoError(t, sanityCheck(context.Background(), gen, host, jsonSpec, s))
	w, err := gen.measure(context.Background(), host, s, 1, 50*time.Millisecond, pids{})
	require.NoError(t, err)
	require.Zero(t, w.errs.total())
	require.EqualValues(t, 2+w.requests, gen.sent(host))
	require.Zero(t, gen.sent("127.0.0.1:1"))
	require.Equal(t, []string{"", "delay=0s"}, queries[:2])
	for _, q := range queries[2:] {
		require.Equal(t, "delay=0s", q)
	}
}
