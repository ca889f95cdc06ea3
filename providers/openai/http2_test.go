package openai_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/llmgate/gateway/providers"
	"github.com/llmgate/gateway/providers/openai"
)

// TestHTTP2 checks streaming, cancellation and the not-sent classification
// over a TLS HTTP/2 connection, as used with the real APIs.
func TestHTTP2(t *testing.T) {
	var protoMajor atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		protoMajor.Store(int32(r.ProtoMajor))
		_, _ = io.Copy(io.Discard, r.Body)
		if r.Header.Get("X-Title") == "hang" {
			<-r.Context().Done()
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		rc := http.NewResponseController(w)
		for _, ev := range []string{"data: {\"a\":1}\n\n", "data: [DONE]\n\n"} {
			_, _ = io.WriteString(w, ev)
			_ = rc.Flush()
		}
	}))
	srv.EnableHTTP2 = true
	srv.StartTLS()
	t.Cleanup(srv.Close)

	p := newProvider(t, openai.Config{BaseURL: srv.URL + "/v1", Client: srv.Client()})
	key := providers.Key{ID: "k", Secret: secret}

	for i := range 2 { // the second call reuses the HTTP/2 connection
		resp, err := p.Do(context.Background(), chatRequest(true, nil), key)
		require.NoError(t, err, "call %d", i)
		body, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		require.NoError(t, resp.Body.Close())
		require.Equal(t, "data: {\"a\":1}\n\ndata: [DONE]\n\n", string(body))
		require.EqualValues(t, 2, protoMajor.Load())
	}

	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	resp, err := p.Do(ctx, chatRequest(false, http.Header{"X-Title": {"hang"}}), key)
	require.Nil(t, resp)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.False(t, errors.Is(err, providers.ErrNotSent), "a request sent over HTTP/2 was reported as not sent: %v", err)
	require.NotContains(t, err.Error(), secret)
}
