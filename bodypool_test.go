package gateway

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/llmgate/gateway/catalog"
	"github.com/llmgate/gateway/providers"
	"github.com/llmgate/gateway/providers/providertest"
)

func TestBodyClass(t *testing.T) {
	for _, tc := range []struct{ n, class int }{
		{minPooledBody - 1, -1}, {minPooledBody, 0}, {minPooledBody + 1, 1}, {2 * minPooledBody, 1},
		{400_001, 3}, {maxPooledBody, bodyClasses - 1}, {maxPooledBody + 1, -1},
	} {
		require.Equal(t, tc.class, bodyClass(tc.n), "size %d", tc.n)
		if tc.class >= 0 {
			require.GreaterOrEqual(t, 1<<(minPooledBodyLog+tc.class), tc.n)
		}
	}
}

func TestBodyLeaseReturnsOnLastRelease(t *testing.T) {
	var p bodyPool
	require.Nil(t, p.lease(100), "small bodies are not pooled")
	l := p.lease(100_000)
	require.NotNil(t, l)
	require.Equal(t, 1<<17, cap(*l.buf))
	released := func() bool { return l.refs.Load() == 0 }
	l.Retain()
	l.Release()
	require.False(t, released())
	l.Release()
	require.True(t, released())

	pinned := p.lease(100_000)
	pinned.pin()
	*pinned.buf = append(*pinned.buf, "kept"...)
	pinned.Release()
	require.Equal(t, "kept", string(*pinned.buf), "a pinned buffer is never reset nor put back")
}

// lateReader is an upstream transport that, for key "sk-early", answers
// 500 at once and reads the request body only later, from another
// goroutine, as http.Transport may (RoundTrip "may close the body in a
// separate goroutine even after RoundTrip returns": it goes on writing a
// body the upstream answered early). By then the gateway has failed over
// to the next key, finished the request and started others that reuse
// pooled buffers. Other keys get their body read at once, then a
// completion.
type lateReader struct {
	mu          sync.Mutex
	wg          sync.WaitGroup
	early, rest [][]byte
	changed     int // early bodies read later that differ from the body sent
}

func (u *lateReader) RoundTrip(r *http.Request) (*http.Response, error) {
	resp := &http.Response{StatusCode: http.StatusOK, Header: http.Header{"Content-Type": {"application/json"}}, Request: r,
		Body: io.NopCloser(bytes.NewReader(providertest.OpenAIChat("m", "ok", providertest.Usage{Input: 1, Output: 1}).Body))}
	if r.Header.Get("Authorization") != "Bearer sk-early" {
		b, _ := io.ReadAll(r.Body)
		r.Body.Close()
		u.mu.Lock()
		u.rest = append(u.rest, b)
		u.mu.Unlock()
		return resp, nil
	}
	// What the body is now, read through a second reader (GetBody, as the
	// transport replays a body), to compare with what is read later.
	rb, err := r.GetBody()
	if err != nil {
		return nil, err
	}
	now, _ := io.ReadAll(rb)
	rb.Close()
	u.wg.Add(1)
	go func() {
		defer u.wg.Done()
		time.Sleep(50 * time.Millisecond)
		b, _ := io.ReadAll(r.Body)
		r.Body.Close()
		u.mu.Lock()
		u.early = append(u.early, b)
		if !bytes.Equal(b, now) {
			u.changed++
		}
		u.mu.Unlock()
	}()
	resp.StatusCode = http.StatusInternalServerError
	resp.Body = io.NopCloser(strings.NewReader(`{"error":{"message":"overloaded","type":"server_error"}}`))
	return resp, nil
}

// TestPooledBodiesNeverReusedWhileSent sends large bodies, each different,
// with a key whose transport goes on reading them after its answer,
// failing over to a second key, while other requests reuse pooled
// buffers: every body the upstream transport read must be exactly one a
// client sent. The bodies go upstream unchanged, so what is sent is the
// pooled buffer itself. Under -race, a buffer reused while the transport
// still read it is also a data race.
func TestPooledBodiesNeverReusedWhileSent(t *testing.T) {
	// As read: the body goes upstream in the buffer it was read into.
	t.Run("as read", func(t *testing.T) { pooledBodiesNeverReused(t, "") })
	// Rewritten ("models" removed): the body goes upstream in a pooled
	// buffer of its own.
	t.Run("rewritten", func(t *testing.T) { pooledBodiesNeverReused(t, `"models":["m"],`) })
}

