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
//
// The demo only decides what to answer: the responses, event streams and
// errors are written by the builders of [providertest], the fake upstream
// the gateway's own tests use, and played by [providertest.Step].
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
	"github.com/llmgate/gateway/providers"
	"github.com/llmgate/gateway/providers/providertest"
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

// fingerprint is the system_fingerprint of the demo's chat completions.
const fingerprint = "fp_llmgate_demo"

// ServeHTTP routes a request to its API.
func (u *Upstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f := providers.FormatOpenAI
	if strings.HasPrefix(r.URL.Path, "/anthropic/") {
		f = providers.FormatAnthropic
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
		u.fail(w, r, f, http.StatusNotFound, fmt.Sprintf("the llmgate demo upstream has no route for %s %s", r.Method, r.URL.Path))
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		u.fail(w, r, f, http.StatusMethodNotAllowed, fmt.Sprintf("%s %s is not allowed; use POST", r.Method, r.URL.Path))
		return
	}
	body, err := readBody(w, r)
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			u.fail(w, r, f, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body exceeds %d bytes", maxBody))
			return
		}
		u.fail(w, r, f, http.StatusBadRequest, "could not read the request body: "+err.Error())
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

// reply returns the answer to a request for model: text, sent word by word
// with the demo's pause when streamed, under a fresh id with the prefix.
func (u *Upstream) reply(idPrefix, model, text string, usage providertest.Usage) providertest.Reply {
	return providertest.Reply{
		ID: u.nextID(idPrefix), Created: time.Now().Unix(), Fingerprint: fingerprint,
		Model: model, Deltas: Words(text), Usage: usage, Pace: max(u.delay, 0),
	}
}

// answer plays step, a response in format f, under a fresh request id.
// Streams carry the gateway's own SSE headers.
func (u *Upstream) answer(w http.ResponseWriter, r *http.Request, f providers.Format, step providertest.Step) {
	name := "X-Request-Id"
	if f == providers.FormatAnthropic {
		name = "Request-Id"
	}
	step.Header.Set(name, u.nextID("req_demo_"))
	if step.Events != nil {
		sse.SetHeaders(step.Header)
	}
	step.ServeHTTP(w, r)
}

// fail answers with an error in format f's shape.
func (u *Upstream) fail(w http.ResponseWriter, r *http.Request, f providers.Format, status int, message string) {
	u.answer(w, r, f, providertest.Error(f, status, message))
}

// named is the model field every request has.
type named struct {
	Model string `json:"model"`
}

func (n *named) model() string { return n.Model }

// decode parses body into req, a pointer to a request struct that embeds
// named. When the body is not valid JSON or names no model it answers a
// 400 in format f and reports false.
func (u *Upstream) decode(w http.ResponseWriter, r *http.Request, f providers.Format, body []byte, req interface{ model() string }) bool {
	if err := json.Unmarshal(body, req); err != nil {
		u.fail(w, r, f, http.StatusBadRequest, "the request body is not valid JSON: "+err.Error())
		return false
	}
	if req.model() == "" {
		msg := "you must provide a model parameter"
		if f == providers.FormatAnthropic {
			msg = "model: Field required"
		}
		u.fail(w, r, f, http.StatusBadRequest, msg)
		return false
	}
	return true
}

// message is a chat message of either format.
type message struct {
	Role    string          `json:"role"`
	Content json.RawMessage `json:"content"`
}

// conversation sums messages up: the bytes of their text, the text of the
// last user message that has text, and whether that message is the last.
func conversation(msgs []message) (chars int, lastUser string, lastIsUser bool) {
	for i, m := range msgs {
		t := textOf(m.Content, "text")
		chars += len(t)
		if m.Role == "user" && t != "" {
			lastUser, lastIsUser = t, i == len(msgs)-1
		}
	}
	return chars, lastUser, lastIsUser
}

// toolChoice is what a request says about calling tools, in either
// format's terms.
type toolChoice struct {
	first             string // the first declared tool, "" for none
	name              string // the tool a call would call
	forced, forbidden bool
}

// maybeCall turns reply into a call of the chosen tool, with the arguments
// {} and an id with the prefix, when the choice forces a call or the last
// message is the user's and asks for a tool (see asksForTool).
func (u *Upstream) maybeCall(reply *providertest.Reply, tc toolChoice, idPrefix, lastUser string, lastIsUser bool) {
	if tc.forbidden || tc.name == "" || !(tc.forced || (lastIsUser && asksForTool(lastUser, tc.first))) {
		return
	}
	reply.ToolCalls = []providertest.ToolCall{{ID: u.nextID(idPrefix), Name: tc.name, Arguments: []string{"{}"}}}
	reply.Usage.Output = countTokens(len(tc.name) + 2)
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
