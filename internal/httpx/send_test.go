package httpx

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

const querySecret = "query-secret-123"

// target returns the Target of the path /v1/x below root, with a query
// value that error text must never show.
func target(root string) Target {
	base, err := url.Parse(root + "/v1")
	if err != nil {
		panic(err)
	}
	return JoinURL(base, url.Values{"sig": {querySecret}}, "x")
}

// deadURL returns the root of a local address that refuses connections.
func deadURL(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	return "http://" + addr
}

func TestSend(t *testing.T) {
	type seen struct {
		method, path, query string
		header              http.Header
		body                string
		length              int64
	}
	got := make(chan seen, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- seen{r.Method, r.URL.Path, r.URL.RawQuery, r.Header, string(b), r.ContentLength}
		w.Header().Set("X-Answer", "42")
		w.WriteHeader(http.StatusTeapot)
		_, _ = io.WriteString(w, "short and stout")
	}))
	t.Cleanup(srv.Close)
	c := NewClient()
	t.Cleanup(c.CloseIdleConnections)

	header := http.Header{"X-Custom": {"a", "b"}}
	SetStandard(header, true, []string{"ua/1"})
	body := []byte(`{"model":"m"}`)
	resp, notSent, err := Send(context.Background(), c, Traceable(c), target(srv.URL), header, body, nil)
	require.NoError(t, err)
	require.False(t, notSent)
	require.Equal(t, http.StatusTeapot, resp.StatusCode, "any status is a response")
	require.Equal(t, "42", resp.Header.Get("X-Answer"))
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	require.Equal(t, "short and stout", string(b))

	s := <-got
	require.Equal(t, http.MethodPost, s.method)
	require.Equal(t, "/v1/x", s.path)
	require.Equal(t, "sig="+querySecret, s.query)
	require.Equal(t, string(body), s.body)
	require.EqualValues(t, len(body), s.length)
	require.Equal(t, []string{"a", "b"}, s.header.Values("X-Custom"))
	require.Equal(t, "text/event-stream", s.header.Get("Accept"))
	require.Equal(t, "application/json", s.header.Get("Content-Type"))
	require.Equal(t, "ua/1", s.header.Get("User-Agent"))
	require.Equal(t, http.Header{"X-Custom": {"a", "b"}, "Content-Type": {"application/json"}, "Accept": {"text/event-stream"}, "User-Agent": {"ua/1"}},
		header, "the header was modified")
}

func TestSendBodyIsReplayable(t *testing.T) {
	var seen *http.Request
	rt := rtFunc(func(r *http.Request) (*http.Response, error) {
		seen = r
		return &http.Response{StatusCode: 200, Header: http.Header{}, Body: io.NopCloser(strings.NewReader("{}")), Request: r}, nil
	})
	header := http.Header{"X-A": {"1"}}
	body := []byte(`{"a":1}`)
	resp, _, err := Send(context.Background(), &http.Client{Transport: rt}, false, target("https://x"), header, body, nil)
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	require.Equal(t, http.MethodPost, seen.Method)
	require.EqualValues(t, len(body), seen.ContentLength)
	require.Equal(t, fmt.Sprintf("%p", header), fmt.Sprintf("%p", seen.Header), "the header is used as is")
	require.NotNil(t, seen.GetBody)
	for range 2 {
		b, err := seen.GetBody()
		require.NoError(t, err)
		got, err := io.ReadAll(b)
		require.NoError(t, err)
		require.Equal(t, body, got)
	}
}

