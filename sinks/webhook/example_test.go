package webhook_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"time"

	gateway "github.com/llmgate/gateway"
	"github.com/llmgate/gateway/providers"
	"github.com/llmgate/gateway/sinks/webhook"
)

func Example() {
	// A collector that prints what it receives.
	collector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		fmt.Println(r.Method, r.Header.Get("Content-Type"), r.Header.Get("Authorization"))
		fmt.Println(string(body))
	}))
	defer collector.Close()

	sink, err := webhook.New(webhook.Options{
		URL:     collector.URL + "/ingest",
		Headers: map[string]providers.Secret{"Authorization": "Bearer collector-token"},
	})
	if err != nil {
		panic(err)
	}
	// gw, err := gateway.New(gateway.WithEventSink(sink), ...); the gateway
	// calls HandleEvent once per request.
	for _, id := range []string{"req-1", "req-2"} {
		sink.HandleEvent(context.Background(), &gateway.Event{
			RequestID: id, Time: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Method: "POST", Path: "/v1/messages", Status: 200,
		})
	}
	// Close the sink after the gateway: it sends what is queued, for at
	// most as long as its context allows.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := sink.Close(ctx); err != nil {
		panic(err)
	}
	fmt.Printf("%+v\n", sink.Stats())
	// Output:
	// POST application/json Bearer collector-token
	// {"events":[{"request_id":"req-1","time":"2026-01-02T03:04:05Z","method":"POST","path":"/v1/messages","stream":false,"status":200,"usage":{"input_tokens":0,"output_tokens":0},"usage_reported":false,"latency_ns":0,"gateway_latency_ns":0,"ttfb_ns":0},{"request_id":"req-2","time":"2026-01-02T03:04:05Z","method":"POST","path":"/v1/messages","stream":false,"status":200,"usage":{"input_tokens":0,"output_tokens":0},"usage_reported":false,"latency_ns":0,"gateway_latency_ns":0,"ttfb_ns":0}]}
	// {Sent:2 Dropped:0 Rejected:0 Failed:0 Queued:0 Batches:1 FailedBatches:0 Retries:0}
}
