package anthropic

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"sync/atomic"
	"time"
)

// newClient returns the default upstream client: a dedicated, tuned
// *http.Transport, no Client.Timeout (it would cut off long streams; the
// gateway bounds each attempt with the request context instead) and no
// redirect following (a redirected POST would replay the body and the
// credential to another URL; the 3xx response is returned as is).
func newClient() *http.Client {
	return &http.Client{
		Transport: &http.Transport{
			Proxy: http.ProxyFromEnvironment,
			DialContext: (&net.Dialer{
				Timeout:   30 * time.Second,
				KeepAlive: 30 * time.Second,
			}).DialContext,
			ForceAttemptHTTP2:     true,
			MaxIdleConns:          256,
			MaxIdleConnsPerHost:   64,
			IdleConnTimeout:       90 * time.Second,
			TLSHandshakeTimeout:   10 * time.Second,
			ExpectContinueTimeout: time.Second,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// traceable reports whether the client's transport is the standard
// *http.Transport, whose httptrace hooks tell reliably whether a connection
// was ever obtained for a request.
func traceable(c *http.Client) bool {
	if c.Transport == nil {
		_, ok := http.DefaultTransport.(*http.Transport)
		return ok
	}
	_, ok := c.Transport.(*http.Transport)
	return ok
}

// connTrace records whether the transport obtained a connection for the
// request. Bytes of a request can reach the upstream only over a connection,
// so a failure before GotConn means the request was not sent.
type connTrace struct{ got atomic.Bool }

func (c *connTrace) gotConn(httptrace.GotConnInfo) { c.got.Store(true) }

// notSent decides whether a failed round trip provably never reached the
// upstream. With the standard transport the connection trace decides: no
// connection, no bytes sent. With any other RoundTripper only errors that
// by construction happen while connecting count: DNS, dial and proxy
// connect failures and TLS handshake failures. A context error or a timeout
// after a connection was obtained (for example while waiting for response
// headers) is never "not sent".
func notSent(err error, gotConn, traceable bool) bool {
	if gotConn {
		return false
	}
	if traceable {
		return true
	}
	return connectError(err)
}

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

// redactURL replaces the URL inside a *url.Error with shown (the target
// without its query string, which may carry configured parameters), so the
// error text holds no configured secret. The key is never part of the URL.
func redactURL(err error, shown string) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		ue.URL = shown
	}
	return err
}

// validHeaderValue reports whether v can be sent as an HTTP header value
// (no control characters other than horizontal tab).
func validHeaderValue(v string) bool {
	for i := 0; i < len(v); i++ {
		c := v[i]
		if (c < 0x20 && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

// validHeaderName reports whether n is an RFC 9110 token.
func validHeaderName(n string) bool {
	if n == "" {
		return false
	}
	for i := 0; i < len(n); i++ {
		c := n[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '!' || c == '#' || c == '$' || c == '%' || c == '&' || c == '\'' || c == '*' ||
			c == '+' || c == '-' || c == '.' || c == '^' || c == '_' || c == '`' || c == '|' || c == '~':
		default:
			return false
		}
	}
	return true
}

// reservedHeaders are set by Do or by the transport and may not appear in
// Config.Header.
var reservedHeaders = map[string]bool{
	"Content-Type":      true,
	"Content-Length":    true,
	"Accept":            true,
	"User-Agent":        true,
	"Host":              true,
	"Connection":        true,
	"Keep-Alive":        true,
	"Proxy-Connection":  true,
	"Transfer-Encoding": true,
	"Te":                true,
	"Trailer":           true,
	"Upgrade":           true,
}
