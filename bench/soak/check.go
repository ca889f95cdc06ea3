package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/llmgate/gateway/providers"
)

// documentedStatus is the README's error table: each stable code and its
// HTTP status (0: the upstream's status, or in-stream).
var documentedStatus = map[string]int{
	"invalid_json":         400,
	"invalid_request":      400,
	"not_found":            404,
	"method_not_allowed":   405,
	"input_too_large":      413,
	"model_unknown":        422,
	"provider_unknown":     422,
	"format_unsupported":   422,
	"provider_not_allowed": 403,
	"model_not_allowed":    403,
	"upstream_error":       0,
	"all_providers_failed": 503,
	"total_timeout":        504,
	"stream_failed":        0,
	"gateway_closed":       503,
	"internal_error":       500,
}

// Outcome classes.
const (
	classOKJSON       = "ok: JSON"
	classOKStream     = "ok: stream"
	classStreamFailed = "in-stream error (stream_failed)"
	classHungUp       = "client hung up (planned)"
	classCanceled     = "client canceled (planned)"
	classViolation    = "violation"
	classErrorPrefix  = "error: "
)

// violation is one broken promise.
type violation struct{ kind, detail string }

// outcome is the verdict on one request.
type outcome struct {
	class      string
	cross      bool // served by a provider of the other format
	failover   bool // served after more than one upstream attempt
	violations []violation
	notes      []violation // what would be a violation but for a process stall
}

// stallTolerance is the process stall (see stallMonitor) from which a
// request's timing verdicts are not trusted.
const stallTolerance = 100 * time.Millisecond

// errorPayload is the inner error object of both dialects.
type errorPayload struct {
	Type    string `json:"type"`
	Message string `json:"message"`
	Code    string `json:"code"`
	// Attempts is llmgate's attempt trace in its error bodies.
	Attempts []struct {
		Provider string `json:"provider"`
		Model    string `json:"model"`
		KeyID    string `json:"key_id"`
		Error    string `json:"error"`
	} `json:"attempts"`
}

func (e *errorPayload) String() string {
	return fmt.Sprintf("type %q, message %q, code %q", e.Type, e.Message, e.Code)
}

// streamView is what a client-format event stream contained.
type streamView struct {
	text     string
	terminal bool          // [DONE] or message_stop
	errEvent *errorPayload // an in-stream error event
	finish   bool          // a finish_reason / stop_reason
	usage    bool          // OpenAI: a usage chunk; Anthropic: usage in message_delta
	partial  bool          // bytes after the last complete event
	problems []string
}

func (v *streamView) problem(format string, args ...any) {
	if len(v.problems) < 4 {
		v.problems = append(v.problems, fmt.Sprintf(format, args...))
	}
}

// sseEvent is one server-sent event; comment is true for an event made of
// comment lines only (keep-alives).
type sseEvent struct {
	name, data string
	comment    bool
}

// splitSSE splits an LF-delimited event stream into complete events and
// the bytes after the last one.
func splitSSE(b []byte) (evs []sseEvent, rest []byte) {
	for {
		i := bytes.Index(b, []byte("\n\n"))
		if i < 0 {
			return evs, b
		}
		block := b[:i]
		b = b[i+2:]
		ev := sseEvent{comment: true}
		var data []string
		for line := range bytes.SplitSeq(block, []byte("\n")) {
			if len(line) == 0 || line[0] == ':' {
				continue
			}
			ev.comment = false
			field, value, _ := bytes.Cut(line, []byte(":"))
			value = bytes.TrimPrefix(value, []byte(" "))
			switch string(field) {
			case "event":
				ev.name = string(value)
			case "data":
				data = append(data, string(value))
			}
		}
		ev.data = strings.Join(data, "\n")
		evs = append(evs, ev)
	}
}

// parseStream reads a response stream in the client's format. final says
// whether body is the whole stream (else trailing bytes are not a problem).
func parseStream(f providers.Format, body []byte, final bool) *streamView {
	evs, rest := splitSSE(body)
	v := &streamView{partial: len(bytes.TrimSpace(rest)) > 0}
	if final && v.partial {
		v.problem("stream ends in the middle of an event: %q", excerpt(rest, 120))
	}
	if f == providers.FormatAnthropic {
		parseAnthropicStream(v, evs)
	} else {
		parseOpenAIStream(v, evs)
	}
	return v
}

