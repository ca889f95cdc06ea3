package gateway

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/llmgate/gateway/internal/benchcpu"
	"github.com/llmgate/gateway/providers/providertest"
)

// BenchmarkPacedStream relays streams whose chunks arrive 2 ms apart, 16
// at a time, through a plain httputil.ReverseProxy and through llmgate, and
// reports the process CPU per stream (cpu-ns/op, the upstream's included):
// the relay's cost where every chunk wakes the proxy up, as in the load
// benchmark's streaming scenario, without its noise.
func BenchmarkPacedStream(b *testing.B) {
	deltas := strings.Fields("Hello ! How can I help you today ? I am a benchmark stream with twenty chunks of text .")
	stream := providertest.OpenAIChatStream("gpt-4o-mini", deltas, providertest.Usage{Input: 25, Output: 20}, true).StreamBytes()
	events := bytes.SplitAfter(stream, []byte("\n\n"))
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/event-stream")
		f := w.(http.Flusher)
		for _, ev := range events {
			_, _ = w.Write(ev)
			f.Flush()
			time.Sleep(2 * time.Millisecond)
		}
	}))
	b.Cleanup(up.Close)
	transport := &http.Transport{MaxIdleConnsPerHost: 256}
	b.Cleanup(transport.CloseIdleConnections)
	client := &http.Client{Transport: transport}
	gw, err := New(WithHTTPClient(client),
		WithProvider(ProviderConfig{ID: "openai", BaseURL: up.URL + "/v1/", Keys: []ProviderKey{{Value: "sk-bench"}}}))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = gw.Close() })
	proxy := benchProxy(up.URL, transport)
	body := []byte(benchRequest + `,"stream":true,"stream_options":{"include_usage":true}}`)
	for _, h := range []struct {
		name string
		h    http.Handler
	}{{"reverseproxy", proxy}, {"llmgate", gw}} {
		b.Run(h.name, func(b *testing.B) {
			defer benchcpu.Report(b)()
			b.SetParallelism(16)
			b.RunParallel(func(pb *testing.PB) {
				w := &discardWriter{h: http.Header{}}
				for pb.Next() {
					w.reset()
					r := httptest.NewRequest(http.MethodPost, "/v1/chat/completions", bytes.NewReader(body))
					r.Header.Set("Content-Type", "application/json")
					h.h.ServeHTTP(w, r)
					if w.status != http.StatusOK {
						b.Errorf("status %d", w.status)
						return
					}
				}
			})
		})
	}
}
