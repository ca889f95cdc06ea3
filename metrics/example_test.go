package metrics_test

import (
	"fmt"
	"time"

	"github.com/llmgate/gateway/metrics"
)

func ExampleRecorder() {
	// A fake clock makes the example deterministic; a gateway leaves Now
	// unset.
	now := time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)
	rec, err := metrics.NewRecorder(metrics.Options{
		Window:  time.Minute,
		Buckets: 6,
		Now:     func() time.Time { return now },
	})
	if err != nil {
		fmt.Println(err)
		return
	}

	// One attempt against a model through one of the provider's keys.
	model, key := rec.Model("OpenAI", "gpt-4o"), rec.Key("openai", "key-1")
	ma, ka := model.Begin(), key.Begin()
	fmt.Println("in flight:", key.InFlight())
	now = now.Add(1200 * time.Millisecond)
	ok := metrics.Outcome{Status: 200, TTFT: 300 * time.Millisecond}
	ma.End(ok)
	ka.End(ok)

	// Attempts timed elsewhere, e.g. replayed from a log.
	key.Observe(800*time.Millisecond, metrics.Outcome{Status: 429})
	key.Observe(2*time.Second, metrics.Outcome{Timeout: true})

	now = now.Add(time.Second)
	rec.Each(func(kind metrics.Kind, provider, name string, st *metrics.Stats) bool {
		fmt.Printf("%s %s/%s: %d requests, %.0f%% errors (%.0f%% rate limited), avg %v, ttft %v\n",
			kind, provider, name, st.Requests, 100*st.ErrorRate.Total, 100*st.ErrorRate.RateLimit,
			st.Latency.UpstreamAvg, st.Latency.TTFTAvg)
		return true
	})
	// Output:
	// in flight: 1
	// model openai/gpt-4o: 1 requests, 0% errors (0% rate limited), avg 1.2s, ttft 300ms
	// key openai/key-1: 3 requests, 67% errors (33% rate limited), avg 1.333333333s, ttft 300ms
}