func parseOpenAIStream(v *streamView, evs []sseEvent) {
	id := ""
	for _, ev := range evs {
		if ev.comment {
			continue
		}
		if v.terminal || v.errEvent != nil {
			v.problem("event after the end of the stream: %q", excerpt([]byte(ev.data), 120))
			continue
		}
		if ev.name != "" {
			v.problem("named event %q in a chat completions stream", ev.name)
		}
		if ev.data == "[DONE]" {
			v.terminal = true
			continue
		}
		var c struct {
			ID      string `json:"id"`
			Object  string `json:"object"`
			Choices []struct {
				Delta struct {
					Content *string `json:"content"`
				} `json:"delta"`
				FinishReason *string `json:"finish_reason"`
			} `json:"choices"`
			Usage json.RawMessage `json:"usage"`
			Error *errorPayload   `json:"error"`
		}
		if err := json.Unmarshal([]byte(ev.data), &c); err != nil {
			v.problem("chunk is not JSON (%v): %q", err, excerpt([]byte(ev.data), 120))
			continue
		}
		if c.Error != nil {
			v.errEvent = c.Error
			continue
		}
		if c.Object != "chat.completion.chunk" {
			v.problem("chunk object %q", c.Object)
		}
		if id == "" {
			id = c.ID
		} else if c.ID != id {
			v.problem("chunk ids differ: %q then %q", id, c.ID)
		}
		for _, ch := range c.Choices {
			if ch.Delta.Content != nil {
				v.text += *ch.Delta.Content
			}
			if ch.FinishReason != nil {
				if *ch.FinishReason != "stop" {
					v.problem("finish_reason %q", *ch.FinishReason)
				}
				v.finish = true
			}
		}
		if len(c.Choices) == 0 && len(c.Usage) > 0 && string(c.Usage) != "null" {
			v.usage = true
		}
	}
}

func parseAnthropicStream(v *streamView, evs []sseEvent) {
	started := false
	open := map[int]bool{}
	for _, ev := range evs {
		if ev.comment {
			continue
		}
		if v.terminal || v.errEvent != nil {
			v.problem("event after the end of the stream: %s %q", ev.name, excerpt([]byte(ev.data), 120))
			continue
		}
		var e struct {
			Type  string `json:"type"`
			Index *int   `json:"index"`
			Delta *struct {
				Type       string  `json:"type"`
				Text       string  `json:"text"`
				StopReason *string `json:"stop_reason"`
			} `json:"delta"`
			Usage json.RawMessage `json:"usage"`
			Error *errorPayload   `json:"error"`
		}
		if err := json.Unmarshal([]byte(ev.data), &e); err != nil {
			v.problem("event %q is not JSON (%v): %q", ev.name, err, excerpt([]byte(ev.data), 120))
			continue
		}
		if e.Type != ev.name {
			v.problem("event name %q but data type %q", ev.name, e.Type)
		}
		if e.Type != "ping" && e.Type != "error" && e.Type != "message_start" && !started {
			v.problem("%s before message_start", e.Type)
		}
		index := -1
		if e.Index != nil {
			index = *e.Index
		}
		switch e.Type {
		case "ping":
		case "message_start":
			if started {
				v.problem("second message_start")
			}
			started = true
		case "content_block_start":
			if open[index] {
				v.problem("content_block_start for open block %d", index)
			}
			open[index] = true
		case "content_block_delta":
			if !open[index] {
				v.problem("content_block_delta for block %d, which is not open", index)
			}
			if e.Delta != nil && e.Delta.Type == "text_delta" {
				v.text += e.Delta.Text
			}
		case "content_block_stop":
			if !open[index] {
				v.problem("content_block_stop for block %d, which is not open", index)
			}
			delete(open, index)
		case "message_delta":
			if len(open) > 0 {
				v.problem("message_delta with %d content blocks open", len(open))
			}
			if e.Delta != nil && e.Delta.StopReason != nil {
				if *e.Delta.StopReason != "end_turn" {
					v.problem("stop_reason %q", *e.Delta.StopReason)
				}
				v.finish = true
			}
			v.usage = len(e.Usage) > 0 && string(e.Usage) != "null"
		case "message_stop":
			v.terminal = true
		case "error":
			if e.Error == nil {
				v.problem("error event without an error object")
				e.Error = &errorPayload{}
			}
			v.errEvent = e.Error
		default:
			v.problem("unexpected event type %q", e.Type)
		}
	}
}

