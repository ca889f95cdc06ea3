package gateway

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/llmgate/gateway/providers"
)

// Plan is what a request would do, as Explain reports it: the model
// selection trace, the candidates in failover order with the keys each
// would try, and the models refused. It is computed with the live state
// (cooldowns, metrics, round-robin positions) of the moment and changes
// nothing.
type Plan struct {
	// Surface is the API the request's path asks for.
	Surface providers.Surface `json:"surface"`
	// RequestedModels is model followed by models, as the request names
	// them.
	RequestedModels []string `json:"requested_models,omitempty"`
	// Selection is the model selection trace, one step per strategy
	// evaluated; empty without WithModelSelection.
	Selection []SelectionStep `json:"selection,omitempty"`
	// Rejected lists the requested models refused by restrictions or
	// removed by strategies, with why.
	Rejected []Rejection `json:"rejected,omitempty"`
	// Candidates are the models failover would try, in order.
	Candidates []PlanCandidate `json:"candidates"`
}

// PlanCandidate is one model of a Plan.
type PlanCandidate struct {
	// Provider and Model name the candidate ("openai", "gpt-4o").
	Provider string `json:"provider"`
	Model    string `json:"model"`
	// Surface is the upstream API it would be called on, and Translated
	// whether the request and answer would be translated to and from the
	// provider's format for it.
	Surface    providers.Surface `json:"surface,omitempty"`
	Translated bool              `json:"translated,omitempty"`
	// Skip says why failover would pass over it ("" when it would try it).
	Skip string `json:"skip,omitempty"`
	// Keys are the keys it would try, in order.
	Keys []PlanKey `json:"keys,omitempty"`
}

// PlanKey is one key of a PlanCandidate.
type PlanKey struct {
	// ID is the key's ID ("client" for the client's own credential, ""
	// when the provider would be called without one).
	ID string `json:"id"`
	// CoolingDown is how long the key is still cooling down for the
	// candidate's model (failover would skip it); 0 when usable.
	CoolingDown time.Duration `json:"cooling_down_ns,omitempty"`
}

// Explain returns the plan r would follow — the strategy trace, the
// candidates after selection and the keys each would try, in order —
// without calling a provider or changing any state. r is a complete API
// request as a client would send it (path, headers, JSON body); its body
// is read. When r would fail before any upstream call (a bad body, an
// unknown model, a failing strategy), the error is the *Error the client
// would get, and the Plan holds what was decided up to then.
func (g *Gateway) Explain(ctx context.Context, r *http.Request) (Plan, error) {
	if r == nil {
		return Plan{}, errors.New("llmgate: Explain of a nil request")
	}
	w := &explainWriter{h: http.Header{}}
	c := g.newCall(w, r.WithContext(ctx))
	c.explain = true
	var e *Error
	path := r.URL.EscapedPath()
	ep, ok := lookupRoute(path)
	switch {
	case len(c.cfg.allowedHosts) > 0 && !c.hostAllowed():
		e = errorf(KindHostNotAllowed, "requests for host %q are not served here (see WithAllowedHosts)", jsonSafe(truncate(r.Host, 256)))
	case !ok || ep.surface == "":
		e = errorf(KindNotFound, "no API route for %s; Explain takes POST /v1/chat/completions, /v1/messages, /v1/responses or /v1/embeddings", jsonSafe(path))
	default:
		c.surface, c.format = ep.surface, ep.surface.Format()
		e = c.explainPhases()
	}
	p := c.planOf()
	if e != nil {
		return p, e
	}
	return p, nil
}

// explainPhases runs the phases of a request up to its plan.
func (c *call) explainPhases() *Error {
	if e := c.authenticate(); e != nil {
		return e
	}
	if e := c.readRequest(); e != nil {
		return e
	}
	return c.plan()
}

// planOf describes the call's plan: each candidate's route and keys, as
// failover would take them.
func (c *call) planOf() Plan {
	p := Plan{Surface: c.surface, RequestedModels: c.parsed.names(), Selection: c.selection, Rejected: c.rejected,
		Candidates: make([]PlanCandidate, 0, len(c.cands))}
	names := make([]string, len(c.cands))
	for i := range c.cands {
		names[i] = c.cands[i].name()
	}
	traceModels(c.selection, names)
	now := c.now()
	for i := range c.cands {
		cand := &c.cands[i]
		pc := PlanCandidate{Provider: cand.up.id, Model: cand.upstreamModel}
		rt, ok, why := cand.route(c.surface)
		if !ok {
			pc.Skip = why
			p.Candidates = append(p.Candidates, pc)
			continue
		}
		pc.Surface, pc.Translated = rt.surface, rt.translate
		keys, skip, e := c.keysFor(cand)
		switch {
		case e != nil:
			pc.Skip = e.Message
		case skip != "":
			pc.Skip = skip
		}
		for _, ks := range keys {
			pc.Keys = append(pc.Keys, PlanKey{ID: ks.key.ID, CoolingDown: ks.remaining(cand.upstreamModel, now)})
		}
		p.Candidates = append(p.Candidates, pc)
	}
	return p
}

// explainWriter is the ResponseWriter of an explained request: nothing is
// ever written to it.
type explainWriter struct{ h http.Header }

func (w *explainWriter) Header() http.Header         { return w.h }
func (w *explainWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *explainWriter) WriteHeader(int)             {}
