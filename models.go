package gateway

import (
	"net/http"
	"net/url"
	"strconv"

	"github.com/llmgate/gateway/catalog"
	"github.com/llmgate/gateway/internal/jsonx"
)

// serveModels answers GET /v1/models with every model the caller may use:
// in the OpenAI list shape with llmgate's metadata as extra fields, or, for
// a client that sends anthropic-version (the Anthropic SDKs), in Anthropic's
// shape. IDs are "provider:model", which every model grammar accepts.
func (c *call) serveModels() {
	rt, r := c.rt, c.r
	anthropicShape := r.Header.Get("Anthropic-Version") != ""
	buf := make([]byte, 0, 64<<10)
	if anthropicShape {
		buf = append(buf, `{"data":[`...)
	} else {
		buf = append(buf, `{"object":"list","data":[`...)
	}
	var firstID, lastID string
	for _, up := range rt.ordered {
		if !rt.allowedProvider(up) {
			continue
		}
		for _, m := range up.cat.Models {
			if !rt.allowedModel(up, m) {
				continue
			}
			if firstID != "" {
				buf = append(buf, ',')
			} else {
				firstID = up.id + ":" + m.ID
			}
			lastID = up.id + ":" + m.ID
			if anthropicShape {
				buf = appendAnthropicModel(buf, up, m)
			} else {
				buf = appendModel(buf, up, m)
			}
		}
	}
	if anthropicShape {
		buf = append(buf, `],"has_more":false,"first_id":`...)
		buf = jsonx.AppendQuote(buf, firstID)
		buf = append(buf, `,"last_id":`...)
		buf = jsonx.AppendQuote(buf, lastID)
		buf = append(buf, '}')
	} else {
		buf = append(buf, "]}"...)
	}
	c.writeJSON(http.StatusOK, buf)
}

func appendAnthropicModel(dst []byte, up *upstream, m *catalog.Model) []byte {
	name := m.DisplayName
	if name == "" {
		name = m.ID
	}
	dst = append(dst, `{"type":"model","id":`...)
	dst = jsonx.AppendQuote(dst, up.id+":"+m.ID)
	dst = append(dst, `,"display_name":`...)
	dst = jsonx.AppendQuote(dst, name)
	return append(dst, `,"created_at":"1970-01-01T00:00:00Z"}`...)
}

func appendModel(dst []byte, up *upstream, m *catalog.Model) []byte {
	owner := m.Author
	if owner == "" {
		owner = up.id
	}
	dst = append(dst, `{"id":`...)
	dst = jsonx.AppendQuote(dst, up.id+":"+m.ID)
	dst = append(dst, `,"object":"model","created":0,"owned_by":`...)
	dst = jsonx.AppendQuote(dst, owner)
	dst = append(dst, `,"provider":`...)
	dst = jsonx.AppendQuote(dst, up.id)
	dst = append(dst, `,"model":`...)
	dst = jsonx.AppendQuote(dst, m.ID)
	if m.DisplayName != "" {
		dst = append(dst, `,"display_name":`...)
		dst = jsonx.AppendQuote(dst, m.DisplayName)
	}
	if len(m.Aliases) > 0 {
		dst = append(dst, `,"aliases":[`...)
		for i, a := range m.Aliases {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = jsonx.AppendQuote(dst, a)
		}
		dst = append(dst, ']')
	}
	dst = append(dst, `,"context_window":`...)
	dst = strconv.AppendInt(dst, int64(m.ContextWindow), 10)
	dst = append(dst, `,"max_output_tokens":`...)
	dst = strconv.AppendInt(dst, int64(m.MaxOutputTokens), 10)
	dst = append(dst, `,"surfaces":[`...)
	for i, s := range up.surfaces {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = jsonx.AppendQuote(dst, string(s))
	}
	dst = append(dst, ']')
	if !m.Pricing.IsZero() {
		dst = append(dst, `,"pricing":{"input":`...)
		dst = strconv.AppendInt(dst, m.Pricing.Input, 10)
		dst = append(dst, `,"output":`...)
		dst = strconv.AppendInt(dst, m.Pricing.Output, 10)
		dst = append(dst, `,"cache_read":`...)
		dst = strconv.AppendInt(dst, m.Pricing.CacheRead, 10)
		dst = append(dst, `,"cache_write":`...)
		dst = strconv.AppendInt(dst, m.Pricing.CacheWrite, 10)
		dst = append(dst, `,"unit":"micro_usd_per_million_tokens"}`...)
	}
	if m.Deprecated {
		dst = append(dst, `,"deprecated":true`...)
	}
	return append(dst, '}')
}

// serveModel answers GET /v1/models/{id} (the SDKs' models.retrieve) with
// one model in the shape of GET /v1/models. id is any name the model
// grammar accepts; the answer's id is its "provider:model" form. A model
// the caller may not use, or none, is a 404 in the client's dialect.
func (c *call) serveModel(id string) {
	if u, err := url.PathUnescape(id); err == nil {
		id = u
	}
	if c.r.Header.Get("Anthropic-Version") != "" {
		c.format = "anthropic"
	}
	up, m, err := c.rt.findModel(id)
	if err != nil {
		err.Status = http.StatusNotFound
		c.fail(err)
		return
	}
	buf := make([]byte, 0, 1024)
	if c.r.Header.Get("Anthropic-Version") != "" {
		buf = appendAnthropicModel(buf, up, m)
	} else {
		buf = appendModel(buf, up, m)
	}
	c.writeJSON(http.StatusOK, buf)
}

// findModel resolves a model name to the first match the caller may use.
func (rt *routing) findModel(name string) (*upstream, *catalog.Model, *Error) {
	matches, err := rt.catalog.Resolve(name)
	if err != nil {
		return nil, nil, rt.resolveError(name, err)
	}
	for _, mt := range matches {
		up := rt.upstreams[lower(mt.Provider.ID)]
		if up == nil || mt.Model == nil || !rt.allowedProvider(up) || !rt.allowedModel(up, mt.Model) {
			continue
		}
		return up, mt.Model, nil
	}
	e := errorf(KindModelUnknown, "model %q is not available on this gateway", jsonSafe(name))
	e.Param = "model"
	return nil, nil, e
}

// allowedProvider reports whether requests may use the upstream under
// WithOnlyConfiguredProviders.
func (rt *routing) allowedProvider(up *upstream) bool { return !rt.cfg.onlyProviders || up.configured }

// allowedModel reports whether requests may use model m of up under
// WithOnlyConfiguredModels.
func (rt *routing) allowedModel(up *upstream, m *catalog.Model) bool {
	return !rt.cfg.onlyModels || up.listed[lower(m.ID)]
}

// writeJSON writes a complete JSON response (headers only for HEAD).
func (c *call) writeJSON(status int, body []byte) {
	h := c.w.Header()
	h["Content-Type"] = valJSON
	h.Set("Content-Length", strconv.Itoa(len(body)))
	c.writeHeader(status)
	if c.r.Method != http.MethodHead {
		c.armWrite()
		_, _ = c.w.Write(body)
	}
}
