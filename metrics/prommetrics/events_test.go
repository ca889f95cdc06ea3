package prommetrics

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	gateway "github.com/llmgate/gateway"
	"github.com/llmgate/gateway/catalog"
	"github.com/llmgate/gateway/providers"
	"github.com/llmgate/gateway/tokens"
)

// benchGateway is a gateway whose catalog labels the events of the
// benchmarks; it serves nothing.
func benchGateway(tb testing.TB, e *Exporter) {
	tb.Helper()
	gw, err := gateway.New(gateway.WithProvider(gateway.ProviderConfig{ID: "openai", Keys: []gateway.ProviderKey{{Value: "sk-1"}}}),
		gateway.WithEventSink(e))
	require.NoError(tb, err)
	tb.Cleanup(func() { _ = gw.Close() })
	e.Bind(gw)
}

// streamEvent is a typical event: one streamed chat request served by its
// first attempt, with usage.
func streamEvent() *gateway.Event {
	return &gateway.Event{
		Status: 200, Surface: providers.SurfaceChatCompletions, Stream: true, ServedBy: "openai:gpt-4o-mini",
		Attempts:      []gateway.Attempt{{Provider: "openai", Model: "gpt-4o-mini", KeyID: "key-1", Status: 200, Duration: 800 * time.Millisecond}},
		Usage:         tokens.Usage{InputTokens: 1200, OutputTokens: 300, CacheReadTokens: 1024},
		UsageReported: true, Latency: 801 * time.Millisecond, GatewayLatency: time.Millisecond, TimeToFirstByte: 200 * time.Millisecond,
	}
}

// failoverEvent failed over from a 429 on one key to another key, after
// skipping a cooled one.
func failoverEvent() *gateway.Event {
	ev := streamEvent()
	ev.Stream = false
	ev.Attempts = []gateway.Attempt{
		{Provider: "openai", Model: "gpt-4o-mini", KeyID: "key-1", Skipped: true, Error: gateway.AttemptSkippedCooldown},
		{Provider: "openai", Model: "gpt-4o-mini", KeyID: "key-2", Status: 429, Error: gateway.AttemptStatus, Duration: time.Millisecond},
		{Provider: "openai", Model: "gpt-4o-mini", KeyID: "key-3", Status: 200, Duration: 800 * time.Millisecond},
	}
	return ev
}

func TestHandleEvent(t *testing.T) {
	e, err := New(Options{})
	require.NoError(t, err)
	benchGateway(t, e)
	ctx := context.Background()
	e.HandleEvent(ctx, failoverEvent())
	e.HandleEvent(ctx, streamEvent())
	failed := streamEvent()
	failed.Err = &gateway.Error{Kind: gateway.KindStreamFailed, Message: "upstream went away"}
	e.HandleEvent(ctx, failed)

	mini := func(extra ...string) []string { return append([]string{"openai", "gpt-4o-mini"}, extra...) }
	require.Equal(t, 2.0, testutil.ToFloat64(e.requests.WithLabelValues("200", "")))
	require.Equal(t, 1.0, testutil.ToFloat64(e.requests.WithLabelValues("200", "stream_failed")))
	require.Equal(t, 3.0, testutil.ToFloat64(e.attempts.WithLabelValues(mini("ok")...)))
	require.Equal(t, 1.0, testutil.ToFloat64(e.attempts.WithLabelValues(mini("http_status")...)))
	require.Equal(t, 1.0, testutil.ToFloat64(e.skipped.WithLabelValues(mini("key_cooldown")...)))
	require.Equal(t, 1.0, testutil.ToFloat64(e.failovers.WithLabelValues(mini()...)))
	require.Equal(t, 1, testutil.CollectAndCount(e.timeToFirstToken), "a stream that failed after its first token still had one")

	// Cached prompt tokens are priced at the cache read price.
	p := modelPricing(t, e, "openai", "gpt-4o-mini")
	require.NotZero(t, p.CacheRead)
	one := float64((1200-1024)*p.Input+1024*p.CacheRead+300*p.Output) / 1e12
	require.InEpsilon(t, 3*one, testutil.ToFloat64(e.cost.WithLabelValues(mini()...)), 1e-9)
}

func modelPricing(t *testing.T, e *Exporter, provider, model string) catalog.Pricing {
	t.Helper()
	p, ok := e.gw.Load().Catalog().Provider(provider)
	require.True(t, ok)
	m, ok := p.Model(model)
	require.True(t, ok)
	return m.Pricing
}

func TestCost(t *testing.T) {
	p := catalog.Pricing{Input: 2_500_000, Output: 10_000_000, CacheRead: 1_250_000}
	for _, tc := range []struct {
		name                    string
		in, out, cr, cw         int64
		want                    float64
		p                       catalog.Pricing
		withoutCacheWritePrices bool
	}{
		{name: "plain", in: 1_000_000, out: 1_000_000, want: 12.5, p: p},
		{name: "cache read", in: 1_000_000, cr: 1_000_000, want: 1.25, p: p},
		{name: "cache write at the input price", in: 1_000_000, cw: 1_000_000, want: 2.5, p: p},
		{name: "one token", in: 1, want: 2.5e-6, p: p},
		{name: "negative counts", in: -5, out: -5, want: 0, p: p},
		{name: "cached above input", in: 10, cr: 20, want: 20 * 1.25e-6, p: p},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.InDelta(t, tc.want, cost(tc.p, tc.in, tc.out, tc.cr, tc.cw), 1e-12)
		})
	}
}

func TestHandleEventDoesNotAllocate(t *testing.T) {
	e, err := New(Options{})
	require.NoError(t, err)
	benchGateway(t, e)
	ctx := context.Background()
	for _, ev := range []*gateway.Event{streamEvent(), failoverEvent()} {
		e.HandleEvent(ctx, ev)
		require.Zero(t, testing.AllocsPerRun(100, func() { e.HandleEvent(ctx, ev) }))
	}
	errored := streamEvent()
	errored.Err = &gateway.Error{Kind: gateway.KindAllProvidersFailed, Err: errors.New("x")}
	errored.ServedBy = ""
	errored.Attempts = nil
	e.HandleEvent(ctx, errored)
	require.Zero(t, testing.AllocsPerRun(100, func() { e.HandleEvent(ctx, errored) }))
}

// BenchmarkHandleEvent measures what the exporter adds to each request:
// the target is at most 1 µs.
func BenchmarkHandleEvent(b *testing.B) {
	for _, bc := range []struct {
		name string
		ev   *gateway.Event
	}{{"stream", streamEvent()}, {"failover", failoverEvent()}} {
		b.Run(bc.name, func(b *testing.B) {
			e, err := New(Options{})
			require.NoError(b, err)
			benchGateway(b, e)
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				e.HandleEvent(ctx, bc.ev)
			}
		})
		// Concurrent requests update the same counters.
		b.Run(bc.name+"/parallel", func(b *testing.B) {
			e, err := New(Options{})
			require.NoError(b, err)
			benchGateway(b, e)
			ctx := context.Background()
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					e.HandleEvent(ctx, bc.ev)
				}
			})
		})
	}
}
