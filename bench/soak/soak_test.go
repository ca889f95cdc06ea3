package main

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// knownGatewayIssues are the violations the soak found in the gateway that
// are reported and not fixed yet. TestSoak tolerates exactly these (and
// logs them); delete an entry when the gateway is fixed, so that it can
// never come back unnoticed. `go run ./bench/soak` fails on them
// regardless.
var knownGatewayIssues = map[string]string{}

// shortConfig is a soak of a few seconds.
func shortConfig() config {
	cfg := defaultConfig()
	cfg.duration = 2 * time.Second
	cfg.clients = 16
	cfg.seed = 42
	// Timeouts with a wide margin over the fake upstreams' delays (at most
	// 150ms), as the race detector and parallel test packages slow
	// everything down.
	cfg.attemptTimeout = time.Second
	cfg.totalTimeout = 3 * time.Second
	if raceEnabled {
		// The race detector's shadow memory is never returned to the OS.
		cfg.rssSlackMiB = 1 << 10
	}
	return cfg
}

func report(s *summary) string {
	var b bytes.Buffer
	s.print(&b)
	return b.String()
}

func TestSoak(t *testing.T) {
	s, err := run(context.Background(), shortConfig())
	require.NoError(t, err)
	out := report(s)
	t.Log("\n" + out)
	for _, k := range s.violationKinds() {
		if why, known := knownGatewayIssues[k]; known {
			t.Logf("known gateway issue seen: %s (%s)", k, why)
			continue
		}
		t.Errorf("violation: %s", k)
	}
	// The run exercised the paths it is meant to.
	require.Positive(t, s.count(classOKJSON), out)
	require.Positive(t, s.count(classOKStream), out)
	require.Positive(t, s.count(classStreamFailed), out)
	require.Positive(t, s.okCross(), out)
}

// cleanEnding is a broken gateway: it turns every in-stream error event
// into the stream's clean terminal event.
type cleanEnding struct {
	http.ResponseWriter
	buf []byte
}

func (w *cleanEnding) Write(b []byte) (int, error) {
	if !strings.HasPrefix(w.Header().Get("Content-Type"), "text/event-stream") {
		return w.ResponseWriter.Write(b)
	}
	w.buf = append(w.buf, b...)
	for {
		i := bytes.Index(w.buf, []byte("\n\n"))
		if i < 0 {
			return len(b), nil
		}
		ev := w.buf[:i+2]
		switch {
		case bytes.HasPrefix(ev, []byte("event: error")):
			ev = []byte("event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n")
		case bytes.HasPrefix(ev, []byte(`data: {"error"`)):
			ev = []byte("data: [DONE]\n\n")
		}
		if _, err := w.ResponseWriter.Write(ev); err != nil {
			return 0, err
		}
		w.buf = w.buf[i+2:]
	}
}

func (w *cleanEnding) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *cleanEnding) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// TestSoakNoticesACleanEndAfterAFailure runs the soak against a gateway
// broken on purpose: the soak must report it.
func TestSoakNoticesACleanEndAfterAFailure(t *testing.T) {
	cfg := shortConfig()
	cfg.duration = time.Second
	cfg.clients = 4
	cfg.faultRate = 1
	cfg.weights = faultWeights{}
	cfg.weights.stream[faultDropAfter] = 1 // every stream breaks after its first content event
	cfg.doomedPerMille = 0
	cfg.wrap = func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			h.ServeHTTP(&cleanEnding{ResponseWriter: w}, r)
		})
	}
	s, err := run(context.Background(), cfg)
	require.NoError(t, err)
	require.True(t, s.failed())
	require.Contains(t, s.violationKinds(), "stream ended cleanly after the upstream failed", report(s))
	require.Contains(t, report(s), "RESULT: FAIL")
}

func TestPlansAndFaultsAreDeterministic(t *testing.T) {
	for n := range uint64(50) {
		require.Equal(t, newPlan(7, n, 5), newPlan(7, n, 5))
	}
	w := defaultFaultWeights()
	for i := range 50 {
		key := string(rune('a' + i))
		a := pickFault(rngFor(7, "upstream", key), 0.5, i%2 == 0, &w)
		b := pickFault(rngFor(7, "upstream", key), 0.5, i%2 == 0, &w)
		require.Equal(t, a, b)
	}
	seen := map[fault]bool{}
	rng := rngFor(1, "mix")
	for range 5000 {
		seen[pickFault(rng, 1, true, &w)] = true
		seen[pickFault(rng, 1, false, &w)] = true
	}
	require.Len(t, seen, int(numFaults)-1, "every fault is drawn (faultNone needs a rate below 1)")
}
