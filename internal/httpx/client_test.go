package httpx

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"
)

// rtFunc is a RoundTripper that is not an *http.Transport.
type rtFunc func(*http.Request) (*http.Response, error)

func (f rtFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestNewClient(t *testing.T) {
	c := NewClient()
	t.Cleanup(c.CloseIdleConnections)
	require.Zero(t, c.Timeout, "a client timeout would cut off long streams")
	tr, ok := c.Transport.(*http.Transport)
	require.True(t, ok)
	require.True(t, tr.ForceAttemptHTTP2)
	require.NotNil(t, tr.Proxy)
	require.NotNil(t, tr.DialContext)
	require.NotZero(t, tr.TLSHandshakeTimeout)
	require.NotSame(t, http.DefaultTransport, c.Transport)
	require.NotSame(t, tr, NewClient().Transport, "every client has its own transport")

	t.Run("redirects are not followed", func(t *testing.T) {
		var hits atomic.Int32
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			hits.Add(1)
			http.Redirect(w, r, "https://elsewhere.example/v1", http.StatusTemporaryRedirect)
		}))
		t.Cleanup(srv.Close)
		resp, err := c.Post(srv.URL, "application/json", nil)
		require.NoError(t, err)
		require.NoError(t, resp.Body.Close())
		require.Equal(t, http.StatusTemporaryRedirect, resp.StatusCode)
		require.EqualValues(t, 1, hits.Load())
	})
}

func TestTraceable(t *testing.T) {
	stub := rtFunc(func(*http.Request) (*http.Response, error) { return nil, errors.New("unused") })
	require.True(t, Traceable(NewClient()))
	require.True(t, Traceable(&http.Client{}), "nil Transport means http.DefaultTransport")
	require.True(t, Traceable(&http.Client{Transport: &http.Transport{}}))
	require.False(t, Traceable(&http.Client{Transport: stub}))
}
