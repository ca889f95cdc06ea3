package gateway

import (
	"net/http"
	"net/url"
	"strings"
)

// corsExposed are the response headers browser code may read.
const corsExposed = "Llmgate-Request-Id, Llmgate-Attempts, Llmgate-Model, Llmgate-Rejected-Models, Llmgate-Removed-Params, " +
	"Llmgate-Upstream-X-Request-Id, Llmgate-Upstream-Request-Id, Retry-After, X-Should-Retry"

// cors handles a request that carries an Origin header when WithCORS is
// set: it answers preflights (OPTIONS with Access-Control-Request-Method)
// itself, adds the CORS headers to requests from allowed origins, and
// refuses requests from other origins with 403 origin_not_allowed (a
// same-origin request is always allowed). It reports whether the request
// goes on.
func (c *call) cors(routed bool) bool {
	origin := c.r.Header.Get("Origin")
	h := c.w.Header()
	h.Add("Vary", "Origin")
	allow := c.allowOrigin(origin)
	if allow == "" {
		c.fail(errorf(KindOriginNotAllowed, "requests from origin %q are not allowed (see WithCORS)", jsonSafe(truncate(origin, 256))))
		return false
	}
	h.Set("Access-Control-Allow-Origin", allow)
	if c.r.Method != http.MethodOptions || c.r.Header.Get("Access-Control-Request-Method") == "" {
		h.Set("Access-Control-Expose-Headers", corsExposed)
		return true
	}
	if !routed {
		return true // a 404 for the preflight
	}
	h.Add("Vary", "Access-Control-Request-Method")
	h.Add("Vary", "Access-Control-Request-Headers")
	h.Set("Access-Control-Allow-Methods", "GET, POST, OPTIONS")
	if req := c.r.Header.Get("Access-Control-Request-Headers"); req != "" {
		var names []string
		for _, n := range strings.Split(req, ",") {
			if n = strings.TrimSpace(n); validHeaderName(n) {
				names = append(names, n)
			}
		}
		if len(names) > 0 {
			h.Set("Access-Control-Allow-Headers", strings.Join(names, ", "))
		}
	}
	h.Set("Access-Control-Max-Age", "600")
	c.w.Header()[HeaderAttempts] = attemptsZero
	c.writeHeader(http.StatusNoContent)
	return false
}

// allowOrigin returns the Access-Control-Allow-Origin value for origin:
// "*" when every origin is allowed, origin itself when it is listed or is
// the request's own, else "".
func (c *call) allowOrigin(origin string) string {
	for _, o := range c.cfg.corsOrigins {
		switch {
		case o == "*":
			return "*"
		case strings.EqualFold(o, origin):
			return origin
		}
	}
	if u, err := url.Parse(origin); err == nil && u.Host != "" && strings.EqualFold(u.Host, c.r.Host) {
		return origin
	}
	return ""
}
