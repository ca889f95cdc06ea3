package config

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	gateway "github.com/llmgate/gateway"
	"github.com/llmgate/gateway/providers"
	"github.com/llmgate/gateway/sinks/jsonl"
	"github.com/llmgate/gateway/sinks/webhook"
)

// Types of events entries.
const (
	// EventsJSONL writes events as JSON lines to a file or standard
	// output (package sinks/jsonl).
	EventsJSONL = "jsonl"
	// EventsWebhook POSTs events in batches to a URL (package
	// sinks/webhook).
	EventsWebhook = "webhook"
)

var eventTypes = []string{EventsJSONL, EventsWebhook}

// EventSink is one entry of events: a destination of the event of every
// request (gateway.Event). Type says which fields apply; the package
// documentation describes them. Nil fields keep the sink's defaults.
type EventSink struct {
	// Type is "jsonl" or "webhook".
	Type string `yaml:"type"`
	// Path is the jsonl file, appended to ("-": standard output).
	Path string `yaml:"path"`
	// URL is the webhook's http or https URL. It may hold a credential,
	// so it prints redacted.
	URL providers.Secret `yaml:"url"`
	// Headers are sent with every webhook request; their values are
	// never printed.
	Headers map[string]providers.Secret `yaml:"headers"`
	// BatchSize is the most events per webhook request.
	BatchSize *int `yaml:"batch_size"`
	// FlushInterval is the longest an event waits before it is written
	// (jsonl) or sent (webhook).
	FlushInterval *time.Duration `yaml:"flush_interval"`
	// QueueSize is the most events waiting; more are dropped.
	QueueSize *int `yaml:"queue_size"`
	// Timeout bounds each webhook request.
	Timeout *time.Duration `yaml:"timeout"`
	// MaxAttempts is the most webhook requests for one batch; 0 retries
	// until shutdown.
	MaxAttempts *int `yaml:"max_attempts"`
	// MaxBackoff caps the wait between webhook retries.
	MaxBackoff *time.Duration `yaml:"max_backoff"`
	// Concurrency is the number of webhook batches sent at once.
	Concurrency *int `yaml:"concurrency"`
}

// Inspector is the inspector section: the traffic inspector
// (gateway.WithInspector) writing each request's Capture as one JSON line
// (gateway.Capture.MarshalJSON) to Path. The zero value is off.
type Inspector struct {
	// Enabled turns the inspector on; Path is then required.
	Enabled bool `yaml:"enabled"`
	// MaxBytes is the number of bytes kept of each body (default 64 KiB,
	// at most 16 MiB).
	MaxBytes *int `yaml:"max_bytes"`
	// Path is the jsonl file, appended to ("-": standard output); it may
	// not be an events path.
	Path string `yaml:"path"`
	// QueueSize is the most captures waiting; more are dropped.
	QueueSize *int `yaml:"queue_size"`
	// FlushInterval is the longest a capture waits before it is written.
	FlushInterval *time.Duration `yaml:"flush_interval"`
}

// checkInspector applies the rules of inspector; paths are the events'
// jsonl paths.
func (d *decoder) checkInspector(f *File, paths map[string]int) {
	in := &f.Inspector
	if !in.Enabled || d.bad["inspector"] {
		return
	}
	switch j, dup := paths[in.Path]; {
	case d.bad["inspector.path"]:
	case in.Path == "":
		d.failAt("inspector.path", `is required: a file, or "-" for standard output`)
	case dup:
		d.failAt("inspector.path", "%s is also events[%d].path", d.show("inspector.path", in.Path), j)
	}
	if m := in.MaxBytes; m != nil && (*m < 1 || *m > gateway.MaxInspectorMaxBytes) {
		d.failAt("inspector.max_bytes", "must be between 1 and %d, got %d", gateway.MaxInspectorMaxBytes, *m)
	}
	if q := in.QueueSize; q != nil && *q < 1 {
		d.failAt("inspector.queue_size", "must be at least 1, got %d", *q)
	}
	if fi := in.FlushInterval; fi != nil && *fi <= 0 {
		d.failAt("inspector.flush_interval", "must be positive, got %v", *fi)
	}
}

// eventFields lists, for each type, the fields it takes beside type.
var eventFields = map[string][]string{
	EventsJSONL:   {"path", "queue_size", "flush_interval"},
	EventsWebhook: {"url", "headers", "batch_size", "flush_interval", "queue_size", "timeout", "max_attempts", "max_backoff", "concurrency"},
}

