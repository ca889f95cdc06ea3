package config

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	gateway "github.com/llmgate/gateway"
	"github.com/llmgate/gateway/providers"
)

// TestMain checks that no test leaves a goroutine behind: the event sinks
// start some, which Close must stop.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const eventsConfig = `
events:
  - type: jsonl
    path: %s
    queue_size: 64
    flush_interval: 1h
  - type: webhook
    url: "%s/ingest?key=${env:URL_TOKEN}"
    headers: {Authorization: "Bearer ${env:COLLECTOR_TOKEN}"}
    batch_size: 2
    flush_interval: 1h
    queue_size: 100
    timeout: 5s
    max_attempts: 0
    max_backoff: 2s
    concurrency: 1
`

func TestParseEvents(t *testing.T) {
	env := mapEnv(map[string]string{"COLLECTOR_TOKEN": "tok-s3cret", "URL_TOKEN": "url-s3cret"})
	f, err := Parse(fmt.Appendf(nil, eventsConfig, "events.jsonl", "https://collector.example"), env)
	require.NoError(t, err)
	require.Equal(t, []EventSink{
		{Type: "jsonl", Path: "events.jsonl", QueueSize: ptr(64), FlushInterval: ptr(time.Hour)},
		{Type: "webhook", URL: "https://collector.example/ingest?key=url-s3cret",
			Headers:   map[string]providers.Secret{"Authorization": "Bearer tok-s3cret"},
			BatchSize: ptr(2), FlushInterval: ptr(time.Hour), QueueSize: ptr(100), Timeout: ptr(5 * time.Second),
			MaxAttempts: ptr(0), MaxBackoff: ptr(2 * time.Second), Concurrency: ptr(1)},
	}, f.Events)
	// Printing the file shows neither the URL nor the header.
	require.NotContains(t, fmt.Sprintf("%v %+v %#v", f.Events, f.Events, f.Events), "s3cret")
	// Events are not options: the caller opens them.
	require.NoError(t, f.Check())
}

// TestParseEventsErrors places every problem of events.
func TestParseEventsErrors(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want string
	}{
		{"no type", "events:\n  - path: x", `events[0].type: is required: one of jsonl, webhook (line 2)`},
		{"unknown type", "events:\n  - type: kafka", `events[0].type: "kafka" is not one of jsonl, webhook (line 2)`},
		{"jsonl without path", "events:\n  - type: jsonl", `events[0].path: is required: a file, or "-" for standard output (line 2)`},
		{"jsonl with a url", "events:\n  - type: jsonl\n    path: x\n    url: https://c.example/", `events[0].url: is not a field of a jsonl sink (it takes path, queue_size, flush_interval) (line 4)`},
		{"jsonl with batch_size", "events:\n  - {type: jsonl, path: x, batch_size: 5}", `events[0].batch_size: is not a field of a jsonl sink`},
		{"same path twice", "events:\n  - {type: jsonl, path: '-'}\n  - {type: jsonl, path: '-'}", `events[1].path: "-" is also events[0].path (line 3)`},
		{"webhook without url", "events:\n  - type: webhook", `events[0].url: is required: an http or https URL (line 2)`},
		{"webhook with a path", "events:\n  - {type: webhook, url: 'https://c.example/', path: x}", `events[0].path: is not a field of a webhook sink`},
		{"webhook ftp url", "events:\n  - type: webhook\n    url: ftp://c.example/?t=s3cret", `events[0].url: must be an absolute http or https URL (line 3)`},
		{"webhook relative url", "events:\n  - {type: webhook, url: /ingest}", `events[0].url: must be an absolute http or https URL (line 2)`},
		{"webhook content type", "events:\n  - type: webhook\n    url: https://c.example/\n    headers:\n      Content-Type: text/plain", `events[0].headers.Content-Type: header Content-Type is set by the sink (line 5)`},
		{"webhook bad header name", "events:\n  - {type: webhook, url: 'https://c.example/', headers: {'a b': s3cret}}", `events[0].headers.a b: header name "a b" is not valid (line 2)`},
		{"same header twice", "events:\n  - type: webhook\n    url: https://c.example/\n    headers:\n      authorization: s3cret\n      Authorization: s3cret", `events[0].headers.authorization: is also headers.Authorization (header names are case-insensitive) (line 5)`},
		{"zero batch size", "events:\n  - {type: webhook, url: 'https://c.example/', batch_size: 0}", `events[0].batch_size: must be at least 1, got 0 (line 2)`},
		{"zero queue size", "events:\n  - {type: jsonl, path: x, queue_size: 0}", `events[0].queue_size: must be at least 1, got 0 (line 2)`},
		{"zero concurrency", "events:\n  - {type: webhook, url: 'https://c.example/', concurrency: 0}", `events[0].concurrency: must be at least 1, got 0`},
		{"negative max attempts", "events:\n  - {type: webhook, url: 'https://c.example/', max_attempts: -1}", `events[0].max_attempts: must be at least 0, got -1`},
		{"zero flush interval", "events:\n  - {type: jsonl, path: x, flush_interval: 0s}", `events[0].flush_interval: must be positive, got 0s (line 2)`},
		{"negative timeout", "events:\n  - {type: webhook, url: 'https://c.example/', timeout: -1s}", `events[0].timeout: must be positive, got -1s`},
		{"short max backoff", "events:\n  - {type: webhook, url: 'https://c.example/', max_backoff: 100ms}", `events[0].max_backoff: must be at least 500ms (the first retry's wait), got 100ms`},
		{"misspelt field", "events:\n  - {type: webhook, url: 'https://c.example/', batch_sise: 3}", `events[0].batch_sise: unknown field; did you mean "batch_size"? (line 2)`},
		{"unset variable", "events:\n  - type: webhook\n    url: https://c.example/\n    headers: {Authorization: 'Bearer ${env:NOPE}'}", `events[0].headers.Authorization: ${env:NOPE} is not set (line 4)`},
		{"not a list", "events: {type: jsonl}", `events: expected a list, got a mapping (line 1)`},
		{"entry not a mapping", "events: [jsonl]", `events[0]: expected a mapping, got a scalar (line 1)`},
		{"duration not a duration", "events:\n  - {type: jsonl, path: x, flush_interval: soon}", `events[0].flush_interval: "soon" is not a duration`},
		{"inspector without path", "inspector:\n  enabled: true", `inspector.path: is required: a file, or "-" for standard output`},
		{"inspector on an events path", "events:\n  - {type: jsonl, path: x}\ninspector: {enabled: true, path: x}", `inspector.path: "x" is also events[0].path (line 3)`},
		{"inspector zero max bytes", "inspector: {enabled: true, path: x, max_bytes: 0}", `inspector.max_bytes: must be between 1 and 16777216, got 0 (line 1)`},
		{"inspector huge max bytes", "inspector: {enabled: true, path: x, max_bytes: 16777217}", `inspector.max_bytes: must be between 1 and 16777216, got 16777217`},
		{"inspector zero queue size", "inspector: {enabled: true, path: x, queue_size: 0}", `inspector.queue_size: must be at least 1, got 0`},
		{"inspector zero flush interval", "inspector: {enabled: true, path: x, flush_interval: 0s}", `inspector.flush_interval: must be positive, got 0s`},
		{"inspector misspelt field", "inspector: {enabled: true, path: x, max_byte: 3}", `inspector.max_byte: unknown field; did you mean "max_bytes"?`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { requireOneProblem(t, tt.yaml, tt.want) })
	}
}

