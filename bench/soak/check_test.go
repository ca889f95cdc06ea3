package main

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/llmgate/gateway/providers"
	"github.com/llmgate/gateway/providers/providertest"
)

func TestCheck(t *testing.T) {
	const marker = "soak-test-1"
	deltas := replyDeltas(marker)
	text := strings.Join(deltas, "")
	oaModel, anModel := "openai:gpt-4o-mini", "anthropic:claude-haiku-4-5"
	oaPlan := func(stream bool) *plan {
		return &plan{marker: marker, format: providers.FormatOpenAI, stream: stream, models: []string{oaModel}}
	}
	anPlan := func(stream bool) *plan {
		return &plan{marker: marker, format: providers.FormatAnthropic, stream: stream, models: []string{anModel}}
	}
	rec := func(id, model string, f fault) attemptRecord {
		provider, m, _ := strings.Cut(model, ":")
		return attemptRecord{id: id, provider: provider, model: m, keyID: "key-" + id, fault: f}
	}
	served := func(model, upID, attempts, ct string) http.Header {
		h := http.Header{"Llmgate-Request-Id": {"req_test"}, "Llmgate-Attempts": {attempts}, "Llmgate-Model": {model}, "Content-Type": {ct}}
		if strings.HasPrefix(model, "anthropic:") {
			h.Set("Llmgate-Upstream-Request-Id", upID)
		} else {
			h.Set("Llmgate-Upstream-X-Request-Id", upID)
		}
		return h
	}
	failed := func(attempts string) http.Header {
		return http.Header{"Llmgate-Request-Id": {"req_test"}, "Llmgate-Attempts": {attempts}, "Content-Type": {"application/json"}}
	}
	oaStream := providertest.OpenAIChatStream("gpt-4o-mini", deltas, providertest.Usage{}, false).StreamBytes()
	anStream := providertest.AnthropicStream("claude-haiku-4-5", deltas, providertest.Usage{}).StreamBytes()
	oaCut := oaStream[:bytes.LastIndex(oaStream, []byte("data: [DONE]"))]
	oaFailed := append(append([]byte(nil), oaCut...), `data: {"error":{"message":"upstream stream failed","type":"server_error","param":null,"code":"stream_failed"}}`+"\n\n"...)
	oaIdle := append(append([]byte(nil), oaCut...), `data: {"error":{"message":"upstream stream failed: stream idle for 500ms","type":"server_error","param":null,"code":"stream_failed"}}`+"\n\n"...)
	anNoCode := append(bytes.Clone(anStream[:bytes.Index(anStream, []byte("event: content_block_stop"))]),
		"event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"api_error\",\"message\":\"upstream stream failed\"}}\n\n"...)

	for _, tc := range []struct {
		name      string
		plan      *plan
		result    result
		recs      []attemptRecord
		wantClass string
		want      []string // violation kinds
		wantNotes []string
	}{
		{
			name: "openai JSON ok", plan: oaPlan(false),
			result:    result{status: 200, header: served(oaModel, "up-1", "1", "application/json"), body: providertest.OpenAIChat("gpt-4o-mini", text, providertest.Usage{}).Body},
			recs:      []attemptRecord{rec("up-1", oaModel, faultNone)},
			wantClass: classOKJSON,
		},
		{
			name: "anthropic JSON ok after failover", plan: anPlan(false),
			result: result{status: 200, header: served(anModel, "up-2", "2", "application/json"), body: providertest.AnthropicMessage("claude-haiku-4-5", text, providertest.Usage{}).Body},
			recs:   []attemptRecord{rec("up-1", anModel, faultReset), rec("up-2", anModel, faultSlow)}, wantClass: classOKJSON,
		},
		{
			name: "JSON served from a truncated upstream body", plan: oaPlan(false),
			result:    result{status: 200, header: served(oaModel, "up-1", "1", "application/json"), body: []byte(`{"id":"x","choices":[{"message":{}}`)},
			recs:      []attemptRecord{rec("up-1", oaModel, faultTruncShort)},
			wantClass: classViolation,
			want:      []string{"served from a failed upstream attempt (truncated JSON (short body))", "JSON response is not valid JSON"},
		},
		{
			name: "another request's answer", plan: oaPlan(false),
			result:    result{status: 200, header: served(oaModel, "up-1", "1", "application/json"), body: providertest.OpenAIChat("gpt-4o-mini", "Reply to soak-test-2:", providertest.Usage{}).Body},
			recs:      []attemptRecord{rec("up-1", oaModel, faultNone)},
			wantClass: classViolation, want: []string{"wrong content"},
		},
		{
			name: "upstream ID not this request's", plan: oaPlan(false),
			result:    result{status: 200, header: served(oaModel, "up-9", "1", "application/json"), body: providertest.OpenAIChat("gpt-4o-mini", text, providertest.Usage{}).Body},
			recs:      []attemptRecord{rec("up-1", oaModel, faultNone)},
			wantClass: classViolation, want: []string{"response not traceable to this request's upstream requests"},
		},
		{
			name: "more upstream requests than attempts", plan: oaPlan(false),
			result:    result{status: 200, header: served(oaModel, "up-2", "1", "application/json"), body: providertest.OpenAIChat("gpt-4o-mini", text, providertest.Usage{}).Body},
			recs:      []attemptRecord{rec("up-1", oaModel, faultHang), rec("up-2", oaModel, faultNone)},
			wantClass: classViolation, want: []string{"upstream saw more requests than Llmgate-Attempts"},
		},
		{
			name: "openai stream ok", plan: oaPlan(true),
			result:    result{status: 200, header: served(oaModel, "up-1", "1", "text/event-stream"), body: oaStream},
			recs:      []attemptRecord{rec("up-1", oaModel, faultDropAfterEnd)},
			wantClass: classOKStream,
		},
		{
			name: "anthropic client, cross-format stream ok", plan: &plan{marker: marker, format: providers.FormatAnthropic, stream: true, models: []string{oaModel}},
			result:    result{status: 200, header: served(oaModel, "up-1", "1", "text/event-stream"), body: anStream},
			recs:      []attemptRecord{rec("up-1", oaModel, faultNone)},
			wantClass: classOKStream,
		},
		{
			name: "include_usage stream without usage", plan: &plan{marker: marker, format: providers.FormatOpenAI, stream: true, includeUsage: true, models: []string{oaModel}},
			result:    result{status: 200, header: served(oaModel, "up-1", "1", "text/event-stream"), body: oaStream},
			recs:      []attemptRecord{rec("up-1", oaModel, faultNone)},
			wantClass: classViolation, want: []string{"include_usage stream without a usage chunk"},
		},
		{
			name: "clean end after the upstream broke", plan: oaPlan(true),
			result:    result{status: 200, header: served(oaModel, "up-1", "1", "text/event-stream"), body: oaStream},
			recs:      []attemptRecord{rec("up-1", oaModel, faultDropAfter)},
			wantClass: classViolation, want: []string{"stream ended cleanly after the upstream failed"},
		},
		{
			name: "in-stream error after a drop", plan: oaPlan(true),
			result:    result{status: 200, header: served(oaModel, "up-1", "1", "text/event-stream"), body: oaFailed},
			recs:      []attemptRecord{rec("up-1", oaModel, faultDropAfter)},
			wantClass: classStreamFailed,
		},
		{
			name: "in-stream error from an upstream that answered well", plan: oaPlan(true),
			result:    result{status: 200, header: served(oaModel, "up-1", "1", "text/event-stream"), body: oaFailed},
			recs:      []attemptRecord{rec("up-1", oaModel, faultSlow)},
			wantClass: classViolation, want: []string{"in-stream error from an upstream that answered well"},
		},
		{
			name: "idle cut of a good stream", plan: oaPlan(true),
			result:    result{status: 200, header: served(oaModel, "up-1", "1", "text/event-stream"), body: oaIdle},
			recs:      []attemptRecord{rec("up-1", oaModel, faultSlow)},
			wantClass: classViolation, want: []string{"in-stream error from an upstream that answered well"},
		},
		{
			name: "stream cut by the per-attempt timeout after the commit", plan: oaPlan(true),
			result: result{status: 200, header: served(oaModel, "up-1", "1", "text/event-stream"),
				body: bytes.Replace(oaIdle, []byte("stream idle for 500ms"), []byte("no answer within the per-attempt timeout of 500ms"), 1)},
			recs:      []attemptRecord{rec("up-1", oaModel, faultSlow)},
			wantClass: classViolation, want: []string{"stream committed after its attempt or total timeout fired"},
		},
		{
			name: "idle cut of a good stream during a process stall", plan: oaPlan(true),
			result:    result{status: 200, header: served(oaModel, "up-1", "1", "text/event-stream"), body: oaIdle, stall: 300 * time.Millisecond},
			recs:      []attemptRecord{rec("up-1", oaModel, faultSlow)},
			wantClass: classStreamFailed, wantNotes: []string{"idle cut of a good stream during a process stall"},
		},
		{
			name: "in-stream error without code", plan: anPlan(true),
			result:    result{status: 200, header: served(anModel, "up-1", "1", "text/event-stream"), body: anNoCode},
			recs:      []attemptRecord{rec("up-1", anModel, faultStallAfter)},
			wantClass: classViolation, want: []string{"in-stream error without code stream_failed"},
		},
		{
			name: "stream without terminal or error event", plan: oaPlan(true),
			result:    result{status: 200, header: served(oaModel, "up-1", "1", "text/event-stream"), body: oaCut},
			recs:      []attemptRecord{rec("up-1", oaModel, faultEOFAfter)},
			wantClass: classViolation, want: []string{"stream ended without a terminal or error event"},
		},
		{
			name: "stream cut by the gateway", plan: oaPlan(true),
			result:    result{status: 200, header: served(oaModel, "up-1", "1", "text/event-stream"), body: oaCut, err: io.ErrUnexpectedEOF},
			recs:      []attemptRecord{rec("up-1", oaModel, faultDropAfter)},
			wantClass: classViolation, want: []string{"stream cut without an error event"},
		},
		{
			name: "planned hang-up mid-stream", plan: &plan{marker: marker, format: providers.FormatOpenAI, stream: true, models: []string{oaModel}, cfault: clientDisconnect},
			result:    result{status: 200, header: served(oaModel, "up-1", "1", "text/event-stream"), body: oaCut[:len(oaCut)/2], hungUp: true},
			recs:      []attemptRecord{rec("up-1", oaModel, faultNone)},
			wantClass: classHungUp,
		},
		{
			name: "all providers failed", plan: anPlan(true),
			result: result{status: 503, header: failed("2"),
				body: []byte(`{"type":"error","error":{"type":"api_error","message":"all 2 upstream attempts failed","code":"all_providers_failed"}}`)},
			recs:      []attemptRecord{rec("up-1", anModel, faultStatus5xx), rec("up-2", anModel, faultDropBefore)},
			wantClass: classErrorPrefix + "all_providers_failed",
		},
		{
			name: "all providers failed although one answered", plan: oaPlan(false),
			result: result{status: 503, header: failed("1"),
				body: []byte(`{"error":{"message":"the upstream request failed","type":"server_error","param":null,"code":"all_providers_failed"}}`)},
			recs:      []attemptRecord{rec("up-1", oaModel, faultNone)},
			wantClass: classViolation, want: []string{"failed although an upstream answered well"},
		},
		{
			name: "all providers failed, the good answer timed out", plan: oaPlan(false),
			result: result{status: 503, header: failed("2"),
				body: []byte(`{"error":{"message":"failed","type":"server_error","param":null,"code":"all_providers_failed",` +
					`"attempts":[{"provider":"openai","model":"gpt-4o-mini","key_id":"key-up-1","error":"http_status"},` +
					`{"provider":"openai","model":"gpt-4o-mini","key_id":"key-up-2","error":"timeout"}]}}`)},
			recs:      []attemptRecord{rec("up-1", oaModel, faultStatus5xx), rec("up-2", oaModel, faultNone)},
			wantClass: classErrorPrefix + "all_providers_failed",
		},
		{
			name: "every key cooling without Retry-After", plan: oaPlan(false),
			result: result{status: 503, header: failed("0"),
				body: []byte(`{"error":{"message":"every candidate was skipped","type":"server_error","param":null,"code":"all_providers_failed"}}`)},
			wantClass: classViolation, want: []string{"every key cooling but no Retry-After"},
		},
		{
			name: "error in the other dialect", plan: anPlan(false),
			result: result{status: 503, header: failed("1"),
				body: []byte(`{"error":{"message":"failed","type":"server_error","param":null,"code":"all_providers_failed"}}`)},
			recs:      []attemptRecord{rec("up-1", anModel, faultHang)},
			wantClass: classViolation, want: []string{"error body not in the client's dialect"},
		},
		{
			name: "undocumented code", plan: oaPlan(false),
			result: result{status: 503, header: failed("1"),
				body: []byte(`{"error":{"message":"failed","type":"server_error","param":null,"code":"overloaded"}}`)},
			recs:      []attemptRecord{rec("up-1", oaModel, faultHang)},
			wantClass: classViolation, want: []string{"undocumented error code"},
		},
		{
			name: "status not the code's", plan: oaPlan(false),
			result: result{status: 500, header: failed("1"),
				body: []byte(`{"error":{"message":"timeout","type":"server_error","param":null,"code":"total_timeout"}}`)},
			recs:      []attemptRecord{rec("up-1", oaModel, faultHang)},
			wantClass: classViolation, want: []string{"error status does not match its code"},
		},
		{
			name: "documented but unexpected code", plan: oaPlan(false),
			result: result{status: 500, header: failed("1"),
				body: []byte(`{"error":{"message":"internal error","type":"server_error","param":null,"code":"internal_error"}}`)},
			recs:      []attemptRecord{rec("up-1", oaModel, faultNone)},
			wantClass: classViolation, want: []string{"unexpected error code"},
		},
		{
			name: "same key twice", plan: oaPlan(false),
			result: result{status: 504, header: failed("2"),
				body: []byte(`{"error":{"message":"total timeout","type":"server_error","param":null,"code":"total_timeout"}}`)},
			recs: []attemptRecord{rec("up-1", oaModel, faultHang),
				{id: "up-2", provider: "openai", model: "gpt-4o-mini", keyID: "key-up-1", fault: faultHang}},
			wantClass: classViolation, want: []string{"same (model, key) tried twice"},
		},
		{
			name: "gateway never answered", plan: oaPlan(true), result: result{timedOut: true},
			wantClass: classViolation, want: []string{"request never finished"},
		},
		{
			name: "client canceled before the answer", plan: oaPlan(true), result: result{canceled: true, err: io.ErrUnexpectedEOF},
			wantClass: classCanceled,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := check(tc.plan, &tc.result, tc.recs)
			var kinds []string
			for _, v := range o.violations {
				kinds = append(kinds, v.kind)
			}
			require.ElementsMatch(t, tc.want, kinds, "%+v", o.violations)
			require.Equal(t, tc.wantClass, o.class)
			var notes []string
			for _, n := range o.notes {
				notes = append(notes, n.kind)
			}
			require.ElementsMatch(t, tc.wantNotes, notes)
		})
	}
}

