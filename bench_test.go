package gateway

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/llmgate/gateway/credits"
	"github.com/llmgate/gateway/internal/benchcpu"
	"github.com/llmgate/gateway/keys"
	"github.com/llmgate/gateway/providers/providertest"
	"github.com/llmgate/gateway/store/sqlite"
)

// discardWriter is a minimal http.ResponseWriter that can flush.
type discardWriter struct {
	h      http.Header
	status int
	n      int
}

func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) WriteHeader(s int)           { d.status = s }
func (d *discardWriter) Write(p []byte) (int, error) { d.n += len(p); return len(p), nil }
func (d *discardWriter) Flush()                      {}

func (d *discardWriter) reset() {
	clear(d.h)
	d.status, d.n = 0, 0
}

// benchUpstream serves fixed OpenAI answers without scripting overhead.
func benchUpstream(b *testing.B) *httptest.Server {
	return benchUpstreamDeltas(b, benchDeltas())
}

// benchDeltas returns the twenty content deltas of the benchmarks' streams.
func benchDeltas() []string {
	return strings.Fields("Hello ! How can I help you today ? I am a benchmark stream with twenty chunks of text .")
}

// benchUpstreamDeltas is benchUpstream with streams whose content events
// carry deltas, in the OpenAI and Anthropic formats.
func benchUpstreamDeltas(b *testing.B, deltas []string) *httptest.Server {
	jsonBody := providertest.OpenAIChat("gpt-4o-mini", "Hello! How can I help you today?", providertest.Usage{Input: 25, Output: 9}).Body
	stream := providertest.OpenAIChatStream("gpt-4o-mini", deltas, providertest.Usage{Input: 25, Output: 20}, true).StreamBytes()
	anthropicStream := providertest.AnthropicStream("claude-haiku-4-5", deltas, providertest.Usage{Input: 25, Output: 20}).StreamBytes()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		if strings.HasSuffix(r.URL.Path, "/messages") {
			w.Header().Set("Content-Type", "text/event-stream")
			_, _ = w.Write(anthropicStream)
			return
		}
		if strings.Contains(r.URL.RawQuery, "stream") || r.Header.Get("Accept") == "text/event-stream" {
			w.Header().Set("Content-Type", "text/event-stream")
			_, _ = w.Write(stream)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(jsonBody)
	}))
	b.Cleanup(srv.Close)
	return srv
}

var benchRequest = `{"model":"gpt-4o-mini","messages":[{"role":"system","content":"You are a helpful assistant that answers briefly."},{"role":"user","content":"` +
	strings.Repeat("Tell me something interesting about the Go programming language. ", 12) + `"}],"temperature":0.2`

// BenchmarkHandler measures one request through the whole handler, against
// calling the upstream directly and a plain httputil.ReverseProxy, in the
// same run (compare the sub-benchmarks as ratios).
func BenchmarkHandler(b *testing.B) {
	up := benchUpstream(b)
	transport := &http.Transport{MaxIdleConnsPerHost: 64}
	b.Cleanup(transport.CloseIdleConnections)
	client := &http.Client{Transport: transport}
	gw, err := New(WithHTTPClient(client),
		WithProvider(ProviderConfig{ID: "openai", BaseURL: up.URL + "/v1/", Keys: []ProviderKey{{Value: "sk-bench"}}}),
		WithProvider(ProviderConfig{ID: "anthropic", BaseURL: up.URL + "/v1/", Keys: []ProviderKey{{Value: "sk-bench"}}}))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = gw.Close() })
	cel, err := New(WithHTTPClient(client),
		WithProvider(ProviderConfig{ID: "openai", BaseURL: up.URL + "/v1/", Keys: []ProviderKey{{Value: "sk-bench"}}}),
		WithProvider(ProviderConfig{ID: "anthropic", BaseURL: up.URL + "/v1/", Keys: []ProviderKey{{Value: "sk-bench"}}}),
		WithModelSelection(append([]string{"request.input_tokens > 200000 ? ai.models.filter(m, m.max_context_window >= 400000) : []"},
			benchPlanStrategies[1:]...)...))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = cel.Close() })
	paid, token := benchCreditsGateway(b, client, up.URL, nil)
	leased, leasedToken := benchCreditsGateway(b, client, up.URL, func(ledger *credits.Memory) credits.Ledger {
		st, err := sqlite.Open(context.Background(), filepath.Join(b.TempDir(), "llmgate.db"), sqlite.Options{})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = st.Close() })
		if _, err := st.Purchase(context.Background(), credits.Purchase{ID: "p-1", Account: "acct", Amount: 1000 * credits.Dollar}); err != nil {
			b.Fatal(err)
		}
		l := credits.NewLeasing(st, credits.LeasingOptions{})
		b.Cleanup(func() { _ = l.Close(context.Background()) })
		return l
	})
	proxy := benchProxy(up.URL, transport)
	for _, mode := range []struct {
		name string
		body string
	}{
		{"json", benchRequest + "}"},
		{"stream", benchRequest + `,"stream":true}`},
	} {
		body := []byte(mode.body)
		newReq := func() *http.Request {
			r := httptest.NewRequest(http.MethodPost, "/v1/chat/completions", bytes.NewReader(body))
			r.Header.Set("Content-Type", "application/json")
			if mode.name == "stream" {
				r.Header.Set("Accept", "text/event-stream")
			}
			return r
		}
		b.Run(mode.name+"/direct", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				req, _ := http.NewRequest(http.MethodPost, up.URL+"/v1/chat/completions", bytes.NewReader(body))
				if mode.name == "stream" {
					req.Header.Set("Accept", "text/event-stream")
				}
				resp, err := client.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		})
		b.Run(mode.name+"/reverseproxy", func(b *testing.B) {
			b.ReportAllocs()
			w := &discardWriter{h: http.Header{}}
			for b.Loop() {
				w.reset()
				proxy.ServeHTTP(w, newReq())
				if w.status != http.StatusOK {
					b.Fatalf("status %d", w.status)
				}
			}
		})
		for _, g := range []struct {
			name  string
			gw    *Gateway
			token string
		}{{"llmgate", gw, ""}, {"llmgate+cel", cel, ""}, {"llmgate+keys+credits", paid, token}, {"llmgate+keys+credits/sqlite-lease", leased, leasedToken}} {
			b.Run(mode.name+"/"+g.name, func(b *testing.B) {
				b.ReportAllocs()
				w := &discardWriter{h: http.Header{}}
				for b.Loop() {
					w.reset()
					r := newReq()
					if g.token != "" {
						r.Header.Set("Authorization", "Bearer "+g.token)
					}
					g.gw.ServeHTTP(w, r)
					if w.status != http.StatusOK {
						b.Fatalf("status %d", w.status)
					}
				}
			})
		}
	}
}