// mediaType returns the media type of a Content-Type header.
func mediaType(h http.Header) string {
	mt, _, _ := mime.ParseMediaType(h.Get("Content-Type"))
	return mt
}

// check decides the outcome of one request from what the client saw and
// what the upstreams saw for it.
func check(p *plan, r *result, recs []attemptRecord) (o outcome) {
	bad := func(kind, format string, args ...any) {
		o.violations = append(o.violations, violation{kind, fmt.Sprintf(format, args...)})
	}
	defer func() {
		if len(o.violations) > 0 {
			o.class = classViolation
		}
	}()
	seen := map[string]bool{}
	for _, a := range recs {
		k := a.provider + ":" + a.model + " " + a.keyID
		if seen[k] {
			bad("same (model, key) tried twice", "%s was sent upstream twice", k)
		}
		seen[k] = true
	}
	switch {
	case r.timedOut:
		bad("request never finished", "the gateway sent nothing more for the client's silence limit (%d bytes so far, err %v)", len(r.body), r.err)
		return o
	case r.status == 0 && r.canceled:
		o.class = classCanceled
		return o
	case r.status == 0:
		bad("transport error before a response", "%v", r.err)
		return o
	}
	h := r.header
	if !strings.HasPrefix(h.Get("Llmgate-Request-Id"), "req_") {
		bad("missing Llmgate-Request-Id", "header %q", h.Get("Llmgate-Request-Id"))
	}
	attempts, aerr := strconv.Atoi(h.Get("Llmgate-Attempts"))
	switch {
	case aerr != nil:
		bad("missing Llmgate-Attempts", "header %q", h.Get("Llmgate-Attempts"))
	case len(recs) > attempts:
		bad("upstream saw more requests than Llmgate-Attempts", "Llmgate-Attempts %d, upstream requests %d", attempts, len(recs))
	}
	o.failover = attempts > 1
	if r.status != http.StatusOK {
		checkError(p, r, recs, attempts, &o, bad)
		return o
	}
	checkServed(p, r, recs, &o, bad)
	return o
}

// checkError checks an error response.
func checkError(p *plan, r *result, recs []attemptRecord, attempts int, o *outcome, bad func(string, string, ...any)) {
	if r.err != nil && !r.canceled {
		bad("error response cut short", "%d: %v after %d bytes", r.status, r.err, len(r.body))
		return
	}
	if r.canceled && r.err != nil {
		o.class = classCanceled
		return
	}
	if mt := mediaType(r.header); mt != "application/json" {
		bad("error response is not JSON", "%d with Content-Type %q", r.status, r.header.Get("Content-Type"))
	}
	var e *errorPayload
	if p.format == providers.FormatAnthropic {
		var body struct {
			Type  string        `json:"type"`
			Error *errorPayload `json:"error"`
		}
		if err := json.Unmarshal(r.body, &body); err != nil || body.Type != "error" || body.Error == nil || body.Error.Type == "" || body.Error.Message == "" {
			bad("error body not in the client's dialect", `%d: want {"type":"error","error":{"type","message","code"}}, got %q`, r.status, excerpt(r.body, 300))
			return
		}
		e = body.Error
	} else {
		var body struct {
			Type  *string       `json:"type"`
			Error *errorPayload `json:"error"`
		}
		if err := json.Unmarshal(r.body, &body); err != nil || body.Type != nil || body.Error == nil || body.Error.Type == "" || body.Error.Message == "" {
			bad("error body not in the client's dialect", `%d: want {"error":{"message","type","code"}}, got %q`, r.status, excerpt(r.body, 300))
			return
		}
		e = body.Error
	}
	want, documented := documentedStatus[e.Code]
	switch {
	case !documented:
		bad("undocumented error code", "%d with code %q: %s", r.status, e.Code, e.Message)
		return
	case want != 0 && want != r.status:
		bad("error status does not match its code", "code %q documented as %d, sent with %d", e.Code, want, r.status)
	}
	o.class = classErrorPrefix + e.Code
	switch e.Code {
	case "all_providers_failed":
		// An attempt the gateway reports as timed out may have been a good
		// answer that came too late on a loaded machine: not a violation.
		timedOut := map[string]bool{}
		for _, a := range e.Attempts {
			if a.Error == "timeout" {
				timedOut[a.Provider+":"+a.Model+" "+a.KeyID] = true
			}
		}
		for _, a := range recs {
			if a.fault.verdict() == mayServe && !timedOut[a.provider+":"+a.model+" "+a.keyID] {
				bad("failed although an upstream answered well", "all_providers_failed, but upstream request %s answered completely", a)
				break
			}
		}
		if attempts == 0 && r.header.Get("Retry-After") == "" {
			bad("every key cooling but no Retry-After", "all_providers_failed after 0 attempts without Retry-After: %s", e.Message)
		}
	case "total_timeout":
	default:
		bad("unexpected error code", "%d %s: %s", r.status, e.Code, e.Message)
	}
}