// collector records the events a webhook sink sends.
type collector struct {
	mu      sync.Mutex
	ids     []string
	headers http.Header
	query   string
}

func (c *collector) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var batch struct {
		Events []gateway.Event `json:"events"`
	}
	if err := json.NewDecoder(r.Body).Decode(&batch); err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, e := range batch.Events {
		c.ids = append(c.ids, e.RequestID)
	}
	c.headers, c.query = r.Header.Clone(), r.URL.RawQuery
}

func TestOpenEventSinks(t *testing.T) {
	col := &collector{}
	srv := httptest.NewServer(col)
	defer srv.Close()
	path := filepath.Join(t.TempDir(), "events.jsonl")
	env := mapEnv(map[string]string{"COLLECTOR_TOKEN": "tok", "URL_TOKEN": "u"})
	f, err := Parse(fmt.Appendf(nil, eventsConfig, path, srv.URL), env)
	require.NoError(t, err)
	var logs bytes.Buffer
	sinks, err := f.OpenEventSinks(slog.New(slog.NewTextHandler(&logs, nil)))
	require.NoError(t, err)
	require.Equal(t, 2, sinks.Len())
	opts := sinks.Options()
	require.Len(t, opts, 2)
	gw, err := gateway.New(append(f.Options(), opts...)...)
	require.NoError(t, err)
	require.NoError(t, gw.Close())

	for i := range 3 {
		for _, s := range sinks.sinks {
			s.sink.HandleEvent(context.Background(), &gateway.Event{RequestID: fmt.Sprintf("req-%d", i)})
		}
	}
	require.NoError(t, sinks.Reopen())
	require.NoError(t, sinks.Close(context.Background()))

	data, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, 3, strings.Count(string(data), "\n"))
	col.mu.Lock()
	require.Equal(t, []string{"req-0", "req-1", "req-2"}, col.ids)
	require.Equal(t, "Bearer tok", col.headers.Get("Authorization"))
	require.Equal(t, "key=u", col.query)
	col.mu.Unlock()
	require.Contains(t, logs.String(), `msg="event sink closed" sink="events[0] (jsonl)" written=3 dropped=0 failed=0`)
	require.Contains(t, logs.String(), `msg="event sink closed" sink="events[1] (webhook)" sent=3 dropped=0 rejected=0 failed=0 retries=0`)
}

