package gateway

import (
	"bytes"
	"context"
	"errors"
	"io"
	"mime"
	"net/http"
	"sync"
	"time"

	"github.com/llmgate/gateway/internal/jsonx"
	"github.com/llmgate/gateway/internal/sse"
	"github.com/llmgate/gateway/internal/translate"
	"github.com/llmgate/gateway/providers"
	"github.com/llmgate/gateway/tokens"
)

// eventClass is what an upstream stream event means for the commit point.
type eventClass uint8

const (
	evPreamble  eventClass = iota // carries no content yet (role-only chunk, message_start, ping, comments)
	evContent                     // content: commits the response
	evEnd                         // the stream's terminal event ([DONE], message_stop, response.completed)
	evError                       // an in-stream error from the upstream
	evUsageOnly                   // OpenAI's usage-only chunk (choices: [])
)

// streamDialect knows how to read the events of one upstream stream shape.
type streamDialect uint8

const (
	dialectOpenAIChat streamDialect = iota
	dialectOpenAIResponses
	dialectAnthropic
)

func dialectOf(surface providers.Surface) streamDialect {
	switch surface {
	case providers.SurfaceMessages:
		return dialectAnthropic
	case providers.SurfaceResponses:
		return dialectOpenAIResponses
	}
	return dialectOpenAIChat
}

