package gateway

import (
	"net/http"
	"strings"

	"github.com/llmgate/gateway/internal/httpx"
	"github.com/llmgate/gateway/providers"
)

// principal is who a request acts for. Today it is the credential the
// client sent, used only for pass-through; gateway API keys and host
// identities (step 5) add to it.
type principal struct {
	// credential is the client's Authorization: Bearer or x-api-key value.
	credential providers.Secret
}

// clientKeyID is the key ID of a credential passed through from the
// client, in attempts and events.
const clientKeyID = "client"

// authenticate finds out who the request acts for. Today every request is
// anonymous; the client's credential is kept for pass-through.
func (c *call) authenticate() *Error {
	c.principal.credential = clientCredential(c.r, c.format)
	return nil
}

// clientCredential returns the credential the client sent, preferring the
// header of its own API format.
func clientCredential(r *http.Request, f providers.Format) providers.Secret {
	bearer := ""
	if a := r.Header.Get("Authorization"); len(a) > 7 && strings.EqualFold(a[:7], "bearer ") {
		bearer = strings.TrimSpace(a[7:])
	}
	xkey := strings.TrimSpace(r.Header.Get("X-Api-Key"))
	if f == providers.FormatAnthropic && xkey != "" || bearer == "" {
		return providers.Secret(xkey)
	}
	return providers.Secret(bearer)
}

// keylessKey returns the credential for an upstream with no configured
// keys under the pass-through mode, or, when the upstream cannot take the
// client's credential and cannot work without one, the reason to skip it.
func (c *call) keylessKey(up *upstream) (key providers.Key, skip string) {
	cred := c.principal.credential
	if cred == "" {
		return providers.Key{}, "" // nothing to pass; local servers need none
	}
	client := providers.Key{ID: clientKeyID, Secret: cred, Source: providers.KeyClient}
	switch c.cfg.passThrough {
	case PassThroughAny:
		return client, ""
	case PassThroughOff:
		return providers.Key{}, ""
	}
	switch {
	case up.passThrough || c.rt.catalog.MayOwnKey(up.cat, cred.Reveal()):
		return client, ""
	case up.custom:
		// A custom provider that did not opt in is called without the
		// client's credential: the host's own tokens stay home.
		return providers.Key{}, ""
	}
	return providers.Key{}, "the client's credential is not a " + up.id + " key and " + up.id + " has no configured key"
}

// Client headers sent upstream: an allow-list per client format, plus the
// operator's additions (WithForwardHeaders). Nothing else of the client's
// request leaves the gateway.
var (
	forwardCommon    = []string{"User-Agent", "Idempotency-Key"}
	forwardOpenAI    = []string{"Openai-Organization", "Openai-Project", "Openai-Beta", "Http-Referer", "X-Title"}
	forwardAnthropic = []string{"Anthropic-Version", "Anthropic-Beta"}
)

// neverForwarded are headers no allow-list may name: credentials, cookies,
// and what the transport owns.
var neverForwarded = map[string]bool{
	"Authorization": true, "X-Api-Key": true, "Api-Key": true, "Cookie": true, "Proxy-Authorization": true,
	"Connection": true, "Keep-Alive": true, "Te": true, "Trailer": true, "Transfer-Encoding": true, "Upgrade": true,
	"Proxy-Connection": true, "Content-Length": true, "Host": true, "Content-Type": true, "Accept": true,
	"Accept-Encoding": true,
}

// headerAllowList holds, per client format, the canonical names of the
// client headers sent upstream.
type headerAllowList struct {
	openAI, anthropic []string
}

func newHeaderAllowList(extra []string) headerAllowList {
	var l headerAllowList
	l.openAI = append(append(append(l.openAI, forwardCommon...), forwardOpenAI...), extra...)
	l.anthropic = append(append(append(l.anthropic, forwardCommon...), forwardAnthropic...), extra...)
	return l
}

// filter returns the client headers of format f that may be sent upstream.
// Values are shared with in, read-only.
func (l headerAllowList) filter(in http.Header, f providers.Format) http.Header {
	names := l.openAI
	if f == providers.FormatAnthropic {
		names = l.anthropic
	}
	var out http.Header
	for _, n := range names {
		if vs := in[n]; len(vs) > 0 {
			if out == nil {
				out = make(http.Header, 4)
			}
			out[n] = vs
		}
	}
	return out
}

func validHeaderName(n string) bool { return httpx.ValidHeaderName(n) }
