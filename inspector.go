package gateway

import (
	"context"
	"encoding/json"
)

// Inspector body size bounds (InspectorOptions.MaxBytes).
const (
	DefaultInspectorMaxBytes = 64 << 10
	MaxInspectorMaxBytes     = 16 << 20
)

// Capture is what the traffic inspector (WithInspector) keeps of one
// request: the bodies as the gateway saw and sent them, each cut at
// InspectorOptions.MaxBytes. The sink owns it and its slices.
type Capture struct {
	// RequestID is the request's Event.RequestID.
	RequestID string
	// Request is the start of the request body after redaction
	// (WithRedaction), nil when no body was read or redacting it failed:
	// an unredacted body is never captured.
	Request []byte
	// Response is the start of the bytes the client received, after
	// translation and redaction: the JSON body, an error body, or a
	// stream's events as written (keep-alives, closing and in-stream error
	// events included). Nothing of an attempt that failed over is in it.
	Response []byte
	// RequestTruncated and ResponseTruncated report that the body was
	// longer than MaxBytes and was cut.
	RequestTruncated, ResponseTruncated bool
	// Stream reports that the response is an event stream.
	Stream bool
}

// InspectorSink receives the captures of WithInspector. Capture is called
// once per request, after the request's Event went to the event sinks, on
// the request's goroutine (its context is the request's, never canceled):
// it must not block, so a sink that writes anywhere queues the capture
// and writes it on its own goroutine. It is called concurrently for
// concurrent requests.
type InspectorSink interface {
	Capture(ctx context.Context, c *Capture)
}

// InspectorOptions tunes WithInspector. The zero value is the defaults.
type InspectorOptions struct {
	// MaxBytes is the number of bytes kept of each body (request and
	// response apart); the rest is dropped and the body marked truncated.
	// 0 means DefaultInspectorMaxBytes (64 KiB); at most
	// MaxInspectorMaxBytes (16 MiB).
	MaxBytes int
}

// WithInspector turns on the traffic inspector: for every request, a
// Capture of its request body and of the response the client received,
// bounded by o.MaxBytes and redacted as WithRedaction configures, goes to
// sink. Off by default: without it nothing is kept and the request path
// only checks a nil pointer. The last call wins; a nil sink turns the
// inspector off.
func WithInspector(sink InspectorSink, o InspectorOptions) Option {
	return optionFunc(func(c *config) error {
		if o.MaxBytes < 0 || o.MaxBytes > MaxInspectorMaxBytes {
			return fieldErr("WithInspector", "MaxBytes", "%d is outside [0, %d]", o.MaxBytes, MaxInspectorMaxBytes)
		}
		if o.MaxBytes == 0 {
			o.MaxBytes = DefaultInspectorMaxBytes
		}
		c.inspector, c.inspectorOpts = sink, o
		return nil
	})
}

// inspection is a request's capture in progress; nil without an
// inspector.
type inspection struct {
	max       int
	req, resp boundedBuf
}

// boundedBuf keeps the first max bytes appended to it.
type boundedBuf struct {
	b         []byte
	truncated bool
}

func (b *boundedBuf) add(p []byte, limit int) {
	if room := limit - len(b.b); len(p) > room {
		p, b.truncated = p[:max(room, 0)], true
	}
	b.b = append(b.b, p...)
}

// captureRequest keeps the start of the request body, once it is redacted.
func (c *call) captureRequest() {
	if c.insp != nil {
		c.insp.req.add(c.body, c.insp.max)
	}
}

// captureResponse keeps b, bytes written to the client.
func (c *call) captureResponse(b []byte) {
	if c.insp != nil {
		c.insp.resp.add(b, c.insp.max)
	}
}

// inspect hands the request's capture to the inspector sink.
func (c *call) inspect(ctx context.Context) {
	if c.insp == nil {
		return
	}
	c.cfg.inspector.Capture(ctx, &Capture{
		RequestID: c.reqID, Request: c.insp.req.b, Response: c.insp.resp.b,
		RequestTruncated: c.insp.req.truncated, ResponseTruncated: c.insp.resp.truncated,
		Stream: c.relay.committed, // only a stream commits the relay
	})
}

// MarshalJSON encodes the capture as
// {"request_id","stream","request","request_truncated","response","response_truncated"},
// the bodies as JSON strings (each byte that is not UTF-8, as at a cut in
// the middle of a character, becomes U+FFFD), false flags and empty
// bodies left out.
func (c *Capture) MarshalJSON() ([]byte, error) {
	return json.Marshal(captureJSON{
		RequestID: c.RequestID, Stream: c.Stream,
		Request: string(c.Request), RequestTruncated: c.RequestTruncated,
		Response: string(c.Response), ResponseTruncated: c.ResponseTruncated,
	})
}

type captureJSON struct {
	RequestID         string `json:"request_id"`
	Stream            bool   `json:"stream,omitempty"`
	Request           string `json:"request,omitempty"`
	RequestTruncated  bool   `json:"request_truncated,omitempty"`
	Response          string `json:"response,omitempty"`
	ResponseTruncated bool   `json:"response_truncated,omitempty"`
}
