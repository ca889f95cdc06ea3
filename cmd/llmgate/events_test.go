package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	gateway "github.com/llmgate/gateway"
)

// eventCollector is a webhook receiver that records the events it gets.
type eventCollector struct {
	*httptest.Server
	mu     sync.Mutex
	events []gateway.Event
	auth   []string
}

func newEventCollector(t *testing.T) *eventCollector {
	c := &eventCollector{}
	c.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var batch struct {
			Events []gateway.Event `json:"events"`
		}
		if err := json.NewDecoder(r.Body).Decode(&batch); err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		c.events = append(c.events, batch.Events...)
		c.auth = append(c.auth, r.Header.Get("Authorization"))
	}))
	t.Cleanup(c.Close)
	return c
}

// jsonLines reads the events of a JSON-lines file.
func jsonLines(t *testing.T, path string) []gateway.Event {
	t.Helper()
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	var out []gateway.Event
	sc := bufio.NewScanner(strings.NewReader(string(data)))
	for sc.Scan() {
		var e gateway.Event
		require.NoError(t, json.Unmarshal(sc.Bytes(), &e))
		out = append(out, e)
	}
	return out
}

func eventsConfig(upstream, file, collector string) string {
	return fmt.Sprintf(`providers:
  - id: lab
    base_url: %s/v1/
    models: [{id: qwen3}]
events:
  - type: jsonl
    path: %s
    flush_interval: 1h
  - type: webhook
    url: %s/ingest
    headers: {Authorization: "Bearer ${env:COLLECTOR_TOKEN}"}
    flush_interval: 1h
`, upstream, file, collector)
}

// TestEventSinks: every request's event reaches the file and the
// collector, by shutdown at the latest.
func TestEventSinks(t *testing.T) {
	up, col := newDemoUpstream(t), newEventCollector(t)
	dir := t.TempDir()
	path, events := filepath.Join(dir, "llmgate.yaml"), filepath.Join(dir, "events.jsonl")
	writeFile(t, path, eventsConfig(up.URL, events, col.URL))
	r := startServer(t, []string{"-config", path}, map[string]string{"COLLECTOR_TOKEN": "col-s3cret"})
	var ids []string
	for range 3 {
		resp, body := r.post(t, "/v1/chat/completions", `{"model":"lab:qwen3","messages":[{"role":"user","content":"hi"}]}`)
		require.Equal(t, http.StatusOK, resp.StatusCode, body)
		ids = append(ids, resp.Header.Get(gateway.HeaderRequestID))
	}
	require.NoError(t, r.stop()) // the sinks' flush interval is an hour: shutdown sends

	got := jsonLines(t, events)
	require.Len(t, got, 3)
	col.mu.Lock()
	defer col.mu.Unlock()
	require.Len(t, col.events, 3)
	for i, id := range ids {
		require.Equal(t, id, got[i].RequestID)
		require.Equal(t, id, col.events[i].RequestID)
		require.Equal(t, "lab:qwen3", got[i].ServedBy)
		require.Equal(t, http.StatusOK, col.events[i].Status)
	}
	require.Equal(t, []string{"Bearer col-s3cret"}, col.auth)
	logs := r.stderr.String()
	require.Contains(t, logs, "event_sinks=2")
	require.Contains(t, logs, `msg="event sink closed" sink="events[0] (jsonl)" written=3 dropped=0 failed=0`)
	require.Contains(t, logs, `msg="event sink closed" sink="events[1] (webhook)" sent=3 dropped=0 rejected=0 failed=0`)
	require.NotContains(t, logs, "col-s3cret")
}

// TestEventSinksReload: a reload keeps the sinks, reopens the files (log
// rotation), and says that a change of events takes a restart.
func TestEventSinksReload(t *testing.T) {
	up, col := newDemoUpstream(t), newEventCollector(t)
	dir := t.TempDir()
	path, events := filepath.Join(dir, "llmgate.yaml"), filepath.Join(dir, "events.jsonl")
	writeFile(t, path, eventsConfig(up.URL, events, col.URL))
	s, logs := setupFor(t, path, map[string]string{"COLLECTOR_TOKEN": "t"})
	before := s.events

	chat := func() {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodPost, "/v1/chat/completions", strings.NewReader(`{"model":"lab:qwen3","messages":[{"role":"user","content":"hi"}]}`))
		req.Host = "localhost"
		req.Header.Set("Content-Type", "application/json")
		s.handler().ServeHTTP(rec, req)
		require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	}
	chat()
	require.NoError(t, os.Rename(events, events+".1"))
	require.NoError(t, s.reload())
	chat()

	writeFile(t, path, eventsConfig(up.URL, filepath.Join(dir, "other.jsonl"), col.URL))
	require.NoError(t, s.reload())
	require.Contains(t, logs.String(), "events changed in the configuration file; it takes effect when llmgate restarts")
	require.Same(t, before, s.events)
	chat()

	s.close()
	require.Len(t, jsonLines(t, events+".1"), 1, "written before the rotation")
	require.Len(t, jsonLines(t, events), 2, "reopened at the same path, kept after the change")
	_, err := os.Stat(filepath.Join(dir, "other.jsonl"))
	require.ErrorIs(t, err, os.ErrNotExist)
	col.mu.Lock()
	require.Len(t, col.events, 3)
	col.mu.Unlock()
}

// TestEventSinksOpenFails: a file that cannot be opened stops the start,
// with the field and its line.
func TestEventSinksOpenFails(t *testing.T) {
	up := newDemoUpstream(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "llmgate.yaml")
	writeFile(t, path, eventsConfig(up.URL, filepath.Join(dir, "missing", "events.jsonl"), "http://127.0.0.1:1"))
	err := run(t.Context(), []string{"-config", path, "-listen", "127.0.0.1:0"}, mapEnv(map[string]string{"COLLECTOR_TOKEN": "t"}), &syncBuffer{}, &syncBuffer{})
	require.ErrorContains(t, err, path+": invalid configuration: events[0].path: jsonl: open ")
	require.ErrorContains(t, err, "no such file or directory (line 7)")
}

// TestInspector: with only the inspector configured, every request's
// capture reaches its file, by shutdown at the latest.
func TestInspector(t *testing.T) {
	up := newDemoUpstream(t)
	dir := t.TempDir()
	path, capture := filepath.Join(dir, "llmgate.yaml"), filepath.Join(dir, "capture.jsonl")
	writeFile(t, path, fmt.Sprintf(`providers:
  - id: lab
    base_url: %s/v1/
    models: [{id: qwen3}]
inspector:
  enabled: true
  path: %s
  flush_interval: 1h
`, up.URL, capture))
	r := startServer(t, []string{"-config", path}, nil)
	body := `{"model":"lab:qwen3","messages":[{"role":"user","content":"hi"}]}`
	resp, out := r.post(t, "/v1/chat/completions", body)
	require.Equal(t, http.StatusOK, resp.StatusCode, out)
	require.NoError(t, r.stop())

	data, err := os.ReadFile(capture)
	require.NoError(t, err)
	var c struct {
		RequestID string `json:"request_id"`
		Request   string `json:"request"`
		Response  string `json:"response"`
	}
	require.NoError(t, json.Unmarshal(data, &c), string(data))
	require.Equal(t, resp.Header.Get(gateway.HeaderRequestID), c.RequestID)
	require.Equal(t, body, c.Request)
	require.Equal(t, out, c.Response)
	require.Contains(t, r.stderr.String(), `msg="event sink closed" sink="inspector (jsonl)" written=1 dropped=0 failed=0`)
}
