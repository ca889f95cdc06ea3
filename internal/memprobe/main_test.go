package memprobe

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"runtime"
	"strings"
	"testing"
	"time"

	gateway "github.com/llmgate/gateway"
)

func upstream(release chan struct{}) *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/event-stream")
		chunk := `data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":[{"index":0,"delta":{"content":"hello"},"finish_reason":null}]}` + "\n\n"
		io.WriteString(w, `data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}`+"\n\n")
		io.WriteString(w, chunk)
		w.(http.Flusher).Flush()
		<-release
		io.WriteString(w, "data: [DONE]\n\n")
	}))
}

func measure(t *testing.T, name string, h http.Handler, n int) {
	srv := httptest.NewServer(h)
	defer srv.Close()
	body := `{"model":"gpt-4o","stream":true,"messages":[{"role":"user","content":"Hi"}]}`
	runtime.GC()
	var m0 runtime.MemStats
	runtime.ReadMemStats(&m0)
	g0 := runtime.NumGoroutine()
	var conns []net.Conn
	for i := 0; i < n; i++ {
		c, err := net.Dial("tcp", srv.Listener.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(c, "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
		rd := bufio.NewReader(c)
		resp, err := http.ReadResponse(rd, nil)
		if err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 100)
		resp.Body.Read(buf)
		conns = append(conns, c)
	}
	time.Sleep(200 * time.Millisecond)
	runtime.GC()
	var m1 runtime.MemStats
	runtime.ReadMemStats(&m1)
	g1 := runtime.NumGoroutine()
	per := func(a, b uint64) float64 { return float64(int64(b)-int64(a)) / float64(n) / 1024 }
	t.Logf("%-8s heapInuse %.1f KB  stackInuse %.1f KB  sys %.1f KB  goroutines/stream %.2f", name,
		per(m0.HeapInuse, m1.HeapInuse), per(m0.StackInuse, m1.StackInuse), per(m0.Sys, m1.Sys), float64(g1-g0)/float64(n))
	for _, c := range conns {
		c.Close()
	}
}

func TestMem(t *testing.T) {
	release := make(chan struct{})
	up := upstream(release)
	defer up.Close()
	defer close(release)
	target, _ := url.Parse(up.URL)
	rp := &httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) { r.SetURL(target) }, FlushInterval: -1,
		Transport: &http.Transport{MaxIdleConnsPerHost: 256}}
	plain := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var buf bytes.Buffer
		buf.ReadFrom(r.Body)
		b := buf.Bytes()
		r.Body = io.NopCloser(bytes.NewReader(b))
		r.ContentLength = int64(len(b))
		rp.ServeHTTP(w, r)
	})
	gw, err := gateway.New(gateway.WithProvider(gateway.ProviderConfig{ID: "openai", BaseURL: up.URL + "/v1/", Keys: []gateway.ProviderKey{{Value: "sk-x"}}}))
	if err != nil {
		t.Fatal(err)
	}
	defer gw.Close()
	_ = strings.TrimSpace
	for i := 0; i < 2; i++ {
		measure(t, "plain", plain, 1000)
		measure(t, "llmgate", gw, 1000)
	}
}