// streamResponse relays an upstream event stream to the client,
// translating it when the candidate speaks the other format. Events before
// the first content event are held back (bounded), so a failure before any
// content can still fail over; the first content event commits the
// response, and from then on every event is written and flushed as it
// arrives and a failure becomes an in-stream error event.
func (c *call) streamResponse(ctx context.Context, timer, totalTimer *time.Timer,
	a *Attempt, p *prepared, resp *providers.Response) outcome {
	g := c.g
	cand := p.cand
	defer resp.Body.Close()
	if !isEventStream(resp.Header.Get("Content-Type")) {
		data, _ := readAll(resp.Body, 64<<10)
		a.Error = AttemptBadResponse
		a.Reason = "upstream answered a streaming request with " + resp.Header.Get("Content-Type")
		if msg := upstreamErrorMessage(data); msg != "" {
			a.Reason += ": " + g.redact(msg, c.clientKey)
		}
		return nextAttempt
	}
	// Events are classified and tapped in the upstream's dialect; what
	// reaches the client is either the upstream's bytes or their
	// translation.
	dialect := dialectOf(p.route.surface)
	var tap *tokens.StreamTap
	if dialect == dialectAnthropic {
		tap = tokens.NewAnthropicTap()
	} else {
		tap = tokens.NewOpenAITap()
	}
	var tr *translate.Stream
	if p.route.translate {
		encoding := ""
		if cand.model != nil {
			encoding = cand.model.Encoding
		}
		tr = translate.NewStream(cand.up.format, c.format, translate.StreamOptions{
			Now:          g.cfg.now,
			IncludeUsage: c.parsed.wantsUsage,
			// Only when the upstream has not reported usage by its first
			// event (OpenAI streams never have): Anthropic clients read
			// message_start's input_tokens.
			InputTokens: func() int64 { return c.estimateInputTokens(encoding) },
		})
	}
	dropUsage := !p.route.translate && c.injectUsage(cand) && !c.parsed.wantsUsage
	rd := sse.NewReader(resp.Body, g.cfg.maxEventBytes)
	var ka *keepAlive
	defer func() {
		if ka != nil {
			ka.close()
		}
	}()
	var (
		w         eventWriter
		hold      []byte // client bytes held back before the commit point
		held      int
		committed bool
		sawEnd    bool
		scratch   []byte // LF-normalised event bytes
		out       []byte // translated client bytes of one event
	)
	commit := func() error {
		committed = true
		c.committed.Store(true)
		totalTimer.Stop()
		timer.Reset(g.cfg.streamIdleTimeout)
		c.setUsage(tap)
		c.commitHeaders(p, countSent(c.attempts)+1)
		h := c.w.Header()
		sse.SetHeaders(h)
		copyUpstreamIDs(h, resp.Header)
		c.writeHeader(resp.StatusCode)
		sw := sse.NewWriter(c.w)
		w = sw
		if tr != nil && g.cfg.keepAlive > 0 {
			// A translated stream has no upstream pings of the client's
			// kind: keep the client's connection alive while the upstream
			// is silent.
			ka = startKeepAlive(sw, tr.Ping(nil), g.cfg.keepAlive)
			w = ka
		}
		if len(hold) > 0 {
			if err := w.Write(hold); err != nil {
				return err
			}
			hold = nil
		}
		return nil
	}
	// emit writes (or, before the commit point, holds) one event's client
	// bytes.
	emit := func(b []byte) error {
		if !committed {
			hold = append(hold, b...)
			return nil
		}
		return w.Write(b)
	}
	// broke ends a committed stream whose upstream failed.
	broke := func(reason string) outcome {
		c.setUsage(tap)
		a.Error, a.Reason = AttemptStreamFailed, reason
		e := &Error{Kind: KindStreamFailed, Message: "upstream stream failed: " + reason}
		c.err = e
		if tr != nil {
			out = tr.Finish(out[:0], false)
			out = tr.ErrorEvent(out, http.StatusBadGateway, e.Message, e.Code())
		} else {
			name := ""
			if c.format == providers.FormatAnthropic {
				name = "error"
			}
			out = sse.AppendEvent(out[:0], name, appendErrorBody(nil, c.format, e, c.reqID))
		}
		_ = w.Write(out)
		_ = w.Flush()
		return done
	}
	for {
		ev, err := rd.Next()
		if err != nil {
			if errors.Is(err, io.EOF) {
				switch {
				case committed && sawEnd:
					if tr != nil {
						if werr := w.Write(tr.Finish(out[:0], true)); werr != nil {
							return c.clientGone(a, werr)
						}
						_ = w.Flush()
					}
					c.setUsage(tap)
					return done
				case committed:
					return broke("upstream stream ended before its final event")
				case sawEnd:
					// A complete stream with no content (an empty answer).
					if tr != nil {
						hold = tr.Finish(hold, true)
					}
					if err := commit(); err != nil {
						return c.clientGone(a, err)
					}
					_ = w.Flush()
					c.setUsage(tap)
					return done
				}
				a.Error, a.Reason = AttemptStreamError, "upstream stream ended before any content"
				return nextAttempt
			}
			if !committed {
				if errors.Is(err, sse.ErrEventTooLarge) {
					a.Error, a.Reason = AttemptBadResponse, err.Error()
					return nextAttempt
				}
				a.Error, a.Reason = c.classifyErr(ctx, err)
				if a.Error == AttemptCanceled {
					return stop
				}
				if a.Error == AttemptConnection {
					a.Error = AttemptStreamError
				}
				return nextAttempt
			}
			if sawEnd {
				// The terminal event was relayed: the response is complete,
				// whatever happens to the connection afterwards (clients
				// such as the OpenAI SDK hang up right after [DONE]).
				if tr != nil {
					_ = w.Write(tr.Finish(out[:0], true))
					_ = w.Flush()
				}
				c.setUsage(tap)
				return done
			}
			if c.r.Context().Err() != nil {
				c.setUsage(tap)
				return c.clientGone(a, c.r.Context().Err())
			}
			_, reason := c.classifyErr(ctx, err)
			return broke(reason)
		}
		if committed {
			timer.Reset(g.cfg.streamIdleTimeout)
		}
		ev.Raw = lfEndings(ev.Raw, &scratch)
		class := classifyEvent(dialect, &ev, committed)
		if !ev.IsComment() {
			tap.Observe(ev.Data)
		}
		if class == evError {
			msg := g.redact(streamErrorMessage(dialect, &ev), c.clientKey)
			if !committed {
				a.Error, a.Reason = AttemptStreamError, msg
				return nextAttempt
			}
			if tr != nil {
				out = tr.Finish(out[:0], false)
				out = tr.ErrorEvent(out, http.StatusBadGateway, msg, KindStreamFailed.Code())
			} else {
				out = ev.Raw // already in the client's dialect
			}
			if err := w.Write(out); err != nil {
				return c.clientGone(a, err)
			}
			_ = w.Flush()
			c.setUsage(tap)
			a.Error, a.Reason = AttemptStreamFailed, msg
			c.err = &Error{Kind: KindStreamFailed, Message: msg}
			return done
		}
		if class == evUsageOnly && dropUsage {
			continue
		}
		if class == evEnd {
			sawEnd = true
		}
		// The client's bytes for this event.
		b := ev.Raw
		if tr != nil {
			if ev.IsComment() {
				continue
			}
			out, err = tr.Event(out[:0], ev.Name, ev.Data)
			if err != nil {
				// The upstream sent something invalid for its own format.
				if !committed {
					a.Error, a.Reason = AttemptBadResponse, "untranslatable upstream event: "+err.Error()
					return nextAttempt
				}
				return broke("untranslatable upstream event: " + err.Error())
			}
			b = out
		}
		if class == evPreamble && !committed {
			hold = append(hold, b...)
			held++
			if held <= g.cfg.holdbackEvents && len(hold) <= g.cfg.holdbackBytes {
				continue
			}
			if err := commit(); err != nil {
				return c.clientGone(a, err)
			}
		} else {
			if !committed {
				if err := commit(); err != nil {
					return c.clientGone(a, err)
				}
			}
			if err := emit(b); err != nil {
				return c.clientGone(a, err)
			}
		}
		// Flush unless the next event is already complete in the buffer: one
		// flush per burst keeps latency minimal without a syscall per tiny
		// event, and an event never waits behind a read that may block.
		if !rd.Ready() {
			if err := w.Flush(); err != nil {
				return c.clientGone(a, err)
			}
		}
	}
}