// pooledBodiesNeverReused is TestPooledBodiesNeverReusedWhileSent with
// extra members that the gateway removes before sending the body.
func pooledBodiesNeverReused(t *testing.T, extra string) {
	up := &lateReader{}
	gw, err := New(WithHTTPClient(&http.Client{Transport: up}),
		WithProvider(ProviderConfig{ID: "alpha", BaseURL: "http://upstream.test/v1/", Format: providers.FormatOpenAI,
			Keys: []ProviderKey{{Value: "sk-early"}, {Value: "sk-late"}}, Models: []catalog.Model{{ID: "m"}}}))
	require.NoError(t, err)
	defer gw.Close()

	const clients, each, size = 4, 8, 300_000
	sent := map[string]bool{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				fill := strings.Repeat(string(rune('a'+c)), size/2) + fmt.Sprintf("%06d", i) + strings.Repeat(string(rune('k'+i)), size/2)
				body := `{"model":"m","messages":[{"role":"user","content":"` + fill + `"}]}`
				mu.Lock()
				sent[body] = true // what the upstream must read
				mu.Unlock()
				r := httptest.NewRequest(http.MethodPost, "/v1/chat/completions", strings.NewReader(`{`+extra+body[1:]))
				r.Header.Set("Content-Type", "application/json")
				w := httptest.NewRecorder()
				gw.ServeHTTP(w, r)
				if w.Code != http.StatusOK {
					t.Errorf("status %d: %.300s", w.Code, w.Body.String())
				}
			}
		}()
	}
	wg.Wait()
	up.wg.Wait()
	up.mu.Lock()
	defer up.mu.Unlock()
	require.Len(t, up.early, clients*each)
	require.Len(t, up.rest, clients*each)
	require.Zero(t, up.changed, "bodies changed while the transport still read them")
	for _, got := range append(up.early, up.rest...) {
		require.True(t, sent[string(got)], "the upstream transport read a body no client sent (%d bytes, at 150,000: %.40q)", len(got), got[min(len(got), 150_000):])
	}
}

func assertNoErr(t *testing.T, err error) bool {
	if err != nil {
		t.Error(err)
		return false
	}
	return true
}

// keepingProvider keeps every body it is given and reads them later: it
// does not implement providers.LeasesBody, so its bodies must never be
// reused.
type keepingProvider struct {
	mu   sync.Mutex
	kept [][]byte
	want []string
}

func (p *keepingProvider) Name() string { return "keeper" }
func (p *keepingProvider) Surfaces() []providers.Surface {
	return []providers.Surface{providers.SurfaceChatCompletions}
}
func (p *keepingProvider) Do(_ context.Context, req *providers.Request, _ providers.Key) (*providers.Response, error) {
	p.mu.Lock()
	p.kept = append(p.kept, req.Body)
	p.want = append(p.want, string(req.Body))
	p.mu.Unlock()
	resp := providertest.OpenAIChat("m", "ok", providertest.Usage{Input: 1, Output: 1})
	return &providers.Response{StatusCode: http.StatusOK, Header: http.Header{"Content-Type": {"application/json"}},
		Body: io.NopCloser(bytes.NewReader(resp.Body))}, nil
}

func TestBodiesOfProvidersWithoutLeasesStayTheirs(t *testing.T) {
	keeper := &keepingProvider{}
	gw, err := New(WithProvider(ProviderConfig{ID: "keeper", Provider: keeper, Keys: []ProviderKey{{Value: "sk-k"}},
		Models: []catalog.Model{{ID: "m"}}}))
	require.NoError(t, err)
	defer gw.Close()
	for i := range 8 {
		body := `{"model":"m","messages":[{"role":"user","content":"` + strings.Repeat(string(rune('a'+i)), 200_000) + `"}]}`
		r := httptest.NewRequest(http.MethodPost, "/v1/chat/completions", strings.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		gw.ServeHTTP(w, r)
		require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	}
	keeper.mu.Lock()
	defer keeper.mu.Unlock()
	require.Len(t, keeper.kept, 8)
	for i := range keeper.kept {
		require.Equal(t, keeper.want[i], string(keeper.kept[i]), "body %d changed after its request ended", i)
	}
}