// benchProxy returns the plain httputil.ReverseProxy the benchmarks
// compare the gateway with: it forwards to upstream and flushes every
// write.
func benchProxy(upstream string, transport http.RoundTripper) *httputil.ReverseProxy {
	target, _ := url.Parse(upstream)
	return &httputil.ReverseProxy{
		Rewrite:       func(r *httputil.ProxyRequest) { r.SetURL(target) },
		Transport:     transport,
		FlushInterval: -1,
	}
}

// benchCreditsGateway returns a gateway that requires a gateway key and
// pays every request with credits from in-memory stores, and the token of
// a key whose account holds $1,000. ledgerOf, when not nil, returns the
// ledger to use instead of the funded credits.Memory.
func benchCreditsGateway(b *testing.B, client *http.Client, upstream string, ledgerOf func(*credits.Memory) credits.Ledger) (*Gateway, string) {
	ks := keys.NewMemoryStore()
	k, token, err := keys.NewKey("gw")
	if err != nil {
		b.Fatal(err)
	}
	k.Account = "acct"
	if _, err := ks.Create(context.Background(), k); err != nil {
		b.Fatal(err)
	}
	ledger := credits.NewMemory(credits.MemoryOptions{})
	if _, err := ledger.Purchase(context.Background(), credits.Purchase{ID: "p-1", Account: "acct", Amount: 1000 * credits.Dollar}); err != nil {
		b.Fatal(err)
	}
	var l credits.Ledger = ledger
	if ledgerOf != nil {
		l = ledgerOf(ledger)
	}
	gw, err := New(WithHTTPClient(client),
		WithProvider(ProviderConfig{ID: "openai", BaseURL: upstream + "/v1/", Keys: []ProviderKey{{Value: "sk-bench"}}}),
		WithKeyStore(ks, KeyStoreOptions{Endpoint: "gw"}),
		WithMetering(l, MeteringOptions{Credits: true, FeeBasisPoints: 500}))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = gw.Close() })
	return gw, token
}

// BenchmarkTranslatedStream measures a streamed answer of 20 content
// events served across formats (an OpenAI client and an Anthropic model,
// and the reverse) next to the same-format pass-through, in one run.
func BenchmarkTranslatedStream(b *testing.B) {
	up := benchUpstream(b)
	transport := &http.Transport{MaxIdleConnsPerHost: 64}
	b.Cleanup(transport.CloseIdleConnections)
	gw, err := New(WithHTTPClient(&http.Client{Transport: transport}),
		WithProvider(ProviderConfig{ID: "openai", BaseURL: up.URL + "/v1/", Keys: []ProviderKey{{Value: "sk-bench"}}}),
		WithProvider(ProviderConfig{ID: "anthropic", BaseURL: up.URL + "/v1/", Keys: []ProviderKey{{Value: "sk-bench"}}}))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = gw.Close() })
	for _, tc := range []struct{ name, path, model string }{
		{"passthrough-openai", "/v1/chat/completions", "gpt-4o-mini"},
		{"passthrough-anthropic", "/v1/messages", "claude-haiku-4-5"},
		{"openai-client-anthropic-model", "/v1/chat/completions", "claude-haiku-4-5"},
		{"anthropic-client-openai-model", "/v1/messages", "gpt-4o-mini"},
	} {
		body := []byte(`{"model":"` + tc.model + `","max_tokens":256,"stream":true,"messages":[{"role":"user","content":"Tell me something."}]}`)
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			w := &discardWriter{h: http.Header{}}
			for b.Loop() {
				w.reset()
				r := httptest.NewRequest(http.MethodPost, tc.path, bytes.NewReader(body))
				r.Header.Set("Content-Type", "application/json")
				gw.ServeHTTP(w, r)
				if w.status != http.StatusOK {
					b.Fatalf("status %d", w.status)
				}
			}
		})
	}
}