// lfEndings returns raw with bare CR line endings turned into LF. Both are
// valid SSE, but several client SSE parsers (the OpenAI Go SDK's among them)
// split lines on LF only. A CR can only be a line ending in SSE, so the
// rewrite keeps every field and comment; CRLF is left alone. scratch is
// reused for the rewritten copy.
func lfEndings(raw []byte, scratch *[]byte) []byte {
	i := bytes.IndexByte(raw, '\r')
	if i < 0 {
		return raw
	}
	out := append((*scratch)[:0], raw...)
	for ; i < len(out); i++ {
		if out[i] == '\r' && (i+1 == len(out) || out[i+1] != '\n') {
			out[i] = '\n'
		}
	}
	*scratch = out
	return out
}

// estimateInputTokens counts the client's prompt with tiktoken.
func (c *call) estimateInputTokens(encoding string) int64 {
	if c.format == providers.FormatAnthropic {
		return c.g.counter.EstimateAnthropicMessages(encoding, c.body)
	}
	return c.g.counter.EstimateOpenAIChat(encoding, c.body)
}

func (c *call) setUsage(tap *tokens.StreamTap) {
	if u, ok := tap.Usage(); ok {
		c.usage, c.usageKnown = u, true
	}
}

// clientGone records that the client stopped reading a committed response.
func (c *call) clientGone(a *Attempt, err error) outcome {
	a.Reason = "client went away: " + err.Error()
	c.err = &Error{Kind: KindCanceled, Message: "client closed the stream", Err: err}
	return done
}

// eventWriter writes client stream bytes: an *sse.Writer, or a keepAlive
// around one.
type eventWriter interface {
	Write(b []byte) error
	Flush() error
}

// keepAlive writes a ping to a committed stream whenever nothing was written
// for a whole interval. Its goroutine ends with close.
type keepAlive struct {
	mu   sync.Mutex
	w    *sse.Writer
	ping []byte
	last time.Time
	stop chan struct{}
	done chan struct{}
}

func startKeepAlive(w *sse.Writer, ping []byte, interval time.Duration) *keepAlive {
	k := &keepAlive{w: w, ping: ping, last: time.Now(), stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(k.done)
		t := time.NewTicker(interval / 2)
		defer t.Stop()
		for {
			select {
			case <-k.stop:
				return
			case now := <-t.C:
				k.mu.Lock()
				if now.Sub(k.last) >= interval {
					if k.w.Write(k.ping) == nil {
						_ = k.w.Flush()
					}
					k.last = now
				}
				k.mu.Unlock()
			}
		}
	}()
	return k
}

func (k *keepAlive) Write(b []byte) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.last = time.Now()
	return k.w.Write(b)
}

func (k *keepAlive) Flush() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.w.Flush()
}

// close stops the pinger and waits for its goroutine.
func (k *keepAlive) close() {
	close(k.stop)
	<-k.done
}

func isEventStream(ct string) bool {
	if ct == "" {
		return false
	}
	mt, _, err := mime.ParseMediaType(ct)
	return err == nil && mt == "text/event-stream"
}