func TestSendFailures(t *testing.T) {
	// wrap hides an *http.Transport behind a RoundTripper Traceable rejects.
	wrap := func(t *testing.T, tr *http.Transport) *http.Client {
		t.Cleanup(tr.CloseIdleConnections)
		return &http.Client{Transport: rtFunc(tr.RoundTrip)}
	}
	fails := func(err error) *http.Client {
		return &http.Client{Transport: rtFunc(func(*http.Request) (*http.Response, error) { return nil, err })}
	}
	// hanging returns the root of a server that never answers.
	hanging := func(t *testing.T) string {
		done := make(chan struct{})
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body)
			select {
			case <-r.Context().Done():
			case <-done:
			}
		}))
		t.Cleanup(srv.Close)
		t.Cleanup(func() { close(done) }) // runs first: srv.Close waits for the handler
		return srv.URL
	}
	// untrusted returns the root of a TLS server whose certificate no
	// client here trusts.
	untrusted := func(t *testing.T) string {
		srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			t.Error("the upstream received a request")
		}))
		srv.Config.ErrorLog = log.New(io.Discard, "", 0)
		srv.StartTLS()
		t.Cleanup(srv.Close)
		return srv.URL
	}
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()

	tests := []struct {
		name        string
		setup       func(t *testing.T) (context.Context, *http.Client, Target)
		wantNotSent bool
		wantIs      error
	}{
		{
			name: "context done before sending",
			setup: func(t *testing.T) (context.Context, *http.Client, Target) {
				return cancelled, fails(errors.New("must not be called")), target("https://x")
			},
			wantNotSent: true,
			wantIs:      context.Canceled,
		},
		{
			name: "request cannot be built",
			setup: func(t *testing.T) (context.Context, *http.Client, Target) {
				return context.Background(), fails(errors.New("must not be called")), Target{URL: "http://x/%zz?sig=" + querySecret, Shown: "http://x/%zz"}
			},
			wantNotSent: true,
		},
		{
			name: "connection refused",
			setup: func(t *testing.T) (context.Context, *http.Client, Target) {
				return context.Background(), NewClient(), target(deadURL(t))
			},
			wantNotSent: true,
		},
		{
			name: "tls handshake failure",
			setup: func(t *testing.T) (context.Context, *http.Client, Target) {
				return context.Background(), NewClient(), target(untrusted(t))
			},
			wantNotSent: true,
		},
		{
			name: "deadline while waiting for headers",
			setup: func(t *testing.T) (context.Context, *http.Client, Target) {
				ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
				t.Cleanup(cancel)
				return ctx, NewClient(), target(hanging(t))
			},
			wantIs: context.DeadlineExceeded,
		},
		{
			name: "wrapped transport connection refused",
			setup: func(t *testing.T) (context.Context, *http.Client, Target) {
				return context.Background(), wrap(t, &http.Transport{}), target(deadURL(t))
			},
			wantNotSent: true,
		},
		{
			name: "wrapped transport tls failure",
			setup: func(t *testing.T) (context.Context, *http.Client, Target) {
				return context.Background(), wrap(t, &http.Transport{}), target(untrusted(t))
			},
			wantNotSent: true,
		},
		{
			name: "wrapped transport header timeout",
			setup: func(t *testing.T) (context.Context, *http.Client, Target) {
				return context.Background(), wrap(t, &http.Transport{ResponseHeaderTimeout: 50 * time.Millisecond}), target(hanging(t))
			},
		},
		{
			name: "custom transport plain error",
			setup: func(t *testing.T) (context.Context, *http.Client, Target) {
				return context.Background(), fails(errors.New("boom")), target("https://x")
			},
		},
		{
			name: "custom transport dns error",
			setup: func(t *testing.T) (context.Context, *http.Client, Target) {
				return context.Background(), fails(&net.DNSError{Err: "no such host", Name: "x", IsNotFound: true}), target("https://x")
			},
			wantNotSent: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, c, tgt := tt.setup(t)
			t.Cleanup(c.CloseIdleConnections)
			resp, notSent, err := Send(ctx, c, Traceable(c), tgt, http.Header{}, []byte(`{}`), nil)
			require.Error(t, err)
			require.Nil(t, resp)
			require.Equal(t, tt.wantNotSent, notSent, "error: %v", err)
			if tt.wantIs != nil {
				require.ErrorIs(t, err, tt.wantIs)
			}
			require.NotContains(t, err.Error(), querySecret)
			var ue *url.Error
			if errors.As(err, &ue) {
				require.Equal(t, tgt.Shown, ue.URL)
			}
		})
	}
}

func TestWasNotSent(t *testing.T) {
	plain := errors.New("boom")
	dial := &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}
	require.True(t, wasNotSent(plain, false, true), "standard transport, no connection")
	require.False(t, wasNotSent(dial, true, true), "a connection was obtained")
	require.False(t, wasNotSent(dial, true, false), "a connection was obtained")
	require.False(t, wasNotSent(plain, false, false), "other transport, unknown error")
	require.True(t, wasNotSent(dial, false, false), "other transport, connect error")
}

