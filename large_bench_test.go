package gateway

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"strings"
	"testing"
)

// largeBody returns a chat completions request of about size bytes: a
// conversation of prose and code turns, as a long coding session grows.
func largeBody(size int, stream bool) []byte {
	type msg struct {
		Role    string `json:"role"`
		Content string `json:"content"`
	}
	msgs := []msg{{Role: "system", Content: "You are a senior Go engineer. Answer precisely."}}
	para := "The handler reads the body once, parses the model and streams the answer back; \"quotes\" and\ttabs\nand newlines appear in code. "
	code := "func (c *call) run() {\n\tif e := c.authenticate(); e != nil {\n\t\tc.fail(e)\n\t\treturn\n\t}\n}\n"
	total := 0
	for i := 0; total < size || msgs[len(msgs)-1].Role != "user"; i++ {
		role := "user"
		if i%2 == 1 {
			role = "assistant"
		}
		text := strings.Repeat(para, 8) + fmt.Sprintf("Turn %d:\n", i) + strings.Repeat(code, 6)
		msgs = append(msgs, msg{Role: role, Content: text})
		total += len(text)
	}
	req := map[string]any{"model": "gpt-4o-mini", "messages": msgs, "max_tokens": 400, "temperature": 0.2}
	if stream {
		req["stream"] = true
	}
	b, _ := json.Marshal(req)
	return b
}

// benchPair returns llmgate with one "openai" provider at upstream and a
// plain httputil.ReverseProxy to it, sharing one transport.
func benchPair(b *testing.B, upstream string) (*Gateway, *httputil.ReverseProxy) {
	transport := &http.Transport{MaxIdleConnsPerHost: 256}
	b.Cleanup(transport.CloseIdleConnections)
	gw, err := New(WithHTTPClient(&http.Client{Transport: transport}),
		WithProvider(ProviderConfig{ID: "openai", BaseURL: upstream + "/v1/", Keys: []ProviderKey{{Value: "sk-bench"}}}))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = gw.Close() })
	return gw, benchProxy(upstream, transport)
}

// BenchmarkLargeRequest measures a 400 KB (~100k-token) request through
// the whole handler next to a plain httputil.ReverseProxy, in one run.
func BenchmarkLargeRequest(b *testing.B) {
	gw, proxy := benchPair(b, benchUpstream(b).URL)
	for _, stream := range []bool{false, true} {
		body := largeBody(400_000, stream)
		mode := "json"
		if stream {
			mode = "stream"
		}
		newReq := func() *http.Request {
			r := httptest.NewRequest(http.MethodPost, "/v1/chat/completions", bytes.NewReader(body))
			r.Header.Set("Content-Type", "application/json")
			return r
		}
		for _, h := range []struct {
			name string
			h    http.Handler
		}{{"reverseproxy", proxy}, {"llmgate", gw}} {
			b.Run(mode+"/"+h.name, func(b *testing.B) {
				b.ReportAllocs()
				b.SetBytes(int64(len(body)))
				w := &discardWriter{h: http.Header{}}
				for b.Loop() {
					w.reset()
					h.h.ServeHTTP(w, newReq())
					if w.status != http.StatusOK {
						b.Fatalf("status %d", w.status)
					}
				}
			})
		}
	}
}
