// Package demo is a local stand-in for the OpenAI and Anthropic APIs, so that
// llmgate can be tried, tested and demonstrated offline.
//
// An [Upstream] is an [http.Handler] that speaks both wire formats well
// enough for the official SDKs:
//
//	POST /openai/v1/chat/completions   chat completions, JSON and SSE
//	POST /openai/v1/responses          Responses API, JSON and SSE
//	POST /openai/v1/embeddings         deterministic embedding vectors
//	POST /anthropic/v1/messages        Anthropic Messages, JSON and SSE
//
// No model is ever called. Every answer starts with [Marker] and echoes the
// last user message (see [Reply]), so nobody can mistake it for a real
// model's output. Streams send the answer word by word with a short pause
// between words, so streaming is visible in a terminal.
//
// Tools: when a chat completions or Messages request declares tools and the
// tool choice forces a call ("required"/"any", or a named tool), or the last
// message is a user message that mentions "tool" or the first tool's name,
// the answer is a call of that tool with the arguments {} (finish_reason
// "tool_calls", stop_reason "tool_use"). The Responses API always answers
// with text.
//
// Usage numbers are rough: a quarter of the number of bytes of text, at
// least 1.
//
// Malformed requests get a 400 in the format's own error shape; unknown
// paths 404 and wrong methods 405, also in the shape of the format the path
// belongs to.
package demo

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/llmgate/gateway/internal/sse"
)

// Marker starts every answer of the demo upstream.
const Marker = "[llmgate demo upstream — no real model was called]"

// DefaultStreamDelay is the pause between two streamed words when
// Options.StreamDelay is zero.
const DefaultStreamDelay = 15 * time.Millisecond

// DefaultEmbeddingDims is the length of embedding vectors when neither
// Options.EmbeddingDims nor the request's "dimensions" sets one.
const DefaultEmbeddingDims = 16

// maxEcho is how many characters of the user's message an answer quotes.
const maxEcho = 200

// maxBody caps request bodies.
const maxBody = 8 << 20

// maxDims caps the "dimensions" of an embeddings request.
const maxDims = 4096

// Options configures an Upstream. The zero Options is ready to use.
type Options struct {
	// StreamDelay is the pause between two streamed words. Zero means
	// DefaultStreamDelay; a negative value means no pause.
	StreamDelay time.Duration
	// EmbeddingDims is the default length of embedding vectors. Zero means
	// DefaultEmbeddingDims.
	EmbeddingDims int
}

// Upstream is the demo upstream handler. Create one with New. It is safe
// for concurrent use, holds no resources and starts no goroutine: a
// streaming response stops as soon as its request's context ends.
type Upstream struct {
	delay time.Duration
	dims  int
	seq   atomic.Uint64
}

// New returns an Upstream configured by opts.
func New(opts Options) *Upstream {
	u := &Upstream{delay: opts.StreamDelay, dims: opts.EmbeddingDims}
	if u.delay == 0 {
		u.delay = DefaultStreamDelay
	}
	if u.dims <= 0 {
		u.dims = DefaultEmbeddingDims
	}
	return u
}

// Reply returns the demo answer to a user message: [Marker], then
// "You said: " and the message, cut to 200 characters.
func Reply(userText string) string {
	userText = strings.TrimSpace(userText)
	if userText == "" {
		return Marker + " You said nothing."
	}
	if utf8.RuneCountInString(userText) > maxEcho {
		n := 0
		for i := range userText {
			if n == maxEcho {
				userText = userText[:i] + "…"
				break
			}
			n++
		}
	}
	return Marker + " You said: " + userText
}

// Words splits an answer into the deltas a stream sends: each word with the
// space that follows it. Joined, they give the answer back.
func Words(text string) []string {
	return strings.SplitAfter(text, " ")
}

// countTokens is the demo's rough token count: bytes/4, at least 1.
func countTokens(n int) int {
	return max(1, n/4)
}

// ServeHTTP routes a request to its API.
func (u *Upstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f := openAI
	if strings.HasPrefix(r.URL.Path, "/anthropic/") {
		f = anthropic
	}
	var serve func(http.ResponseWriter, *http.Request, []byte)
	switch r.URL.Path {
	case "/openai/v1/chat/completions":
		serve = u.chatCompletions
	case "/openai/v1/responses":
		serve = u.responses
	case "/openai/v1/embeddings":
		serve = u.embeddings
	case "/anthropic/v1/messages":
		serve = u.messages
	default:
		f.writeError(w, http.StatusNotFound, "not_found", fmt.Sprintf("the llmgate demo upstream has no route for %s %s", r.Method, r.URL.Path))
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		f.writeError(w, http.StatusMethodNotAllowed, "method_not_allowed", fmt.Sprintf("%s %s is not allowed; use POST", r.Method, r.URL.Path))
		return
	}
	body, err := readBody(w, r)
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			f.writeError(w, http.StatusRequestEntityTooLarge, "request_too_large", fmt.Sprintf("request body exceeds %d bytes", maxBody))
			return
		}
		f.writeError(w, http.StatusBadRequest, "invalid_request_error", "could not read the request body: "+err.Error())
		return
	}
	serve(w, r, body)
}

func readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	var buf bytes.Buffer
	_, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, maxBody))
	return buf.Bytes(), err
}

// nextID returns a fresh identifier with the prefix.
func (u *Upstream) nextID(prefix string) string {
	return prefix + strconv.FormatUint(u.seq.Add(1), 10)
}

// pause waits between two streamed words; it reports false when the
// request ended meanwhile.
func (u *Upstream) pause(r *http.Request) bool {
	if u.delay <= 0 {
		return r.Context().Err() == nil
	}
	t := time.NewTimer(u.delay)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-r.Context().Done():
		return false
	}
}

// format is one of the two wire formats, for errors.
type format int

const (
	openAI format = iota
	anthropic
)

// writeError writes an error in the format's shape. kind is a hint used for
// the error type: "invalid_request_error", "not_found", ...
func (f format) writeError(w http.ResponseWriter, status int, kind, message string) {
	if f == anthropic {
		typ := "invalid_request_error"
		switch status {
		case http.StatusNotFound:
			typ = "not_found_error"
		case http.StatusRequestEntityTooLarge:
			typ = "request_too_large"
		}
		writeJSON(w, status, anthropicError{
			Type:      "error",
			Error:     anthropicErrorDetail{Type: typ, Message: message},
			RequestID: "req_demo",
		})
		return
	}
	var code *string
	if kind != "invalid_request_error" {
		code = &kind
	}
	writeJSON(w, status, openAIError{Error: openAIErrorDetail{
		Message: message, Type: "invalid_request_error", Param: nil, Code: code,
	}})
}

type openAIError struct {
	Error openAIErrorDetail `json:"error"`
}

type openAIErrorDetail struct {
	Message string  `json:"message"`
	Type    string  `json:"type"`
	Param   *string `json:"param"`
	Code    *string `json:"code"`
}

type anthropicError struct {
	Type      string               `json:"type"`
	Error     anthropicErrorDetail `json:"error"`
	RequestID string               `json:"request_id,omitempty"`
}

type anthropicErrorDetail struct {
	Type    string `json:"type"`
	Message string `json:"message"`
}

// badJSON describes a body that is not the JSON object the API expects.
func badJSON(err error) string {
	return "the request body is not valid JSON: " + err.Error()
}

// marshal encodes v without HTML escaping and without a trailing newline.
func marshal(v any) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		// Every value marshalled here is built from strings and numbers.
		panic("demo: marshal: " + err.Error())
	}
	return bytes.TrimSuffix(b.Bytes(), []byte{'\n'})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b := marshal(v)
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// stream writes server-sent events, flushing each one.
type stream struct {
	sw *sse.Writer
}

func startStream(w http.ResponseWriter) *stream {
	sse.SetHeaders(w.Header())
	w.WriteHeader(http.StatusOK)
	return &stream{sw: sse.NewWriter(w)}
}

// send writes one event (unnamed when name is "") and flushes it; it reports
// false once the client is gone.
func (s *stream) send(name string, v any) bool {
	if err := s.sw.WriteEvent(name, marshal(v)); err != nil {
		return false
	}
	return s.sw.Flush() == nil
}

// sendRaw writes one unnamed event with literal data.
func (s *stream) sendRaw(data string) bool {
	if err := s.sw.WriteEvent("", []byte(data)); err != nil {
		return false
	}
	return s.sw.Flush() == nil
}

// textOf extracts the text of a message content that is either a JSON
// string or an array of parts; parts of the given types contribute their
// "text" field.
func textOf(content json.RawMessage, partTypes ...string) string {
	content = bytes.TrimSpace(content)
	if len(content) == 0 {
		return ""
	}
	if content[0] == '"' {
		var s string
		_ = json.Unmarshal(content, &s)
		return s
	}
	var parts []struct {
		Type string `json:"type"`
		Text string `json:"text"`
	}
	if json.Unmarshal(content, &parts) != nil {
		return ""
	}
	var b strings.Builder
	for _, p := range parts {
		for _, t := range partTypes {
			if p.Type == t && p.Text != "" {
				if b.Len() > 0 {
					b.WriteByte('\n')
				}
				b.WriteString(p.Text)
				break
			}
		}
	}
	return b.String()
}

// asksForTool reports whether a user message asks for the tool: it mentions
// "tool" or the tool's name, ASCII case-insensitively.
func asksForTool(text, tool string) bool {
	t := strings.ToLower(text)
	return strings.Contains(t, "tool") || (tool != "" && strings.Contains(t, strings.ToLower(tool)))
}