// benchPlanStrategies are three strategies over the full catalog: the
// first two yield nothing, so every request evaluates all three.
var benchPlanStrategies = []string{
	"ai.models.filter(m, m.metrics.error_rate.total > 0.5)",
	"ai.models.filter(m, m.max_context_window >= 1000000 && 'vision' in m.supported_features).onlyProviders(['groq'])",
	"ai.models.underCost('text.input', 3.0).sortBy(m, m.pricing.input)",
}

// perRequest makes each strategy read the request.
func perRequest(exprs []string) []string {
	out := make([]string, len(exprs))
	for i, e := range exprs {
		out[i] = "request.api == 'chat_completions' ? " + e + " : []"
	}
	return out
}

// BenchmarkPlan measures the plan phase of an "auto" chat request over
// the whole built-in catalog, without and with model selection strategies.
func BenchmarkPlan(b *testing.B) {
	for _, bc := range []struct {
		name string
		opts []Option
	}{
		{"no_strategies", nil},
		{"three_strategies", []Option{WithModelSelection(benchPlanStrategies...)}},
		// The same strategies made to read the request: evaluated for every
		// request instead of once per metrics refresh.
		{"three_strategies_per_request", []Option{WithModelSelection(perRequest(benchPlanStrategies)...)}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			gw, err := New(append([]Option{WithProvider(ProviderConfig{ID: "openai", Keys: []ProviderKey{{Value: "sk-bench"}}})}, bc.opts...)...)
			if err != nil {
				b.Fatal(err)
			}
			defer gw.Close()
			body := []byte(`{"model":"auto","messages":[{"role":"user","content":"Hi"}]}`)
			ctx, cancel := context.WithCancel(context.Background()) // cancellable, as a server's are
			defer cancel()
			r := httptest.NewRequestWithContext(ctx, http.MethodPost, "/v1/chat/completions", nil)
			w := &discardWriter{h: http.Header{}}
			parsed, perr := parseBody(body)
			if perr != nil {
				b.Fatal(perr)
			}
			b.ReportAllocs()
			for b.Loop() {
				c := call{g: gw, rt: gw.routing.Load(), w: w, r: r, surface: "chat-completions", format: "openai", body: body, parsed: parsed}
				c.cfg = c.rt.cfg
				if e := c.plan(); e != nil {
					b.Fatal(e)
				}
				if len(c.cands) == 0 {
					b.Fatal("no candidates")
				}
			}
		})
	}
}

// BenchmarkPacedStream relays streams whose chunks arrive 2 ms apart, 16
// at a time, through a plain httputil.ReverseProxy and through llmgate, and
// reports the process CPU per stream (cpu-ns/op, the upstream's included):
// the relay's cost where every chunk wakes the proxy up, as in the load
// benchmark's streaming scenario, without its noise.
func BenchmarkPacedStream(b *testing.B) {
	stream := providertest.OpenAIChatStream("gpt-4o-mini", benchDeltas(), providertest.Usage{Input: 25, Output: 20}, true).StreamBytes()
	events := bytes.SplitAfter(stream, []byte("\n\n"))
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/event-stream")
		f := w.(http.Flusher)
		for _, ev := range events {
			_, _ = w.Write(ev)
			f.Flush()
			time.Sleep(2 * time.Millisecond)
		}
	}))
	b.Cleanup(up.Close)
	gw, proxy := benchPair(b, up.URL)
	body := []byte(benchRequest + `,"stream":true,"stream_options":{"include_usage":true}}`)
	for _, h := range []struct {
		name string
		h    http.Handler
	}{{"reverseproxy", proxy}, {"llmgate", gw}} {
		b.Run(h.name, func(b *testing.B) {
			defer benchcpu.Report(b)()
			b.SetParallelism(16)
			b.RunParallel(func(pb *testing.PB) {
				w := &discardWriter{h: http.Header{}}
				for pb.Next() {
					w.reset()
					r := httptest.NewRequest(http.MethodPost, "/v1/chat/completions", bytes.NewReader(body))
					r.Header.Set("Content-Type", "application/json")
					h.h.ServeHTTP(w, r)
					if w.status != http.StatusOK {
						b.Errorf("status %d", w.status)
						return
					}
				}
			})
		})
	}
}
