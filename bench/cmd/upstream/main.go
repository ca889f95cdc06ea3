// Command upstream is the fake OpenAI and Anthropic API of the llmgate load
// benchmark. It answers POST .../chat/completions and POST .../messages (any
// path prefix) with pre-built responses, so that it costs as little CPU as
// possible and the benchmark measures the proxy in front of it rather than
// the upstream. The responses are written by providers/providertest's
// builders, in the APIs' exact shapes, once per set of parameters:
//
//   - for a request without "stream": true, a JSON chat.completion (about
//     1 KB, usage included) or an Anthropic Message with -size bytes of
//     text;
//   - for a streaming chat completions request, a text/event-stream of
//     chat.completion.chunk events shaped like OpenAI's: the role chunk and
//     the first content chunk together, then one content chunk every -delay,
//     then the finish_reason chunk, the usage chunk (choices: []) and
//     "data: [DONE]". A stream has -events content chunks, so -events+4 data
//     events in all, and lasts (-events-1) × -delay;
//   - for a streaming Messages request, Anthropic's events: message_start,
//     content_block_start, ping and the first text delta together, then one
//     content_block_delta every -delay, then content_block_stop,
//     message_delta (with usage) and message_stop.
//
// The query string of the request URL overrides the flags for that request:
// events=N, delay=DURATION, latency=DURATION (wait before answering) and
// size=BYTES (JSON answer content). A proxy under test is pointed at an
// upstream URL that carries such a query, so that no client header or body
// field has to pass through it.
//
// On start it prints "LISTEN http://host:port" on stdout, which is how the
// benchmark driver learns its address. SIGINT or SIGTERM stops it.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/llmgate/gateway/bench/internal/listen"
	"github.com/llmgate/gateway/providers"
	"github.com/llmgate/gateway/providers/providertest"
)

// maxCachedProfiles bounds the cache of responses built for query strings.
const maxCachedProfiles = 64

func main() {
	listenAddr := flag.String("listen", "127.0.0.1:0", "listen address")
	var def params
	def.register(flag.CommandLine)
	flag.Parse()
	if err := def.validate(); err != nil {
		log.Fatalf("upstream: %v", err)
	}
	s := &server{def: build(def), cache: map[string]*profile{}}
	if err := listen.Serve(context.Background(), *listenAddr, s, os.Stdout); err != nil {
		log.Fatalf("upstream: %v", err)
	}
}

// params shape the responses.
type params struct {
	events  int           // content chunks per stream
	delay   time.Duration // between content chunks
	latency time.Duration // before the first byte of the answer
	size    int           // bytes of JSON answer content
}

// register defines the flags that set p, with p's defaults. The query
// parameters of a request go through the same definitions.
func (p *params) register(fs *flag.FlagSet) {
	fs.IntVar(&p.events, "events", 20, "content chunks per streamed response")
	fs.DurationVar(&p.delay, "delay", 5*time.Millisecond, "pause between streamed content chunks")
	fs.DurationVar(&p.latency, "latency", 0, "pause before the response (JSON) or its first event (stream)")
	fs.IntVar(&p.size, "size", 600, "bytes of assistant content in a JSON response")
}

// withQuery returns p with the query's parameters applied.
func (p params) withQuery(rawQuery string) (params, error) {
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		return p, err
	}
	fs := flag.NewFlagSet("query", flag.ContinueOnError)
	var out params
	out.register(fs)
	out = p // keep p's values; the flags now point at out
	for name, vs := range q {
		if err := fs.Set(name, vs[len(vs)-1]); err != nil {
			return p, fmt.Errorf("%s: %w", name, err)
		}
	}
	return out, out.validate()
}

func (p params) validate() error {
	switch {
	case p.events < 1 || p.events > 100000:
		return fmt.Errorf("events must be in [1, 100000], got %d", p.events)
	case p.delay < 0 || p.latency < 0:
		return errors.New("delay and latency must not be negative")
	case p.size < 1 || p.size > 64<<20:
		return fmt.Errorf("size must be in [1, 64 MiB], got %d", p.size)
	}
	return nil
}

// profile is the pre-built answer for one set of params. Read-only once
// built, so it is shared by concurrent requests.
type profile struct {
	params
	openAI, openAIStream       providertest.Step
	anthropic, anthropicStream providertest.Step
}

// server serves the fake API. Safe for concurrent use.
type server struct {
	def   *profile
	bufs  sync.Pool // *bytes.Buffer for request bodies
	mu    sync.Mutex
	cache map[string]*profile // by raw query
}

func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	format := providers.FormatOpenAI
	switch {
	case strings.HasSuffix(r.URL.Path, "/chat/completions"):
	case strings.HasSuffix(r.URL.Path, "/messages"):
		format = providers.FormatAnthropic
	default:
		providertest.Error(format, http.StatusNotFound, "no route for "+r.URL.Path).ServeHTTP(w, r)
		return
	}
	if r.Method != http.MethodPost {
		providertest.Error(format, http.StatusMethodNotAllowed, "use POST").ServeHTTP(w, r)
		return
	}
	buf, _ := s.bufs.Get().(*bytes.Buffer)
	if buf == nil {
		buf = new(bytes.Buffer)
	}
	buf.Reset()
	_, err := buf.ReadFrom(r.Body)
	stream := isStream(buf.Bytes())
	s.bufs.Put(buf)
	if err != nil {
		providertest.Error(format, http.StatusBadRequest, "reading the body: "+err.Error()).ServeHTTP(w, r)
		return
	}
	p, err := s.profile(r.URL.RawQuery)
	if err != nil {
		providertest.Error(format, http.StatusBadRequest, "bad query: "+err.Error()).ServeHTTP(w, r)
		return
	}
	var step *providertest.Step
	switch {
	case format == providers.FormatAnthropic && stream:
		step = &p.anthropicStream
	case format == providers.FormatAnthropic:
		step = &p.anthropic
	case stream:
		step = &p.openAIStream
	default:
		step = &p.openAI
	}
	step.ServeHTTP(w, r)
}