func TestConnectError(t *testing.T) {
	wrapped := func(err error) error {
		return &url.Error{Op: "Post", URL: "https://x", Err: fmt.Errorf("wrapped: %w", err)}
	}
	tests := []struct {
		err  error
		want bool
	}{
		{&net.DNSError{Err: "no such host", Name: "x", IsNotFound: true}, true},
		{&net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}, true},
		{&net.OpError{Op: "proxyconnect", Net: "tcp", Err: errors.New("connection refused")}, true},
		{&net.OpError{Op: "read", Net: "tcp", Err: errors.New("connection reset by peer")}, false},
		{&net.OpError{Op: "write", Net: "tcp", Err: errors.New("broken pipe")}, false},
		{tls.RecordHeaderError{Msg: "first record does not look like a TLS handshake"}, true},
		{&tls.CertificateVerificationError{Err: errors.New("bad")}, true},
		{tls.AlertError(40), true},
		{x509.UnknownAuthorityError{}, true},
		{x509.HostnameError{Host: "x"}, true},
		{x509.CertificateInvalidError{Reason: x509.Expired}, true},
		{context.DeadlineExceeded, false},
		{context.Canceled, false},
		{io.ErrUnexpectedEOF, false},
		{errors.New("boom"), false},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%T %v", tt.err, tt.err), func(t *testing.T) {
			require.Equal(t, tt.want, connectError(tt.err))
			require.Equal(t, tt.want, connectError(wrapped(tt.err)), "wrapped")
		})
	}
}

func TestRedactURL(t *testing.T) {
	ue := &url.Error{Op: "Post", URL: "https://x/v1/x?sig=" + querySecret, Err: errors.New("boom")}
	require.Same(t, ue, RedactURL(ue, "https://x/v1/x"))
	require.Equal(t, `Post "https://x/v1/x": boom`, ue.Error())

	// In a chain the *url.Error is changed too, but text a wrapper already
	// formatted stays: redact before wrapping.
	ue.URL = "https://x/v1/x?sig=" + querySecret
	err := fmt.Errorf("%w", ue)
	require.Same(t, err, RedactURL(err, "https://x/v1/x"))
	require.Equal(t, "https://x/v1/x", ue.URL)

	plain := errors.New("no URL here")
	require.Same(t, plain, RedactURL(plain, "https://x"))
}

// countingLease counts Retain and Release calls.
type countingLease struct{ retained, released atomic.Int32 }

func (l *countingLease) Retain()  { l.retained.Add(1) }
func (l *countingLease) Release() { l.released.Add(1) }

// TestSendLease checks that every reader of the body the transport was
// given is released once the transport is done with it: after an answer,
// after a refused connection, and after a replay on a dead keep-alive
// connection (GetBody).
func TestSendLease(t *testing.T) {
	body := []byte(strings.Repeat("x", 100_000))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if len(b) != len(body) {
			http.Error(w, "short body", http.StatusBadRequest)
			return
		}
		_, _ = io.WriteString(w, `{}`)
	}))
	defer srv.Close()
	c := NewClient()
	defer c.CloseIdleConnections()
	for _, tc := range []struct {
		name string
		root string
		ok   bool
	}{{"answered", srv.URL, true}, {"refused", deadURL(t), false}} {
		t.Run(tc.name, func(t *testing.T) {
			l := &countingLease{}
			resp, _, err := Send(context.Background(), c, Traceable(c), target(tc.root), http.Header{}, body, l)
			if tc.ok {
				require.NoError(t, err)
				require.Equal(t, http.StatusOK, resp.StatusCode)
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			} else {
				require.Error(t, err)
			}
			require.Eventually(t, func() bool {
				return l.retained.Load() > 0 && l.retained.Load() == l.released.Load()
			}, 5*time.Second, time.Millisecond, "retained %d, released %d", l.retained.Load(), l.released.Load())
		})
	}
	t.Run("replayed", func(t *testing.T) {
		// A transport that reads a little of the body, then replays it
		// through GetBody, as http.Transport does on a dead keep-alive
		// connection.
		l := &countingLease{}
		rt := rtFunc(func(r *http.Request) (*http.Response, error) {
			_, _ = r.Body.Read(make([]byte, 10))
			r.Body.Close()
			b2, err := r.GetBody()
			if err != nil {
				return nil, err
			}
			all, _ := io.ReadAll(b2)
			b2.Close()
			b2.Close() // a second Close releases nothing more
			if len(all) != len(body) {
				return nil, fmt.Errorf("replayed %d bytes", len(all))
			}
			return &http.Response{StatusCode: 200, Body: io.NopCloser(strings.NewReader(`{}`)), Header: http.Header{}}, nil
		})
		resp, _, err := Send(context.Background(), &http.Client{Transport: rt}, false, target("https://x"), http.Header{}, body, l)
		require.NoError(t, err)
		resp.Body.Close()
		require.EqualValues(t, 2, l.retained.Load())
		require.EqualValues(t, 2, l.released.Load())
	})
}
