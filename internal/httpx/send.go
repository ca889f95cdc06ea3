package httpx

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"sync/atomic"

	"github.com/llmgate/gateway/providers"
)

// Send POSTs body to t.URL with header (used as is, not copied) through
// client's Transport (http.DefaultTransport when nil) and returns the
// upstream response of any status, a redirect included, with its Body
// unread; the client's CheckRedirect and Jar are not used. traceable is
// Traceable(client), computed once per client.
//
// On failure resp is nil, err has t.Shown in place of the request URL (so
// it holds no configured query value) and notSent reports whether the
// request provably never reached the upstream: ctx was done before it was
// sent, it could not be built, or no connection could be made (DNS, dial,
// proxy, TLS handshake). err does not wrap providers.ErrNotSent: the caller
// adds it, with its own prefix, when notSent is true.
//
// With a lease (providers.Request.BodyLease), every reader of body handed
// to the transport retains it and releases it when the transport closes
// it, so the caller knows when body's memory may be reused.
func Send(ctx context.Context, client *http.Client, traceable bool, t Target, header http.Header, body []byte, lease providers.BodyLease) (resp *providers.Response, notSent bool, err error) {
	if err := ctx.Err(); err != nil {
		return nil, true, err
	}
	tr := new(connTrace)
	tr.hooks.GotConn = func(httptrace.GotConnInfo) { tr.got.Store(true) }
	tctx := httptrace.WithClientTrace(ctx, &tr.hooks)
	// A *bytes.Reader body makes NewRequest set ContentLength and GetBody, so
	// the transport can replay the body on a dead keep-alive connection.
	hreq, err := http.NewRequestWithContext(tctx, http.MethodPost, t.URL, bytes.NewReader(body))
	if err != nil {
		return nil, true, RedactURL(err, t.Shown)
	}
	hreq.Header = header
	if lease != nil {
		hreq.Body = newLeasedBody(body, lease)
		hreq.GetBody = func() (io.ReadCloser, error) { return newLeasedBody(body, lease), nil }
	}

	// The transport itself, as httputil.ReverseProxy does: a redirect is
	// an answer like any other (never followed, so a body and a credential
	// are never replayed to another URL), and the client's extra layer
	// (redirect loop, cookie jar, header copier) costs allocations and
	// stack on every request.
	rt := client.Transport
	if rt == nil {
		rt = http.DefaultTransport
	}
	hresp, err := rt.RoundTrip(hreq)
	if err != nil {
		err = &url.Error{Op: "Post", URL: t.Shown, Err: err}
		return nil, wasNotSent(err, tr.got.Load(), traceable), err
	}
	return &providers.Response{StatusCode: hresp.StatusCode, Header: hresp.Header, Body: hresp.Body}, false, nil
}

// leasedBody is a request body that holds a retain of its lease until
// the transport closes it (exactly once, however often Close is called).
type leasedBody struct {
	bytes.Reader
	lease  providers.BodyLease
	closed atomic.Bool
}

func newLeasedBody(body []byte, lease providers.BodyLease) *leasedBody {
	lease.Retain()
	b := &leasedBody{lease: lease}
	b.Reset(body)
	return b
}

// Close releases the lease the first time.
func (b *leasedBody) Close() error {
	if b.closed.CompareAndSwap(false, true) {
		b.lease.Release()
	}
	return nil
}

// connTrace records whether the transport obtained a connection for the
// request. Bytes of a request can reach the upstream only over a connection,
// so a failure before GotConn means the request was not sent. The hooks live
// in the same allocation as the flag they set.
type connTrace struct {
	got   atomic.Bool
	hooks httptrace.ClientTrace
}

// wasNotSent decides whether a failed round trip provably never reached the
// upstream. With the standard transport the connection trace decides: no
// connection, no bytes sent. With any other RoundTripper only errors that
// by construction happen while connecting count: DNS, dial and proxy
// connect failures and TLS handshake failures. A context error or a timeout
// after a connection was obtained (for example while waiting for response
// headers) is never "not sent".
func wasNotSent(err error, gotConn, traceable bool) bool {
	if gotConn {
		return false
	}
	if traceable {
		return true
	}
	return connectError(err)
}

// connectError reports whether err is one that only connecting produces.
func connectError(err error) bool {
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return true
	}
	var opErr *net.OpError
	if errors.As(err, &opErr) && (opErr.Op == "dial" || opErr.Op == "proxyconnect") {
		return true
	}
	var (
		recordErr  tls.RecordHeaderError
		verifyErr  *tls.CertificateVerificationError
		alertErr   tls.AlertError
		unknownCA  x509.UnknownAuthorityError
		hostErr    x509.HostnameError
		invalidErr x509.CertificateInvalidError
	)
	return errors.As(err, &recordErr) || errors.As(err, &verifyErr) || errors.As(err, &alertErr) ||
		errors.As(err, &unknownCA) || errors.As(err, &hostErr) || errors.As(err, &invalidErr)
}

// RedactURL replaces the URL inside a *url.Error in err's chain with shown
// (the target without its query string, which may carry configured
// parameters), so the error text holds no configured secret, and returns
// err. Call it before wrapping err: text a wrapper has already formatted
// does not change. The key is never part of the URL.
func RedactURL(err error, shown string) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		ue.URL = shown
	}
	return err
}