// profile returns the answer for a request's query string.
func (s *server) profile(rawQuery string) (*profile, error) {
	if rawQuery == "" {
		return s.def, nil
	}
	s.mu.Lock()
	p := s.cache[rawQuery]
	s.mu.Unlock()
	if p != nil {
		return p, nil
	}
	prm, err := s.def.params.withQuery(rawQuery)
	if err != nil {
		return nil, err
	}
	p = build(prm)
	s.mu.Lock()
	if len(s.cache) < maxCachedProfiles {
		s.cache[rawQuery] = p
	}
	s.mu.Unlock()
	return p, nil
}

// isStream reports whether a JSON request body has "stream": true at any
// depth. It is a byte scan, not a parse: the benchmark's requests are well
// formed, and the upstream must stay cheap.
func isStream(body []byte) bool {
	const key = `"stream"`
	for {
		i := bytes.Index(body, []byte(key))
		if i < 0 {
			return false
		}
		body = bytes.TrimLeft(body[i+len(key):], " \t\r\n")
		if len(body) > 0 && body[0] == ':' {
			if bytes.HasPrefix(bytes.TrimLeft(body[1:], " \t\r\n"), []byte("true")) {
				return true
			}
		}
	}
}

// Constant parts of the responses, as the APIs send them.
const (
	completionID       = "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT"
	messageID          = "msg_01XFDUDYJgAACzvnptvVoYEL"
	created            = 1741570283
	servedModel        = "gpt-4o-mini-2024-07-18"
	servedClaude       = "claude-haiku-4-5-20251001"
	fingerprint        = "fp_06737a9306"
	promptTokens       = 262
	anthropicStreamEnd = 3 // content_block_stop, message_delta, message_stop
)

// answerText is cycled through, word by word, to make the answer text.
const answerText = `Go is a statically typed, compiled language designed at Google.
It is known for its simplicity, fast compilation, garbage collection, and built-in support for
concurrency through goroutines and channels, which make network servers easy to write.`

// build renders the responses for p.
func build(p params) *profile {
	words := strings.Fields(answerText)
	var text strings.Builder
	for i := 0; text.Len() < p.size; i++ {
		if i > 0 {
			text.WriteByte(' ')
		}
		text.WriteString(words[i%len(words)])
	}
	deltas := make([]string, p.events)
	for i := range deltas {
		w := words[i%len(words)]
		if i > 0 {
			w = " " + w
		}
		deltas[i] = w
	}

	chat := providertest.Reply{ID: completionID, Created: created, Fingerprint: fingerprint, Model: servedModel,
		Deltas: []string{text.String()[:p.size]}, Usage: providertest.Usage{Input: promptTokens, Output: p.size / 4}}
	msg := chat
	msg.ID, msg.Model = messageID, servedClaude
	chatStream := chat
	chatStream.Deltas, chatStream.Usage.Output = deltas, p.events
	msgStream := chatStream
	msgStream.ID, msgStream.Model = messageID, servedClaude

	pr := &profile{
		params:    p,
		openAI:    providertest.OpenAIChatReply(chat),
		anthropic: providertest.AnthropicReply(msg),
		// The role chunk and the first content chunk go out together, as
		// OpenAI sends them; the finish chunk, the usage chunk and [DONE]
		// too.
		openAIStream: paced(providertest.OpenAIChatReplyStream(chatStream, true), 2, 3, p.delay),
		// message_start, content_block_start, ping and the first delta go
		// out together, and so do the three closing events.
		anthropicStream: paced(providertest.AnthropicReplyStream(msgStream), 4, anthropicStreamEnd, p.delay),
	}
	for _, step := range []*providertest.Step{&pr.openAI, &pr.anthropic, &pr.openAIStream, &pr.anthropicStream} {
		step.HeaderDelay = p.latency
	}
	return pr
}

// paced returns step with its first head events sent as one and its last
// tail events as one, each event in between delay after the previous one.
// The events are pre-encoded (Event.Raw), so serving them copies bytes.
func paced(step providertest.Step, head, tail int, delay time.Duration) providertest.Step {
	join := func(evs []providertest.Event) providertest.Event {
		var b []byte
		for _, ev := range evs {
			b = append(b, ev.Bytes()...)
		}
		return providertest.Event{Raw: string(b)}
	}
	evs := step.Events
	out := []providertest.Event{join(evs[:head])}
	for _, ev := range evs[head : len(evs)-tail] {
		out = append(out, providertest.Event{Raw: string(ev.Bytes()), Delay: delay})
	}
	step.Events = append(out, join(evs[len(evs)-tail:]))
	return step
}
