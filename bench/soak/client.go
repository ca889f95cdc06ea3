package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/llmgate/gateway/providers"
)

// clientFault is what a client does to its own request.
type clientFault uint8

const (
	clientNormal     clientFault = iota
	clientSlowReader             // reads the response in small pieces, sleeping between reads
	clientDisconnect             // hangs up after the first content event (JSON: after the headers)
	clientCancel                 // cancels after a random delay, wherever the request is
	numClientFaults
)

var clientFaultNames = [numClientFaults]string{"none", "slow reader", "disconnect mid-stream", "cancel at random"}

func (f clientFault) String() string { return clientFaultNames[f] }

// soakModels are the models clients ask for: two at each provider.
var soakModels = []string{"openai:gpt-4o-mini", "openai:gpt-4.1-mini", "anthropic:claude-haiku-4-5", "anthropic:claude-sonnet-4-5"}

// plan is one client request, drawn from the seed and its sequence number.
type plan struct {
	n            uint64
	marker       string // in "user" (OpenAI) or "metadata.user_id" (Anthropic); the upstream keys its faults on it
	format       providers.Format
	stream       bool
	models       []string // "model" then the "models" fallback list
	includeUsage bool     // OpenAI streams: stream_options.include_usage
	cfault       clientFault
	readChunk    int           // slow reader: bytes per read
	readDelay    time.Duration // slow reader: sleep between reads
	cancelAfter  time.Duration // clientCancel
}

// doomedSuffix ends the marker of a request whose every upstream request
// hangs, so that it runs into the total timeout (or runs out of attempts).
const doomedSuffix = "-doomed"

// newPlan draws request n of the run with the seed; doomed requests are
// doomedPerMille in 1000.
func newPlan(seed, n uint64, doomedPerMille int) *plan {
	p := &plan{n: n, marker: fmt.Sprintf("soak-%d-%d", seed, n)}
	rng := rngFor(seed, "plan", p.marker)
	if rng.IntN(1000) < doomedPerMille {
		p.marker += doomedSuffix
	}
	p.format = providers.FormatOpenAI
	if rng.IntN(2) == 0 {
		p.format = providers.FormatAnthropic
	}
	p.stream = rng.IntN(2) == 0
	perm := rng.Perm(len(soakModels))
	nModels := 1
	if rng.IntN(10) < 4 {
		nModels += 1 + rng.IntN(2)
	}
	for _, i := range perm[:nModels] {
		p.models = append(p.models, soakModels[i])
	}
	p.includeUsage = p.format == providers.FormatOpenAI && p.stream && rng.IntN(2) == 0
	switch x := rng.IntN(100); {
	case x < 8:
		p.cfault = clientSlowReader
		p.readChunk = 16 << rng.IntN(3)
		p.readDelay = time.Duration(1+rng.IntN(4)) * time.Millisecond
	case x < 14:
		p.cfault = clientDisconnect
	case x < 20:
		p.cfault = clientCancel
		p.cancelAfter = time.Duration(5+rng.IntN(700)) * time.Millisecond
	}
	return p
}

// path returns the gateway path of the plan's API.
func (p *plan) path() string {
	if p.format == providers.FormatAnthropic {
		return "/v1/messages"
	}
	return "/v1/chat/completions"
}

// body returns the request body.
func (p *plan) body() []byte {
	type message struct {
		Role    string `json:"role"`
		Content string `json:"content"`
	}
	type streamOptions struct {
		IncludeUsage bool `json:"include_usage"`
	}
	type metadata struct {
		UserID string `json:"user_id"`
	}
	req := struct {
		Model         string         `json:"model"`
		Models        []string       `json:"models,omitempty"`
		MaxTokens     int            `json:"max_tokens"`
		Messages      []message      `json:"messages"`
		Stream        bool           `json:"stream,omitempty"`
		StreamOptions *streamOptions `json:"stream_options,omitempty"`
		User          string         `json:"user,omitempty"`
		Metadata      *metadata      `json:"metadata,omitempty"`
	}{
		Model: p.models[0], Models: p.models[1:], MaxTokens: 256, Stream: p.stream,
		Messages: []message{{Role: "user", Content: "Say hello to " + p.marker + "."}},
	}
	if p.includeUsage {
		req.StreamOptions = &streamOptions{IncludeUsage: true}
	}
	if p.format == providers.FormatAnthropic {
		req.Metadata = &metadata{UserID: p.marker}
	} else {
		req.User = p.marker
	}
	b, err := json.Marshal(req)
	if err != nil {
		panic(err) // plain strings and numbers
	}
	return b
}

