// Command upstream is the fake OpenAI chat completions server of the llmgate
// load benchmark. It answers POST .../chat/completions (any path prefix)
// with pre-built bytes, so that it costs as little CPU as possible and the
// benchmark measures the proxy in front of it rather than the upstream:
//
//   - a JSON chat.completion of about 1 KB, usage included, for a request
//     without "stream": true;
//   - for a streaming request, a text/event-stream of chat.completion.chunk
//     events shaped like OpenAI's: the role chunk and the first content
//     chunk together, then one content chunk every -delay, then the
//     finish_reason chunk, the usage chunk (choices: []) and "data: [DONE]".
//     A stream has -events content chunks, so -events+4 data events in all,
//     and lasts (-events-1) × -delay.
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
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// maxCachedProfiles bounds the cache of responses built for query strings.
const maxCachedProfiles = 64

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "listen address")
	var def params
	flag.IntVar(&def.events, "events", 20, "content chunks per streamed response")
	flag.DurationVar(&def.delay, "delay", 5*time.Millisecond, "pause between streamed content chunks")
	flag.DurationVar(&def.latency, "latency", 0, "pause before the response (JSON) or its first event (stream)")
	flag.IntVar(&def.size, "size", 600, "bytes of assistant content in a JSON response")
	flag.Parse()
	if err := def.validate(); err != nil {
		log.Fatalf("upstream: %v", err)
	}

	s := &server{def: build(def), cache: map[string]*profile{}}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatalf("upstream: %v", err)
	}
	srv := &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	fmt.Printf("LISTEN http://%s\n", ln.Addr())
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
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
	json   []byte   // the whole JSON response
	first  []byte   // role chunk and first content chunk
	chunks [][]byte // the other content chunks, one event each
	tail   []byte   // finish chunk, usage chunk, [DONE]
}

// server serves the fake API. Safe for concurrent use.
type server struct {
	def   *profile
	bufs  sync.Pool // *bytes.Buffer for request bodies
	mu    sync.Mutex
	cache map[string]*profile // by raw query
}