func TestOpenEventSinksFails(t *testing.T) {
	dir := t.TempDir()
	yaml := fmt.Sprintf("events:\n  - {type: webhook, url: 'http://127.0.0.1:1/'}\n  - type: jsonl\n    path: %s\n",
		filepath.Join(dir, "missing", "events.jsonl"))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "llmgate.yaml"), []byte(yaml), 0o600))
	f, err := ReadFile(filepath.Join(dir, "llmgate.yaml"), mapEnv(nil))
	require.NoError(t, err)
	sinks, err := f.OpenEventSinks(slog.New(slog.NewTextHandler(io.Discard, nil)))
	require.Nil(t, sinks)
	var ce *Error
	require.ErrorAs(t, err, &ce)
	require.Len(t, ce.Problems, 1)
	require.Equal(t, "events[1].path", ce.Problems[0].Path)
	require.Equal(t, 4, ce.Problems[0].Line)
	require.ErrorIs(t, err, os.ErrNotExist)
	require.Contains(t, err.Error(), "llmgate.yaml: invalid configuration: events[1].path: jsonl: open ")
	// The webhook sink opened first was closed: no goroutine is left
	// (TestMain).
}

func TestOpenNoEventSinks(t *testing.T) {
	f, err := Parse([]byte("listen: 127.0.0.1:1\n"), mapEnv(nil))
	require.NoError(t, err)
	sinks, err := f.OpenEventSinks(nil)
	require.NoError(t, err)
	require.Zero(t, sinks.Len())
	require.Empty(t, sinks.Options())
	require.NoError(t, sinks.Reopen())
	require.NoError(t, sinks.Close(context.Background()))
}

func TestOpenInspector(t *testing.T) {
	path := filepath.Join(t.TempDir(), "capture.jsonl")
	f, err := Parse(fmt.Appendf(nil, "inspector:\n  enabled: true\n  max_bytes: 8\n  path: %s\n  flush_interval: 1h\n", path), mapEnv(nil))
	require.NoError(t, err)
	require.Equal(t, Inspector{Enabled: true, MaxBytes: ptr(8), Path: path, FlushInterval: ptr(time.Hour)}, f.Inspector)
	sinks, err := f.OpenEventSinks(slog.New(slog.NewTextHandler(io.Discard, nil)))
	require.NoError(t, err)
	require.Equal(t, 1, sinks.Len())
	gw, err := gateway.New(append(f.Options(), sinks.Options()...)...)
	require.NoError(t, err)
	req := httptest.NewRequest(http.MethodPost, "/v1/chat/completions", strings.NewReader(`{"model":`))
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	gw.ServeHTTP(rec, req)
	require.Equal(t, http.StatusBadRequest, rec.Code, rec.Body.String())
	require.NoError(t, gw.Close())
	require.NoError(t, sinks.Reopen())
	require.NoError(t, sinks.Close(context.Background()))

	data, err := os.ReadFile(path)
	require.NoError(t, err)
	want := fmt.Sprintf(`{"request_id":%q,"request":"{\"model\"","request_truncated":true,"response":%q,"response_truncated":true}`,
		rec.Header().Get(gateway.HeaderRequestID), rec.Body.String()[:8])
	require.JSONEq(t, want, strings.TrimSuffix(string(data), "\n"))
}

func TestInspectorOffUnlessEnabled(t *testing.T) {
	f, err := Parse([]byte("inspector: {path: capture.jsonl, max_bytes: 5}\n"), mapEnv(nil))
	require.NoError(t, err)
	sinks, err := f.OpenEventSinks(nil)
	require.NoError(t, err)
	require.Zero(t, sinks.Len())
	require.Empty(t, sinks.Options())
	require.NoError(t, sinks.Close(context.Background()))
}
