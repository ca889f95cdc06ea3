package main

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	gateway "github.com/llmgate/gateway"
)

// otlpReceiver is an OTLP/HTTP trace receiver: it decodes the protobuf
// export requests POSTed to /v1/traces and keeps their spans.
type otlpReceiver struct {
	*httptest.Server
	mu       sync.Mutex
	spans    []*tracepb.Span
	services []string
	auth     []string
	bad      []string // what was wrong with a request
}

func newOTLPReceiver(t *testing.T) *otlpReceiver {
	c := &otlpReceiver{}
	c.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.mu.Lock()
		defer c.mu.Unlock()
		body, err := io.ReadAll(io.LimitReader(r.Body, 4<<20))
		var req collectortrace.ExportTraceServiceRequest
		switch {
		case r.Method != http.MethodPost || r.URL.Path != "/otlp/v1/traces":
			c.bad = append(c.bad, r.Method+" "+r.URL.Path)
		case r.Header.Get("Content-Type") != "application/x-protobuf":
			c.bad = append(c.bad, "Content-Type "+r.Header.Get("Content-Type"))
		case err != nil || proto.Unmarshal(body, &req) != nil:
			c.bad = append(c.bad, "undecodable body")
		}
		if len(c.bad) > 0 {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		c.auth = append(c.auth, r.Header.Get("Authorization"))
		for _, rs := range req.ResourceSpans {
			for _, kv := range rs.GetResource().GetAttributes() {
				if kv.Key == "service.name" {
					c.services = append(c.services, kv.GetValue().GetStringValue())
				}
			}
			for _, ss := range rs.ScopeSpans {
				c.spans = append(c.spans, ss.Spans...)
			}
		}
		w.Header().Set("Content-Type", "application/x-protobuf")
		out, _ := proto.Marshal(&collectortrace.ExportTraceServiceResponse{})
		_, _ = w.Write(out)
	}))
	t.Cleanup(c.Close)
	return c
}

// TestTracingExport: with tracing configured, a request's spans reach the
// OTLP receiver, by shutdown at the latest, in the client's trace.
func TestTracingExport(t *testing.T) {
	up, rcv := newDemoUpstream(t), newOTLPReceiver(t)
	path := filepath.Join(t.TempDir(), "llmgate.yaml")
	writeFile(t, path, fmt.Sprintf(`providers:
  - id: lab
    base_url: %s/v1/
    models: [{id: qwen3}]
tracing:
  otlp_endpoint: %s/otlp
  service_name: llmgate-test
  sample_ratio: 1
  headers: {Authorization: "Bearer ${env:OTLP_TOKEN}"}
`, up.URL, rcv.URL))
	r := startServer(t, []string{"-config", path}, map[string]string{"OTLP_TOKEN": "otlp-s3cret"})

	const traceID, parentID = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	req, err := http.NewRequest(http.MethodPost, r.base+"/v1/chat/completions",
		strings.NewReader(`{"model":"lab:qwen3","messages":[{"role":"user","content":"hi"}]}`))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Traceparent", "00-"+traceID+"-"+parentID+"-01")
	resp, err := r.client.Do(req)
	require.NoError(t, err)
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.NoError(t, r.stop()) // the batch processor waits 5s: shutdown flushes

	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	require.Empty(t, rcv.bad)
	require.Len(t, rcv.spans, 2, "the request's span and its attempt's")
	byKind := map[tracepb.Span_SpanKind]*tracepb.Span{}
	for _, s := range rcv.spans {
		byKind[s.Kind] = s
		require.Equal(t, traceID, fmt.Sprintf("%x", s.TraceId), "the client's trace")
	}
	server, client := byKind[tracepb.Span_SPAN_KIND_SERVER], byKind[tracepb.Span_SPAN_KIND_CLIENT]
	require.NotNil(t, server)
	require.NotNil(t, client)
	require.Equal(t, "chat lab:qwen3", server.Name)
	require.Equal(t, parentID, fmt.Sprintf("%x", server.ParentSpanId))
	require.Equal(t, "chat qwen3", client.Name)
	require.Equal(t, server.SpanId, client.ParentSpanId)
	var requestID string
	for _, kv := range server.Attributes {
		if kv.Key == "llmgate.request_id" {
			requestID = kv.GetValue().GetStringValue()
		}
	}
	require.Equal(t, resp.Header.Get(gateway.HeaderRequestID), requestID)
	require.Contains(t, rcv.services, "llmgate-test")
	require.NotEmpty(t, rcv.auth)
	for _, a := range rcv.auth {
		require.Equal(t, "Bearer otlp-s3cret", a)
	}
	logs := r.stderr.String()
	require.Contains(t, logs, "tracing="+rcv.URL+"/otlp/v1/traces")
	require.NotContains(t, logs, "otlp-s3cret")
	require.NotContains(t, logs, "exporting spans failed")
}

// TestTracingExportFailure: a receiver that refuses spans is logged, and
// the gateway serves on.
func TestTracingExportFailure(t *testing.T) {
	up := newDemoUpstream(t)
	refused := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusBadRequest)
	}))
	t.Cleanup(refused.Close)
	path := filepath.Join(t.TempDir(), "llmgate.yaml")
	writeFile(t, path, fmt.Sprintf("providers:\n  - {id: lab, base_url: '%s/v1/', models: [{id: qwen3}]}\ntracing: {otlp_endpoint: '%s'}\n", up.URL, refused.URL))
	r := startServer(t, []string{"-config", path}, nil)
	resp, body := r.post(t, "/v1/chat/completions", `{"model":"lab:qwen3","messages":[{"role":"user","content":"hi"}]}`)
	require.Equal(t, http.StatusOK, resp.StatusCode, body)
	require.NoError(t, r.stop())
	require.Contains(t, r.stderr.String(), "tracing: exporting spans failed; they are dropped")
}

// TestTracingConfigErrors: a faulty tracing section stops the start, with
// the problem placed in the file.
func TestTracingConfigErrors(t *testing.T) {
	path := filepath.Join(t.TempDir(), "llmgate.yaml")
	writeFile(t, path, "tracing:\n  otlp_endpoint: http://127.0.0.1:4318\n  sample_ratio: 2\n")
	s, err := setup(path, mapEnv(nil), io.Discard)
	require.NoError(t, err)
	err = s.start(t.Context())
	require.ErrorContains(t, err, "tracing.sample_ratio: must be from 0 to 1, got 2 (line 3)")
	require.Nil(t, s.tracer)
}