// checkServed checks a 200 response against the upstream request that
// served it.
func checkServed(p *plan, r *result, recs []attemptRecord, o *outcome, bad func(string, string, ...any)) {
	served := r.header.Get("Llmgate-Model")
	known := false
	for _, m := range p.models {
		known = known || strings.EqualFold(m, served)
	}
	if !known {
		bad("served by a model not asked for", "Llmgate-Model %q, asked for %v", served, p.models)
	}
	provider, _, _ := strings.Cut(served, ":")
	o.cross = (provider == "anthropic") != (p.format == providers.FormatAnthropic)
	upID := r.header.Get("Llmgate-Upstream-X-Request-Id")
	if provider == "anthropic" {
		upID = r.header.Get("Llmgate-Upstream-Request-Id")
	}
	var rec *attemptRecord
	for i := range recs {
		if recs[i].id == upID {
			rec = &recs[i]
		}
	}
	switch {
	case rec == nil:
		bad("response not traceable to this request's upstream requests", "relayed upstream ID %q is not among %v", upID, recs)
	case !strings.EqualFold(rec.provider+":"+rec.model, served):
		bad("Llmgate-Model is not the model that answered", "Llmgate-Model %q, upstream request %s", served, rec)
	}
	if rec != nil && rec.fault.verdict() == mustNotServe {
		bad("served from a failed upstream attempt ("+rec.fault.String()+")", "upstream request %s should have been failed over", rec)
	}
	if r.hungUp && !p.stream {
		o.class = classHungUp
		return
	}
	if !p.stream {
		checkJSON(p, r, o, bad)
		return
	}
	if mt := mediaType(r.header); mt != "text/event-stream" {
		bad("stream response is not an event stream", "Content-Type %q", r.header.Get("Content-Type"))
		return
	}
	ended := r.err == nil && !r.hungUp // the client read the stream to its end
	v := parseStream(p.format, r.body, ended)
	for _, pr := range v.problems {
		bad("malformed stream", "%s", pr)
	}
	want := p.expectedText()
	if !strings.HasPrefix(want, v.text) {
		bad("wrong content", "stream text %q is not a prefix of %q", v.text, want)
	}
	switch {
	case r.hungUp:
		o.class = classHungUp
	case r.canceled && r.err != nil:
		o.class = classCanceled
	case r.err != nil:
		bad("stream cut without an error event", "read error %v after %d bytes (terminal event %v)", r.err, len(r.body), v.terminal)
	case v.errEvent != nil:
		o.class = classStreamFailed
		switch {
		case v.errEvent.Code == "stream_failed":
		case rec != nil && rec.fault == faultErrEventAfter && !o.cross:
			// Same-format streams pass the upstream's bytes through,
			// its error event included.
			bad("upstream's in-stream error relayed without code stream_failed", "error event %s", v.errEvent)
		default:
			bad("in-stream error without code stream_failed", "error event %s", v.errEvent)
		}
		if v.errEvent.Message == "" {
			bad("in-stream error without a message", "error event %s", v.errEvent)
		}
		if rec != nil && rec.fault.verdict() == mayServe {
			detail := fmt.Sprintf("upstream request %s; error %q", rec, v.errEvent.Message)
			switch {
			case strings.Contains(v.errEvent.Message, "per-attempt timeout") || strings.Contains(v.errEvent.Message, "total timeout"):
				// Those timeouts only bound the time to the commit point:
				// the gateway committed the stream after one had fired.
				bad("stream committed after its attempt or total timeout fired", "%s", detail)
			case r.stall >= stallTolerance && strings.Contains(v.errEvent.Message, "idle"):
				o.notes = append(o.notes, violation{"idle cut of a good stream during a process stall",
					fmt.Sprintf("%s; the process stalled for %v", detail, r.stall.Round(time.Millisecond))})
			default:
				bad("in-stream error from an upstream that answered well", "%s", detail)
			}
		}
	case v.terminal:
		o.class = classOKStream
		if rec != nil && rec.fault.verdict() == mustFailInStream {
			bad("stream ended cleanly after the upstream failed", "upstream request %s broke after the first content event, but the client got a clean terminal event", rec)
		}
		if v.text != want {
			bad("wrong content", "stream text %q, want %q", v.text, want)
		}
		if !v.finish {
			bad("complete stream without a finish reason", "no finish_reason / stop_reason")
		}
		if p.includeUsage && !v.usage {
			bad("include_usage stream without a usage chunk", "stream_options.include_usage was set")
		}
	default:
		bad("stream ended without a terminal or error event", "%d bytes, text %q", len(r.body), v.text)
	}
}