// checkEvents applies the rules of events. URLs and header values are
// never shown in a message.
func (d *decoder) checkEvents(f *File) {
	paths := map[string]int{} // jsonl path → entry
	for i := range f.Events {
		e := &f.Events[i]
		p := "events[" + strconv.Itoa(i) + "]"
		if d.bad[p] {
			continue
		}
		typ := strings.ToLower(e.Type)
		switch {
		case d.bad[p+".type"]:
			continue
		case e.Type == "":
			d.failAt(p+".type", "is required: one of %s", strings.Join(eventTypes, ", "))
			continue
		case !oneOf(typ, eventTypes):
			d.failAt(p+".type", "%s is not one of %s", d.show(p+".type", e.Type), strings.Join(eventTypes, ", "))
			continue
		}
		for _, name := range []string{"path", "url", "headers", "batch_size", "flush_interval", "queue_size", "timeout", "max_attempts", "max_backoff", "concurrency"} {
			if _, set := d.lines[p+"."+name]; set && !contains(eventFields[typ], name) {
				d.failAt(p+"."+name, "is not a field of a %s sink (it takes %s)", typ, strings.Join(eventFields[typ], ", "))
			}
		}
		switch typ {
		case EventsJSONL:
			switch j, dup := paths[e.Path]; {
			case d.bad[p+".path"]:
			case e.Path == "":
				d.failAt(p+".path", `is required: a file, or "-" for standard output`)
			case dup:
				d.failAt(p+".path", "%s is also events[%d].path", d.show(p+".path", e.Path), j)
			default:
				paths[e.Path] = i
			}
		case EventsWebhook:
			switch {
			case d.bad[p+".url"]:
			case e.URL == "":
				d.failAt(p+".url", "is required: an http or https URL")
			default:
				if err := webhook.CheckURL(e.URL.Reveal()); err != nil {
					d.failAt(p+".url", "%s", strings.TrimPrefix(err.Error(), "webhook: URL "))
				}
			}
			names := map[string]string{} // canonical → as written
			for _, name := range slices.Sorted(maps.Keys(e.Headers)) {
				hp := p + ".headers." + name
				canon := http.CanonicalHeaderKey(name)
				switch other, dup := names[canon]; {
				case d.bad[hp]:
				case dup:
					d.failAt(hp, "is also headers.%s (header names are case-insensitive)", other)
				default:
					if err := webhook.CheckHeader(name, e.Headers[name]); err != nil {
						d.failAt(hp, "%s", strings.TrimPrefix(err.Error(), "webhook: "))
					}
				}
				names[canon] = name
			}
		}
		for _, field := range []struct {
			name string
			v    *int
			min  int
		}{{"batch_size", e.BatchSize, 1}, {"queue_size", e.QueueSize, 1}, {"concurrency", e.Concurrency, 1}, {"max_attempts", e.MaxAttempts, 0}} {
			if field.v != nil && *field.v < field.min {
				d.failAt(p+"."+field.name, "must be at least %d, got %d", field.min, *field.v)
			}
		}
		for _, field := range []struct {
			name string
			v    *time.Duration
		}{{"flush_interval", e.FlushInterval}, {"timeout", e.Timeout}, {"max_backoff", e.MaxBackoff}} {
			if field.v != nil && *field.v <= 0 {
				d.failAt(p+"."+field.name, "must be positive, got %v", *field.v)
			}
		}
		if e.MaxBackoff != nil && *e.MaxBackoff > 0 && *e.MaxBackoff < webhook.DefaultMinBackoff {
			d.failAt(p+".max_backoff", "must be at least %v (the first retry's wait), got %v", webhook.DefaultMinBackoff, *e.MaxBackoff)
		}
	}
	d.checkInspector(f, paths)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// EventSinks are the sinks of a file's events, opened by
// File.OpenEventSinks. They are safe for concurrent use.
type EventSinks struct {
	sinks  []openSink
	logger *slog.Logger
}

type openSink struct {
	name string // "events[i] (type)"
	sink gateway.EventSink
	// inspector is set for the inspector's sink, which takes captures,
	// not events.
	inspector *gateway.InspectorOptions
	close     func(ctx context.Context) error
	stats     func() []any // log attributes
	// reopen reopens a file; nil for other sinks.
	reopen func() error
}

// OpenEventSinks opens the sinks of the file's events, in order, then
// the inspector's when it is enabled: it opens the jsonl files (relative paths are relative to the working
// directory) and starts every sink's goroutine. Options adds them to a
// gateway; Close stops them, after the gateway, so that no event is lost.
// A file with problems (Parse reported some) must not be opened. When a
// sink cannot be opened, those already opened are closed and the error is
// an *Error placing the problem in the file. logger (nil:
// slog.Default()) receives the sinks' delivery problems.
//
// The sinks are not part of Options, which a reload calls again: a host
// opens them once and passes the same Options on every reload.
func (f *File) OpenEventSinks(logger *slog.Logger) (*EventSinks, error) {
	if logger == nil {
		logger = slog.Default()
	}
	out := &EventSinks{logger: logger}
	for i := range f.Events {
		e := &f.Events[i]
		p := "events[" + strconv.Itoa(i) + "]"
		typ := strings.ToLower(e.Type)
		l := logger.With("sink", p)
		s := openSink{name: p + " (" + typ + ")"}
		var err error
		errPath := p
		switch typ {
		case EventsJSONL:
			var js *jsonl.Sink
			js, err = jsonl.Open(e.Path, jsonl.Options{QueueSize: deref(e.QueueSize), FlushInterval: deref(e.FlushInterval), Logger: l})
			errPath = p + ".path"
			if err == nil {
				s.sink, s.close, s.reopen = js, js.Close, js.Reopen
				s.stats = func() []any {
					st := js.Stats()
					return []any{"written", st.Written, "dropped", st.Dropped, "failed", st.Failed}
				}
			}
		case EventsWebhook:
			maxAttempts := deref(e.MaxAttempts)
			if e.MaxAttempts != nil && maxAttempts == 0 {
				maxAttempts = -1 // until shutdown
			}
			var ws *webhook.Sink
			ws, err = webhook.New(webhook.Options{
				URL: e.URL.Reveal(), Headers: e.Headers, BatchSize: deref(e.BatchSize), FlushInterval: deref(e.FlushInterval),
				QueueSize: deref(e.QueueSize), Timeout: deref(e.Timeout), MaxAttempts: maxAttempts, MaxBackoff: deref(e.MaxBackoff),
				Concurrency: deref(e.Concurrency), Logger: l,
			})
			if err == nil {
				s.sink, s.close = ws, ws.Close
				s.stats = func() []any {
					st := ws.Stats()
					return []any{"sent", st.Sent, "dropped", st.Dropped, "rejected", st.Rejected, "failed", st.Failed,
						"retries", st.Retries}
				}
			}
		default:
			err = fmt.Errorf("unknown type %q", e.Type) // Parse reports it
		}
		if err != nil {
			for _, o := range out.sinks {
				_ = o.close(context.Background()) // prompt: no event was sent to them
			}
			return nil, &Error{File: f.name, Problems: []*Problem{{Path: errPath, Line: lineOf(f.lines, errPath), Err: err, msg: err.Error()}}}
		}
		out.sinks = append(out.sinks, s)
	}
	if in := &f.Inspector; in.Enabled {
		js, err := jsonl.Open(in.Path, jsonl.Options{QueueSize: deref(in.QueueSize), FlushInterval: deref(in.FlushInterval), Logger: logger.With("sink", "inspector")})
		if err != nil {
			for _, o := range out.sinks {
				_ = o.close(context.Background())
			}
			return nil, &Error{File: f.name, Problems: []*Problem{{Path: "inspector.path", Line: lineOf(f.lines, "inspector.path"), Err: err, msg: err.Error()}}}
		}
		out.sinks = append(out.sinks, openSink{name: "inspector (jsonl)", sink: js, close: js.Close, reopen: js.Reopen,
			inspector: &gateway.InspectorOptions{MaxBytes: deref(in.MaxBytes)},
			stats: func() []any {
				st := js.Stats()
				return []any{"written", st.Written, "dropped", st.Dropped, "failed", st.Failed}
			}})
	}
	return out, nil
}

func deref[T any](p *T) T {
	var v T
	if p != nil {
		v = *p
	}
	return v
}

// Len returns the number of sinks, the inspector's included.
func (s *EventSinks) Len() int { return len(s.sinks) }

// Options returns one gateway.WithEventSink per events entry, and
// gateway.WithInspector when the inspector is enabled.
func (s *EventSinks) Options() []gateway.Option {
	opts := make([]gateway.Option, 0, len(s.sinks))
	for _, o := range s.sinks {
		if o.inspector != nil {
			opts = append(opts, gateway.WithInspector(o.sink.(gateway.InspectorSink), *o.inspector))
			continue
		}
		opts = append(opts, gateway.WithEventSink(o.sink))
	}
	return opts
}

// Reopen opens the jsonl files again, after a log rotator renamed them;
// the other sinks are unaffected. It returns every failure; a sink whose
// file could not be reopened keeps writing to the old one.
func (s *EventSinks) Reopen() error {
	var errs []error
	for _, o := range s.sinks {
		if o.reopen != nil {
			if err := o.reopen(); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", o.name, err))
			}
		}
	}
	return errors.Join(errs...)
}

// Close closes every sink at once, each writing or sending what it has
// queued until ctx ends, and logs each sink's final counts. It returns
// every sink's error. Close the gateway first.
func (s *EventSinks) Close(ctx context.Context) error {
	errs := make([]error, len(s.sinks))
	done := make(chan int, len(s.sinks))
	for i, o := range s.sinks {
		go func() {
			if err := o.close(ctx); err != nil {
				errs[i] = fmt.Errorf("%s: %w", o.name, err)
			}
			done <- i
		}()
	}
	for range s.sinks {
		<-done
	}
	for _, o := range s.sinks {
		s.logger.Info("event sink closed", append([]any{"sink", o.name}, o.stats()...)...)
	}
	return errors.Join(errs...)
}
