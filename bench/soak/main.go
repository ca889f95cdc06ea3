// Command soak is the soak test of llmgate: many concurrent clients against
// an in-process gateway whose fake upstreams misbehave at random, checking
// every response against the gateway's documented promises and, at the
// end, that the process's goroutines, file descriptors and memory came back
// to their starting level.
//
// Usage, from the module root:
//
//	go run ./bench/soak [-duration 2m] [-clients 64] [-seed 1] [-fault-rate 0.45]
//
// CI runs:
//
//	go run ./bench/soak -duration 30s
//
// The gateway (gateway.New with an OpenAI-format and an Anthropic-format
// provider, several keys each) is served by a real http.Server on a
// loopback port; the fake upstreams are real HTTP servers on loopback too.
// Each client request is drawn from the seed and its sequence number: its
// API (chat completions or messages), JSON or stream, its model and
// fallback list ("models"), and what the client does to it (reads slowly,
// hangs up mid-stream, cancels). Each upstream request gets a fault drawn
// from the seed, the client request's marker (sent in "user" /
// "metadata.user_id", which the gateway carries across formats), the model
// and the key: error statuses, 429 with Retry-After, hangs past the
// per-attempt timeout, connection resets, truncated JSON, streams dropped,
// ended or stalled before or after their first content event, slow
// streams. The upstream sends its request ID back, the gateway relays it
// (Llmgate-Upstream-X-Request-Id / Llmgate-Upstream-Request-Id), and the
// client checks its response against the fault of the upstream request that
// served it.
//
// It prints a summary and exits with status 1 if any promise was broken,
// with examples of each violation. bench/soak/README.md describes what is
// checked.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	cfg := defaultConfig()
	flag.DurationVar(&cfg.duration, "duration", cfg.duration, "how long clients send requests (CI: 30s)")
	flag.IntVar(&cfg.clients, "clients", cfg.clients, "concurrent clients")
	flag.Uint64Var(&cfg.seed, "seed", cfg.seed, "seed of every request's shape and every upstream fault")
	flag.Float64Var(&cfg.faultRate, "fault-rate", cfg.faultRate, "probability that an upstream request gets a fault")
	flag.DurationVar(&cfg.attemptTimeout, "attempt-timeout", cfg.attemptTimeout, "the gateway's per-attempt timeout (and stream idle timeout)")
	flag.DurationVar(&cfg.totalTimeout, "total-timeout", cfg.totalTimeout, "the gateway's total timeout")
	flag.IntVar(&cfg.keysPerProvider, "keys", cfg.keysPerProvider, "keys per provider")
	flag.DurationVar(&cfg.settle, "settle", cfg.settle, "how long to wait after the run for goroutines and descriptors to go")
	flag.IntVar(&cfg.goroutineSlack, "goroutine-slack", cfg.goroutineSlack, "goroutines allowed above the start level after the run")
	flag.IntVar(&cfg.rssSlackMiB, "rss-slack", cfg.rssSlackMiB, "MiB of RSS allowed above the start level after the run")
	flag.IntVar(&cfg.doomedPerMille, "doomed", cfg.doomedPerMille, "requests in 1000 whose every upstream request hangs (total timeouts)")
	flag.IntVar(&cfg.examples, "examples", cfg.examples, "examples printed per kind of violation")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "Usage: go run ./bench/soak [flags]\n\nCI: go run ./bench/soak -duration 30s\n\nFlags:\n")
		flag.PrintDefaults()
	}
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	fmt.Fprintf(os.Stderr, "soak: %d clients for %v (seed %d); interrupt to stop early\n", cfg.clients, cfg.duration, cfg.seed)
	s, err := run(ctx, cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "soak:", err)
		os.Exit(2)
	}
	s.print(os.Stdout)
	if s.failed() {
		os.Exit(1)
	}
}