// checkJSON checks a 200 JSON answer.
func checkJSON(p *plan, r *result, o *outcome, bad func(string, string, ...any)) {
	switch {
	case r.canceled && r.err != nil:
		o.class = classCanceled
		return
	case r.err != nil:
		bad("JSON response cut short", "read error %v after %d bytes", r.err, len(r.body))
		return
	}
	if mt := mediaType(r.header); mt != "application/json" {
		bad("JSON response with another Content-Type", "Content-Type %q", r.header.Get("Content-Type"))
	}
	want := p.expectedText()
	var text string
	if p.format == providers.FormatAnthropic {
		var m struct {
			Type    string `json:"type"`
			Role    string `json:"role"`
			Content []struct {
				Type string `json:"type"`
				Text string `json:"text"`
			} `json:"content"`
			StopReason string          `json:"stop_reason"`
			Usage      json.RawMessage `json:"usage"`
		}
		if err := json.Unmarshal(r.body, &m); err != nil {
			bad("JSON response is not valid JSON", "%v: %q", err, excerpt(r.body, 300))
			return
		}
		if m.Type != "message" || m.Role != "assistant" || m.StopReason != "end_turn" || len(m.Usage) == 0 {
			bad("JSON response not a complete Anthropic message", "%q", excerpt(r.body, 300))
		}
		for _, c := range m.Content {
			text += c.Text
		}
	} else {
		var c struct {
			Object  string `json:"object"`
			Choices []struct {
				Message struct {
					Role    string  `json:"role"`
					Content *string `json:"content"`
				} `json:"message"`
				FinishReason string `json:"finish_reason"`
			} `json:"choices"`
			Usage json.RawMessage `json:"usage"`
		}
		if err := json.Unmarshal(r.body, &c); err != nil {
			bad("JSON response is not valid JSON", "%v: %q", err, excerpt(r.body, 300))
			return
		}
		if c.Object != "chat.completion" || len(c.Choices) != 1 || c.Choices[0].Message.Role != "assistant" ||
			c.Choices[0].FinishReason != "stop" || len(c.Usage) == 0 {
			bad("JSON response not a complete chat completion", "%q", excerpt(r.body, 300))
		}
		if len(c.Choices) > 0 && c.Choices[0].Message.Content != nil {
			text = *c.Choices[0].Message.Content
		}
	}
	if text != want {
		bad("wrong content", "text %q, want %q", text, want)
	}
	o.class = classOKJSON
}

// excerpt returns at most n bytes of b, marked when cut.
func excerpt(b []byte, n int) string {
	if len(b) <= n {
		return string(b)
	}
	return string(b[:n]) + "…"
}
