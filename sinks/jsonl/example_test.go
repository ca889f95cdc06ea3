package jsonl_test

import (
	"context"
	"fmt"
	"os"
	"time"

	gateway "github.com/llmgate/gateway"
	"github.com/llmgate/gateway/sinks/jsonl"
)

func Example() {
	sink, err := jsonl.New(os.Stdout, jsonl.Options{})
	if err != nil {
		panic(err)
	}
	// gw, err := gateway.New(gateway.WithEventSink(sink), ...); the gateway
	// calls HandleEvent once per request.
	sink.HandleEvent(context.Background(), &gateway.Event{
		RequestID: "req-1", Time: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		Method: "POST", Path: "/v1/chat/completions", Status: 200, ServedBy: "openai:gpt-4o-mini",
	})
	// Close the sink after the gateway: it writes what is queued.
	if err := sink.Close(context.Background()); err != nil {
		panic(err)
	}
	fmt.Printf("%+v\n", sink.Stats())
	// Output:
	// {"request_id":"req-1","time":"2026-01-02T03:04:05Z","method":"POST","path":"/v1/chat/completions","stream":false,"served_by":"openai:gpt-4o-mini","status":200,"usage":{"input_tokens":0,"output_tokens":0},"usage_reported":false,"latency_ns":0,"gateway_latency_ns":0,"ttfb_ns":0}
	// {Written:1 Dropped:0 Failed:0 Queued:0}
}