// classifyEvent decides what an upstream event means. Before the commit
// point it inspects the event fully; after it, only cheap byte checks run.
func classifyEvent(d streamDialect, ev *sse.Event, committed bool) eventClass {
	if ev.IsComment() {
		return evPreamble
	}
	switch d {
	case dialectAnthropic:
		name := ev.Name
		if len(name) == 0 {
			name = dataType(ev.Data)
		}
		switch string(name) {
		case "message_start", "ping", "content_block_start":
			return evPreamble
		case "error":
			return evError
		case "message_stop":
			return evEnd
		}
		return evContent
	case dialectOpenAIResponses:
		name := ev.Name
		if len(name) == 0 {
			name = dataType(ev.Data)
		}
		switch string(name) {
		case "response.created", "response.in_progress", "response.queued", "response.output_item.added", "response.content_part.added":
			return evPreamble
		case "error", "response.failed":
			return evError
		case "response.completed", "response.incomplete":
			return evEnd
		}
		return evContent
	}
	data := bytes.TrimSpace(ev.Data)
	if bytes.Equal(data, []byte("[DONE]")) {
		return evEnd
	}
	if bytes.HasPrefix(data, []byte(`{"error"`)) {
		return evError
	}
	if committed {
		if isUsageOnlyChunk(data) {
			return evUsageOnly
		}
		return evContent
	}
	return classifyOpenAIChunk(data)
}

// classifyOpenAIChunk inspects a chat.completion.chunk before the commit
// point: a chunk whose deltas carry only a role (and empty content) and no
// finish reason is preamble.
func classifyOpenAIChunk(data []byte) eventClass {
	class := evPreamble
	hasChoices := false
	usage := false
	err := jsonx.Members(data, func(m jsonx.Member) bool {
		switch {
		case m.KeyIs("error"):
			if jsonx.KindOf(m.Value) != jsonx.Null {
				class = evError
				return false
			}
		case m.KeyIs("usage"):
			usage = jsonx.KindOf(m.Value) == jsonx.Object
		case m.KeyIs("choices"):
			_ = jsonx.Elements(m.Value, func(choice []byte) bool {
				hasChoices = true
				_ = jsonx.Members(choice, func(cm jsonx.Member) bool {
					switch {
					case cm.KeyIs("finish_reason"):
						if jsonx.KindOf(cm.Value) != jsonx.Null {
							class = evContent
						}
					case cm.KeyIs("delta"):
						_ = jsonx.Members(cm.Value, func(dm jsonx.Member) bool {
							if dm.KeyIs("role") {
								return true
							}
							switch string(dm.Value) {
							case `""`, "null", "[]", "{}":
							default:
								class = evContent
							}
							return true
						})
					}
					return true
				})
				return true
			})
		}
		return true
	})
	if err != nil {
		// Not JSON: let the client see it; it is content as far as we know.
		return evContent
	}
	if class == evPreamble && !hasChoices && usage {
		return evUsageOnly
	}
	return class
}

// isUsageOnlyChunk reports an OpenAI chunk with an empty choices array and a
// usage object, the chunk stream_options.include_usage adds.
func isUsageOnlyChunk(data []byte) bool {
	i := bytes.Index(data, []byte(`"choices"`))
	if i < 0 {
		return false
	}
	rest := data[i+len(`"choices"`):]
	rest = bytes.TrimLeft(rest, " \t\r\n")
	if len(rest) == 0 || rest[0] != ':' {
		return false
	}
	rest = bytes.TrimLeft(rest[1:], " \t\r\n")
	if len(rest) == 0 || rest[0] != '[' {
		return false
	}
	rest = bytes.TrimLeft(rest[1:], " \t\r\n")
	return len(rest) > 0 && rest[0] == ']' && bytes.Contains(data, []byte(`"usage"`))
}

// dataType returns the "type" member of a JSON event payload.
func dataType(data []byte) []byte {
	var out []byte
	_ = jsonx.Members(data, func(m jsonx.Member) bool {
		if m.KeyIs("type") && jsonx.KindOf(m.Value) == jsonx.String {
			out = m.Value[1 : len(m.Value)-1]
			return false
		}
		return true
	})
	return out
}

// streamErrorMessage extracts the message of an in-stream error event.
func streamErrorMessage(d streamDialect, ev *sse.Event) string {
	msg := upstreamErrorMessage(ev.Data)
	if d == dialectOpenAIResponses && msg == "" {
		msg = truncate(string(ev.Data), 256)
	}
	if msg == "" {
		msg = "upstream reported an error in the stream"
	}
	return msg
}