func TestSplitSSE(t *testing.T) {
	evs, rest := splitSSE([]byte(": ping\n\nevent: a\ndata: 1\ndata: 2\n\ndata: [DONE]\n\ndata: par"))
	require.Equal(t, []sseEvent{{comment: true}, {name: "a", data: "1\n2"}, {data: "[DONE]"}}, evs)
	require.Equal(t, "data: par", string(rest))
}

func TestStallMonitorDuring(t *testing.T) {
	t0 := time.Unix(1000, 0)
	m := &stallMonitor{period: 5 * time.Millisecond, stalls: []stall{
		{start: t0, late: 200 * time.Millisecond},
		{start: t0.Add(time.Second), late: 150 * time.Millisecond},
	}}
	require.Equal(t, 200*time.Millisecond, m.during(t0.Add(-time.Second), t0.Add(time.Millisecond)))
	require.Equal(t, 200*time.Millisecond, m.during(t0.Add(100*time.Millisecond), t0.Add(300*time.Millisecond)), "inside the stall")
	require.Equal(t, time.Duration(0), m.during(t0.Add(300*time.Millisecond), t0.Add(900*time.Millisecond)), "between stalls")
	require.Equal(t, 200*time.Millisecond, m.during(t0.Add(-time.Second), t0.Add(2*time.Second)), "the longest of both")
	require.Equal(t, 150*time.Millisecond, m.during(t0.Add(1100*time.Millisecond), t0.Add(2*time.Second)))
}
