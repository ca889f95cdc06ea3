package openai_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/llmgate/gateway/providers"
	"github.com/llmgate/gateway/providers/openai"
)

// BenchmarkDo measures one Do call, reading and closing the response. The
// "server" case goes through a real connection to an httptest server (its
// allocations include the client and server sides of net/http); the "stub"
// case uses a RoundTripper that answers in memory, so its allocations are
// close to those of Do itself.
func BenchmarkDo(b *testing.B) {
	body := []byte(`{"model":"m","messages":[{"role":"user","content":"hi"}]}`)
	client := http.Header{"Openai-Beta": {"assistants=v2"}, "X-Title": {"bench"}, "Cookie": {"a=b"}}
	cfg := openai.Config{
		Name:   "bench",
		Header: http.Header{"X-Extra": {"a"}, "Http-Referer": {"https://operator.example"}},
		Query:  url.Values{"api-version": {"2024-10-21"}},
	}
	run := func(b *testing.B, cfg openai.Config) {
		p, err := openai.New(cfg)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(p.CloseIdleConnections)
		req := &providers.Request{Surface: providers.SurfaceChatCompletions, Model: "m", Body: body, Header: client}
		key := providers.Key{ID: "key-1", Secret: "sk-bench"}
		ctx := context.Background()
		b.ReportAllocs()
		for b.Loop() {
			resp, err := p.Do(ctx, req, key)
			if err != nil {
				b.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
		}
	}
	b.Run("server", func(b *testing.B) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body)
			w.Header()["Content-Type"] = []string{"application/json"}
			_, _ = io.WriteString(w, `{"ok":true}`)
		}))
		b.Cleanup(srv.Close)
		cfg := cfg
		cfg.BaseURL = srv.URL + "/v1"
		run(b, cfg)
	})
	b.Run("stub", func(b *testing.B) {
		header := http.Header{"Content-Type": {"application/json"}}
		rt := rtFunc(func(r *http.Request) (*http.Response, error) {
			return &http.Response{StatusCode: 200, Header: header, Body: io.NopCloser(strings.NewReader(`{"ok":true}`)), Request: r}, nil
		})
		cfg := cfg
		cfg.BaseURL = "https://upstream.example/v1"
		cfg.Client = &http.Client{Transport: rt}
		run(b, cfg)
	})
}