// expectedText is the answer text the client must receive.
func (p *plan) expectedText() string { return strings.Join(replyDeltas(p.marker), "") }

func (p *plan) String() string {
	kind := "JSON"
	if p.stream {
		kind = "stream"
		if p.includeUsage {
			kind += " (include_usage)"
		}
	}
	return fmt.Sprintf("%s: %s client, POST %s, %s, model %s, models %v, client fault %q",
		p.marker, p.format, p.path(), kind, p.models[0], p.models[1:], p.cfault)
}

// result is what a client saw.
type result struct {
	status   int // 0: no response
	header   http.Header
	body     []byte
	err      error // transport or body read error
	canceled bool  // the client's own cancel (clientCancel) fired before the end
	hungUp   bool  // the client hung up on purpose (clientDisconnect)
	timedOut bool  // the gateway sent nothing for the client's whole silence limit
	began    time.Time
	ended    time.Time
	stall    time.Duration // the longest process stall while the request ran (see stallMonitor)
}

// do sends p to the gateway at base and reads the response as p says. It
// gives up when the gateway sends nothing (no headers, no body bytes) for
// silence: a slow response is not a hung one.
func do(hc *http.Client, base string, p *plan, silence time.Duration) *result {
	r := &result{began: time.Now()}
	defer func() { r.ended = time.Now() }()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var silent atomic.Bool
	watchdog := time.AfterFunc(silence, func() {
		silent.Store(true)
		cancel()
	})
	defer watchdog.Stop()
	var canceled atomic.Bool
	if p.cfault == clientCancel {
		t := time.AfterFunc(p.cancelAfter, func() {
			canceled.Store(true)
			cancel()
		})
		defer t.Stop()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+p.path(), bytes.NewReader(p.body()))
	if err != nil {
		r.err = err
		return r
	}
	req.Header.Set("Content-Type", "application/json")
	if p.format == providers.FormatAnthropic {
		req.Header.Set("X-Api-Key", "soak-client-key")
		req.Header.Set("Anthropic-Version", "2023-06-01")
	} else {
		req.Header.Set("Authorization", "Bearer soak-client-key")
	}
	if p.stream {
		req.Header.Set("Accept", "text/event-stream")
	}
	resp, err := hc.Do(req)
	finish := func() {
		r.canceled = canceled.Load()
		r.timedOut = silent.Load()
	}
	if err != nil {
		r.err = err
		finish()
		return r
	}
	defer resp.Body.Close()
	watchdog.Reset(silence)
	r.status, r.header = resp.StatusCode, resp.Header
	if p.cfault == clientDisconnect && !p.stream && resp.StatusCode == http.StatusOK {
		r.hungUp = true
		cancel()
		return r
	}
	chunk := 4096
	if p.cfault == clientSlowReader {
		chunk = p.readChunk
	}
	buf := make([]byte, chunk)
	for {
		n, err := resp.Body.Read(buf)
		r.body = append(r.body, buf[:n]...)
		if n > 0 {
			watchdog.Reset(silence)
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				r.err = err
			}
			break
		}
		if p.cfault == clientSlowReader {
			time.Sleep(p.readDelay)
		}
		if p.cfault == clientDisconnect && p.stream && r.status == http.StatusOK && n > 0 && parseStream(p.format, r.body, false).text != "" {
			r.hungUp = true
			cancel()
			break
		}
	}
	finish()
	return r
}
