package gateway

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/llmgate/gateway/catalog"
	"github.com/llmgate/gateway/providers"
)

// candidate is one entry of a request's failover plan.
type candidate struct {
	up            *upstream
	model         *catalog.Model // nil for an unknown model passed through with a provider prefix
	upstreamModel string         // the model ID sent upstream
}

// route is how a candidate serves one request: on which upstream surface,
// and whether the body and the answer must be translated between the
// OpenAI and Anthropic formats.
type route struct {
	surface   providers.Surface
	translate bool
}

// route decides how the candidate can answer a request on surface s:
// natively when its provider serves s, else through translation between
// chat completions and messages. ok is false, with the reason, when it
// cannot answer at all.
func (c *candidate) route(s providers.Surface) (rt route, ok bool, why string) {
	if c.model != nil {
		emb := c.model.HasFeature(catalog.FeatureEmbeddings)
		switch {
		case emb && s != providers.SurfaceEmbeddings:
			return route{}, false, "model " + c.model.ID + " is an embeddings model"
		case !emb && s == providers.SurfaceEmbeddings:
			return route{}, false, "model " + c.model.ID + " is not an embeddings model"
		case s != providers.SurfaceResponses && c.model.HasFeature(catalog.FeatureResponsesOnly):
			return route{}, false, "model " + c.model.ID + " is served on the responses API only"
		}
	}
	if c.up.serves(s) {
		return route{surface: s}, true, ""
	}
	switch {
	case s == providers.SurfaceChatCompletions && c.up.serves(providers.SurfaceMessages):
		return route{surface: providers.SurfaceMessages, translate: true}, true, ""
	case s == providers.SurfaceMessages && c.up.serves(providers.SurfaceChatCompletions):
		return route{surface: providers.SurfaceChatCompletions, translate: true}, true, ""
	}
	return route{}, false, "provider " + c.up.id + " does not serve " + string(s)
}

// maxOutputTokens returns the catalog's max output tokens of the model, or
// 0 when unknown.
func (c *candidate) maxOutputTokens() int {
	if c.model == nil {
		return 0
	}
	return c.model.MaxOutputTokens
}

// name returns "provider:model".
func (c *candidate) name() string { return c.up.id + ":" + c.upstreamModel }

// isAuto reports whether name asks for the gateway's default choice.
func isAuto(name string) bool {
	return strings.EqualFold(name, "auto") || strings.EqualFold(name, "llmgate/auto") || strings.EqualFold(name, "llmgate:auto")
}

// plan is the planning phase: the candidates in order, the headers sent
// upstream, and the fields the request's API requires.
func (c *call) plan() *Error {
	cands, rejected, err := c.rt.plan(c.surface, c.parsed.names())
	c.rejected = rejected
	if len(rejected) > 0 {
		ms := make([]string, len(rejected))
		for i, r := range rejected {
			ms[i] = r.Model
		}
		c.w.Header().Set(HeaderRejectedModels, strings.Join(ms, ", "))
	}
	if err != nil {
		return err
	}
	c.cands = cands
	c.header = c.rt.forward.filter(c.r.Header, c.format)
	return c.parsed.requireFields(c.surface)
}

// plan turns the client's model preferences into the ordered failover plan.
// An unknown model or provider fails the whole request (a typo should be
// seen, not silently skipped); models refused by the only-configured rules
// are skipped and reported as rejections, and fail the request only when
// nothing else remains.
func (rt *routing) plan(surface providers.Surface, names []string) ([]candidate, []Rejection, *Error) {
	pl := planner{rt: rt}
	auto := len(names) == 0
	for _, n := range names {
		if isAuto(n) {
			auto = true
			continue
		}
		matches, err := rt.catalog.Resolve(n)
		if err != nil {
			return nil, nil, rt.resolveError(n, err)
		}
		for _, m := range matches {
			pl.add(n, m)
		}
	}
	if auto {
		// Defaults that serve the request's API natively come first:
		// "auto" should not pay for a translation it can avoid.
		for pass := 0; pass < 2; pass++ {
			for i := range rt.defaults {
				m := rt.defaults[i]
				up := rt.upstreams[lower(m.Provider.ID)]
				if up == nil || up.serves(surface) != (pass == 0) {
					continue
				}
				pl.add("auto", m)
			}
		}
	}
	return pl.result(surface)
}