func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !strings.HasSuffix(r.URL.Path, "/chat/completions") {
		http.Error(w, `{"error":{"message":"not found","type":"invalid_request_error"}}`, http.StatusNotFound)
		return
	}
	if r.Method != http.MethodPost {
		http.Error(w, `{"error":{"message":"use POST","type":"invalid_request_error"}}`, http.StatusMethodNotAllowed)
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
		http.Error(w, `{"error":{"message":"bad body","type":"invalid_request_error"}}`, http.StatusBadRequest)
		return
	}
	p, err := s.profile(r.URL.RawQuery)
	if err != nil {
		http.Error(w, `{"error":{"message":"bad query","type":"invalid_request_error"}}`, http.StatusBadRequest)
		return
	}
	if p.latency > 0 && !sleep(r.Context(), p.latency) {
		return
	}
	h := w.Header()
	h.Set("X-Request-Id", "req_bench0000000000000000000000")
	if !stream {
		h.Set("Content-Type", "application/json")
		h.Set("Content-Length", strconv.Itoa(len(p.json)))
		_, _ = w.Write(p.json)
		return
	}
	h.Set("Content-Type", "text/event-stream; charset=utf-8")
	h.Set("Cache-Control", "no-cache")
	rc := http.NewResponseController(w)
	if _, err := w.Write(p.first); err != nil {
		return
	}
	if rc.Flush() != nil {
		return
	}
	var t *time.Timer
	for _, c := range p.chunks {
		if p.delay > 0 {
			if t == nil {
				t = time.NewTimer(p.delay)
				defer t.Stop()
			} else {
				t.Reset(p.delay)
			}
			select {
			case <-t.C:
			case <-r.Context().Done():
				return
			}
		}
		if _, err := w.Write(c); err != nil {
			return
		}
		if rc.Flush() != nil {
			return
		}
	}
	_, _ = w.Write(p.tail)
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
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		return nil, err
	}
	prm := s.def.params
	if v := q.Get("events"); v != "" {
		if prm.events, err = strconv.Atoi(v); err != nil {
			return nil, err
		}
	}
	if v := q.Get("size"); v != "" {
		if prm.size, err = strconv.Atoi(v); err != nil {
			return nil, err
		}
	}
	if v := q.Get("delay"); v != "" {
		if prm.delay, err = time.ParseDuration(v); err != nil {
			return nil, err
		}
	}
	if v := q.Get("latency"); v != "" {
		if prm.latency, err = time.ParseDuration(v); err != nil {
			return nil, err
		}
	}
	if err := prm.validate(); err != nil {
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

// sleep waits for d or until ctx is done; it reports whether d elapsed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
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

// Constant parts of the responses, as OpenAI sends them.
const (
	completionID = "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT"
	created      = "1741570283"
	servedModel  = "gpt-4o-mini-2024-07-18"
	fingerprint  = "fp_06737a9306"
	promptTokens = 262
)

// answerText is cycled through, word by word, to make the answer text.
const answerText = `Go is a statically typed, compiled language designed at Google.
It is known for its simplicity, fast compilation, garbage collection, and built-in support for
concurrency through goroutines and channels, which make network servers easy to write.`

// build renders the responses for p.
func build(p params) *profile {
	pr := &profile{params: p}
	words := strings.Fields(answerText)

	var text strings.Builder
	for i := 0; text.Len() < p.size; i++ {
		if i > 0 {
			text.WriteByte(' ')
		}
		text.WriteString(words[i%len(words)])
	}
	content, _ := json.Marshal(text.String()[:p.size])
	completionTokens := p.size / 4
	pr.json = []byte(`{"id":"` + completionID + `","object":"chat.completion","created":` + created +
		`,"model":"` + servedModel + `","choices":[{"index":0,"message":{"role":"assistant","content":` + string(content) +
		`,"refusal":null,"annotations":[]},"logprobs":null,"finish_reason":"stop"}],"usage":` + usage(completionTokens) +
		`,"service_tier":"default","system_fingerprint":"` + fingerprint + `"}` + "\n")

	deltas := make([]string, p.events)
	for i := range deltas {
		w := words[i%len(words)]
		if i > 0 {
			w = " " + w
		}
		deltas[i] = w
	}
	pr.first = append(chunk(`{"role":"assistant","content":"","refusal":null}`, "null", "null"),
		chunk(`{"content":`+quote(deltas[0])+`}`, "null", "null")...)
	for _, d := range deltas[1:] {
		pr.chunks = append(pr.chunks, chunk(`{"content":`+quote(d)+`}`, "null", "null"))
	}
	pr.tail = chunk(`{}`, `"stop"`, "null")
	pr.tail = append(pr.tail, "data: {\"id\":\""+completionID+"\",\"object\":\"chat.completion.chunk\",\"created\":"+created+
		",\"model\":\""+servedModel+"\",\"service_tier\":\"default\",\"system_fingerprint\":\""+fingerprint+
		"\",\"choices\":[],\"usage\":"+usage(p.events)+"}\n\n"...)
	pr.tail = append(pr.tail, "data: [DONE]\n\n"...)
	return pr
}

// chunk renders one chat.completion.chunk event with one choice.
func chunk(delta, finishReason, usage string) []byte {
	return []byte("data: {\"id\":\"" + completionID + "\",\"object\":\"chat.completion.chunk\",\"created\":" + created +
		",\"model\":\"" + servedModel + "\",\"service_tier\":\"default\",\"system_fingerprint\":\"" + fingerprint +
		"\",\"choices\":[{\"index\":0,\"delta\":" + delta + ",\"logprobs\":null,\"finish_reason\":" + finishReason +
		"}],\"usage\":" + usage + "}\n\n")
}

// usage renders an OpenAI usage object.
func usage(completion int) string {
	return `{"prompt_tokens":` + strconv.Itoa(promptTokens) + `,"completion_tokens":` + strconv.Itoa(completion) +
		`,"total_tokens":` + strconv.Itoa(promptTokens+completion) +
		`,"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},"completion_tokens_details":` +
		`{"reasoning_tokens":0,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}}`
}

func quote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