// planner collects a request's candidates in order, skipping duplicates
// and recording the models the restrictions refuse.
type planner struct {
	rt          *routing
	cands       []candidate
	rejected    []Rejection
	firstReject *Error
}

// add appends the match for the requested name, unless a restriction
// refuses it or it is already planned.
func (pl *planner) add(requested string, m catalog.Match) {
	rt := pl.rt
	up := rt.upstreams[lower(m.Provider.ID)]
	if up == nil {
		return // disabled provider
	}
	var refused *Error
	switch {
	case !rt.allowedProvider(up):
		pl.rejected = append(pl.rejected, Rejection{Model: requested, Reason: "provider " + up.id + " is not allowed"})
		refused = errorf(KindProviderNotAllowed, "provider %q is not allowed: only configured providers may be used (configured: %s)", up.id, rt.configuredList)
	case rt.cfg.onlyModels && (m.Model == nil || !up.listed[lower(m.Model.ID)]):
		pl.rejected = append(pl.rejected, Rejection{Model: requested, Reason: "model " + up.id + ":" + m.UpstreamID + " is not allowed"})
		refused = errorf(KindModelNotAllowed, "model %q is not allowed: only configured models may be used", up.id+":"+m.UpstreamID)
	}
	if refused != nil {
		if pl.firstReject == nil {
			pl.firstReject = refused
		}
		return
	}
	for i := range pl.cands {
		if pl.cands[i].up == up && strings.EqualFold(pl.cands[i].upstreamModel, m.UpstreamID) {
			return
		}
	}
	pl.cands = append(pl.cands, candidate{up: up, model: m.Model, upstreamModel: m.UpstreamID})
}

// result returns the plan, or why there is none: every model was refused,
// or none can serve the request's surface.
func (pl *planner) result(surface providers.Surface) ([]candidate, []Rejection, *Error) {
	if len(pl.cands) == 0 {
		if e := pl.firstReject; e != nil {
			if len(pl.rejected) > 1 {
				e.Message += fmt.Sprintf(" (and %d more refused)", len(pl.rejected)-1)
			}
			return nil, pl.rejected, e
		}
		return nil, pl.rejected, errorf(KindModelUnknown, "no model is available for this request")
	}
	for i := range pl.cands {
		if _, ok, _ := pl.cands[i].route(surface); ok {
			return pl.cands, pl.rejected, nil
		}
	}
	names := make([]string, len(pl.cands))
	for i := range pl.cands {
		names[i] = pl.cands[i].name()
	}
	return nil, pl.rejected, errorf(KindFormatUnsupported, "no requested model can serve %s requests (%s); use a model whose provider speaks this API",
		surface, jsonSafe(strings.Join(names, ", ")))
}

// resolveError explains why a requested model name did not resolve,
// suggesting the nearest catalog name when there is one.
func (rt *routing) resolveError(name string, err error) *Error {
	name = jsonSafe(truncate(name, 256))
	var e *Error
	switch {
	case errors.Is(err, catalog.ErrUnknownProvider):
		e = errorf(KindProviderUnknown, "unknown provider in model %q: no provider with that ID is configured or built in", name)
	case errors.Is(err, catalog.ErrUnknownModel):
		e = errorf(KindModelUnknown, "model %q is not in the catalog", name)
		if s, ok := rt.catalog.Suggest(name); ok {
			e.Message += "; did you mean " + strconv.Quote(s) + "?"
		}
		e.Message += " Prefix a model with its provider (for example \"openai:" + name + "\") to pass it through"
	default:
		e = errorf(KindInvalidRequest, "invalid model name %q", name)
	}
	e.Param, e.Err = "model", err
	return e
}

func lower(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 'A' && c <= 'Z' {
			return strings.ToLower(s)
		}
	}
	return s
}
