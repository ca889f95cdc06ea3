package gateway

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/llmgate/gateway/catalog"
	"github.com/llmgate/gateway/internal/strategy"
	"github.com/llmgate/gateway/providers"
	"github.com/llmgate/gateway/tokens"
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

// maxOutputTokens returns the most output tokens the model may produce
// here: the catalog's maximum, lowered by the request policy's
// MaxOutputTokens; 0 when neither is known.
func (c *candidate) maxOutputTokens() int {
	n := 0
	if c.model != nil {
		n = c.model.MaxOutputTokens
	}
	if p := c.policy(); p != nil && p.maxOut > 0 && (n == 0 || p.maxOut < n) {
		n = p.maxOut
	}
	return n
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
	names := c.parsed.names()
	cands, rejected, err := c.rt.plan(c.surface, names)
	if err == nil && c.rt.models != nil {
		cands, rejected, err = c.selectModels(names, cands, rejected)
	}
	if err == nil {
		cands, rejected, err = c.principal.restrict(cands, rejected)
	}
	c.rejected = rejected
	c.setRejectedHeader()
	if err != nil {
		return err
	}
	c.cands = cands
	c.header = c.rt.forward.filter(c.r.Header, c.format)
	return c.parsed.requireFields(c.surface)
}

// setRejectedHeader lists the rejected models in HeaderRejectedModels.
func (c *call) setRejectedHeader() {
	if len(c.rejected) == 0 {
		return
	}
	ms := make([]string, len(c.rejected))
	for i, r := range c.rejected {
		ms[i] = r.Model
	}
	c.w.Header().Set(HeaderRejectedModels, strings.Join(ms, ", "))
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
		if s, ok := rt.catalog.Suggest(name); ok {
			e.Message += "; did you mean " + strconv.Quote(s) + "?"
		}
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

// A selection trace lists at most this many model names per step.
const maxTraceModels = 32

// SelectionStep records what one model selection strategy did for a
// request (see WithModelSelection), in the event and in Explain's Plan.
type SelectionStep struct {
	// Index is the strategy's position in WithModelSelection.
	Index int `json:"index"`
	// Strategy is the CEL expression.
	Strategy string `json:"strategy"`
	// Error is why the evaluation failed ("" when it did not), including
	// a lookup that found nothing, which counts as an empty result.
	Error string `json:"error,omitempty"`
	// Returned is the number of models the expression returned.
	Returned int `json:"candidates_returned"`
	// AfterClient is the number left once the client's own choice was
	// applied: when the client named models, only those stay, in the
	// client's order.
	AfterClient int `json:"candidates_after_client_filter"`
	// Models are the models to try ("provider:model"), when this strategy
	// won, at most 32.
	Models []string `json:"models_to_try,omitempty"`
}

// strategyModel is what a universe model refers back to.
type strategyModel struct {
	up    *upstream
	model *catalog.Model
	pos   int // position in its universe; -1 for a client's pass-through model
}

// buildUniverses builds, per API surface, the models strategies choose
// from: every model of every allowed provider that can serve the surface.
func (rt *routing) buildUniverses() {
	rt.universes = map[providers.Surface]*strategy.Universe{}
	rt.results = map[providers.Surface]*strategyResults{}
	for _, s := range []providers.Surface{providers.SurfaceChatCompletions, providers.SurfaceMessages,
		providers.SurfaceResponses, providers.SurfaceEmbeddings} {
		var ms []*strategy.Model
		for _, up := range rt.ordered {
			if !rt.allowedProvider(up) {
				continue
			}
			for _, m := range up.cat.Models {
				if rt.cfg.onlyModels && !up.listed[lower(m.ID)] {
					continue
				}
				cand := candidate{up: up, model: m, upstreamModel: m.ID}
				if _, ok, _ := cand.route(s); !ok {
					continue
				}
				sm := rt.strategyModel(up, m, m.ID)
				sm.Ref.(*strategyModel).pos = len(ms)
				ms = append(ms, sm)
			}
		}
		rt.universes[s] = strategy.NewUniverse(ms)
		sr := &strategyResults{slots: make([]atomic.Pointer[strategyResult], rt.models.Len()), pos: make(map[universeKey]int, len(ms))}
		for i, m := range ms {
			ref := m.Ref.(*strategyModel)
			sr.pos[universeKey{ref.up, ref.model}] = i
		}
		rt.results[s] = sr
	}
}

// strategyModel builds the CEL view of a model of up; m is nil for a model
// passed through unknown to the catalog.
func (rt *routing) strategyModel(up *upstream, m *catalog.Model, id string) *strategy.Model {
	sm := &strategy.Model{ID: id, ProviderID: up.id, ProviderAliases: up.cat.Aliases, Custom: up.custom,
		Stats: rt.metrics.Model(up.id, id).Stats, Ref: &strategyModel{up: up, model: m, pos: -1}}
	if m == nil {
		return sm
	}
	sm.Known, sm.Custom = true, m.Custom
	sm.Aliases, sm.AuthorID, sm.DisplayName, sm.Metadata = m.Aliases, m.Author, m.DisplayName, m.Metadata
	sm.InputModalities, sm.OutputModalities, sm.Features = m.InputModalities, m.OutputModalities, m.Features
	sm.ContextWindow, sm.MaxOutputTokens, sm.Pricing = m.ContextWindow, m.MaxOutputTokens, m.Pricing
	return sm
}

// selectModels runs the model selection strategies over the universe of
// the request's surface, in order, until one yields a usable model. When
// the client named models (cands), a strategy can only remove some of
// them and their order stays; for "auto" or no model, the strategy's
// result is the plan.
func (c *call) selectModels(names []string, cands []candidate, rejected []Rejection) ([]candidate, []Rejection, *Error) {
	rt := c.rt
	clientNamed := false
	for _, n := range names {
		clientNamed = clientNamed || !isAuto(n)
	}
	u := rt.universes[c.surface]
	if clientNamed {
		u = c.withPassThroughModels(u, cands)
	}
	req := c.strategyRequest()
	c.selection = make([]SelectionStep, 0, rt.models.Len())
	for i := 0; i < rt.models.Len(); i++ {
		step := SelectionStep{Index: i, Strategy: rt.models.Expr(i)}
		res, cached, err := c.evalStrategy(i, u, req)
		if err != nil && !errors.Is(err, strategy.ErrNotFound) {
			step.Error = err.Error()
			c.selection = append(c.selection, step)
			return nil, rejected, &Error{Kind: KindModelSelectionFailed, Err: err,
				Message: "model selection failed: " + jsonSafe(truncate(err.Error(), 512))}
		}
		if err != nil {
			step.Error = err.Error()
		}
		step.Returned = len(res)
		var out []candidate
		if clientNamed {
			out = c.keepChosen(cands, res, cached)
		} else {
			out = chosenCandidates(res)
		}
		step.AfterClient = len(out)
		if len(out) == 0 {
			c.selection = append(c.selection, step)
			continue
		}
		c.selection = append(c.selection, step) // its Models are the plan's: see traceModels
		for j := range cands {
			if !hasCandidate(out, &cands[j]) {
				rejected = append(rejected, Rejection{Model: cands[j].name(), Reason: "removed by model selection strategy " + strconv.Itoa(i)})
			}
		}
		return out, rejected, nil
	}
	if clientNamed {
		for j := range cands {
			rejected = append(rejected, Rejection{Model: cands[j].name(), Reason: "no model selection strategy kept it"})
		}
	}
	return nil, rejected, errorf(KindNoModelSelected, "no model selection strategy yielded a usable model for this request (%d strategies tried)", rt.models.Len())
}

// strategyResults caches, per API surface, the results of the model
// strategies that read nothing of the request (strategy.RequestFree):
// over the same universe and the same metrics snapshot they are the same
// for every request, so one evaluation serves every request of a metrics
// refresh period. Strategies that read the request, or draw random
// numbers, are evaluated for each request.
type strategyResults struct {
	slots []atomic.Pointer[strategyResult] // by strategy index
	pos   map[universeKey]int              // a catalog model's position in the universe
}

// universeKey identifies a catalog model of an upstream in a universe.
type universeKey struct {
	up    *upstream
	model *catalog.Model
}

// strategyResult is one cached evaluation.
type strategyResult struct {
	at      int64 // when it was evaluated, UnixNano by the metrics clock
	res     []*strategy.Model
	members bitset // the universe positions res holds, so that the client's models are checked without walking res
	err     error
}

// evalStrategy evaluates model strategy i for the request, from the cache
// when it reads nothing of the request and was evaluated less than a
// metrics refresh period ago over the same universe.
func (c *call) evalStrategy(i int, u *strategy.Universe, req *strategy.Request) ([]*strategy.Model, *strategyResult, error) {
	rt := c.rt
	cache := rt.results[c.surface]
	if cache == nil || !rt.models.RequestFree(i) || u != rt.universes[c.surface] {
		res, err := rt.models.EvalModels(c.r.Context(), i, u, req)
		return res, nil, err
	}
	slot := &cache.slots[i]
	now := rt.metrics.Now().UnixNano()
	if e := slot.Load(); e != nil && now >= e.at && now-e.at < int64(rt.metrics.Refresh()) {
		return e.res, e, e.err
	}
	res, err := rt.models.EvalModels(c.r.Context(), i, u, req)
	if c.r.Context().Err() != nil {
		return res, nil, err
	}
	e := &strategyResult{at: now, res: res, err: err}
	for _, m := range res {
		if ref, _ := m.Ref.(*strategyModel); ref != nil && ref.pos >= 0 {
			e.members.testAndSet(ref.pos)
		}
	}
	slot.Store(e)
	return res, e, err
}

// traceModels fills in the Models of the winning selection step: the
// plan's candidates, as names (built once the response is out: the event
// and Explain need them, the request does not).
func traceModels(steps []SelectionStep, names []string) {
	if n := len(steps); n > 0 && steps[n-1].Error == "" && steps[n-1].AfterClient > 0 {
		steps[n-1].Models = names[:min(len(names), maxTraceModels)]
	}
}

// withPassThroughModels adds to u the client's models unknown to the
// catalog (a "provider:model" pass-through), which strategies see with
// known == false.
func (c *call) withPassThroughModels(u *strategy.Universe, cands []candidate) *strategy.Universe {
	var extra []*strategy.Model
	for i := range cands {
		if cands[i].model == nil {
			extra = append(extra, c.rt.strategyModel(cands[i].up, nil, cands[i].upstreamModel))
		}
	}
	if len(extra) == 0 {
		return u
	}
	ms := make([]*strategy.Model, 0, len(u.Models)+len(extra))
	return strategy.NewUniverse(append(append(ms, u.Models...), extra...))
}

// keepChosen returns the client's candidates that the strategy's result
// includes, in the client's order. A cached result answers from its
// membership set; otherwise the result is walked.
func (c *call) keepChosen(cands []candidate, res []*strategy.Model, cached *strategyResult) []candidate {
	var out []candidate
	for i := range cands {
		if cached != nil {
			p, ok := c.rt.results[c.surface].pos[universeKey{cands[i].up, cands[i].model}]
			if ok && cached.members.has(p) {
				out = append(out, cands[i])
			}
			continue
		}
		for _, m := range res {
			if sameModel(&cands[i], m) {
				out = append(out, cands[i])
				break
			}
		}
	}
	return out
}

// chosenCandidates turns a strategy's result into candidates, in its
// order, without duplicates (a result may list a model twice, as in
// ai.models + ai.models).
func chosenCandidates(res []*strategy.Model) []candidate {
	out := make([]candidate, 0, len(res))
	var seen bitset
	for i, m := range res {
		ref, _ := m.Ref.(*strategyModel)
		switch {
		case ref == nil:
			continue
		case ref.pos >= 0:
			if seen.testAndSet(ref.pos) {
				continue
			}
		case slices.ContainsFunc(res[:i], func(x *strategy.Model) bool { return x.Ref == m.Ref }):
			continue
		}
		out = append(out, candidate{up: ref.up, model: ref.model, upstreamModel: m.ID})
	}
	return out
}

// bitset is a growable set of small non-negative integers.
type bitset []uint64

// has reports whether i is in the set.
func (b bitset) has(i int) bool { return i/64 < len(b) && b[i/64]&(1<<(i%64)) != 0 }

// testAndSet adds i and reports whether it was already there.
func (b *bitset) testAndSet(i int) bool {
	w := i / 64
	if w >= len(*b) {
		*b = append(*b, make([]uint64, w+1-len(*b))...)
	}
	m := uint64(1) << (i % 64)
	old := (*b)[w]&m != 0
	(*b)[w] |= m
	return old
}

// sameModel reports whether the strategy model m is candidate c.
func sameModel(c *candidate, m *strategy.Model) bool {
	ref, _ := m.Ref.(*strategyModel)
	return ref != nil && ref.up == c.up && strings.EqualFold(m.ID, c.upstreamModel)
}

func hasCandidate(cs []candidate, c *candidate) bool {
	for i := range cs {
		if cs[i].up == c.up && strings.EqualFold(cs[i].upstreamModel, c.upstreamModel) {
			return true
		}
	}
	return false
}

// strategyRequest returns the request as strategies see it, built once
// per request: its headers (strategies never see credentials), whether it
// streams, the models asked for, and an input token estimate counted on
// first use.
func (c *call) strategyRequest() *strategy.Request {
	if !c.sreqSet {
		c.sreqSet = true
		c.sreq = strategy.Request{Headers: c.r.Header, Stream: c.parsed.stream, API: apiName(c.surface),
			Models: c.parsed.names(), InputTokens: c.inputTokens, KeyID: c.principal.KeyID, KeyMetadata: c.principal.metadataMap()}
	}
	return &c.sreq
}

// apiName is request.api in strategies: the surface with underscores.
func apiName(s providers.Surface) string {
	switch s {
	case providers.SurfaceChatCompletions:
		return "chat_completions"
	case providers.SurfaceMessages:
		return "messages"
	case providers.SurfaceResponses:
		return "responses"
	case providers.SurfaceEmbeddings:
		return "embeddings"
	}
	return strings.ReplaceAll(string(s), "-", "_")
}

// inputTokens estimates the request's prompt tokens (tiktoken's o200k
// vocabulary, with the quick counter: no upstream wait is worth an exact
// count here).
func (c *call) inputTokens() int {
	if c.format == providers.FormatAnthropic {
		return int(tokens.QuickEstimateAnthropicMessages(catalog.EncodingO200K, c.body))
	}
	return int(tokens.QuickEstimateOpenAIChat(catalog.EncodingO200K, c.body))
}

// restrict applies the principal's allow-lists (a gateway key's allowed
// providers and models) to the plan: refused candidates are recorded as
// rejected, and when none is left the request fails with 403
// provider_not_allowed or model_not_allowed.
func (p *principal) restrict(cands []candidate, rejected []Rejection) ([]candidate, []Rejection, *Error) {
	if len(p.AllowedProviders) == 0 && len(p.AllowedModels) == 0 {
		return cands, rejected, nil
	}
	out := make([]candidate, 0, len(cands))
	var first *Error
	for i := range cands {
		cand := &cands[i]
		var e *Error
		switch {
		case len(p.AllowedProviders) > 0 && !slices.ContainsFunc(p.AllowedProviders, cand.up.named):
			e = errorf(KindProviderNotAllowed, "provider %q is not allowed for gateway key %s", cand.up.id, p.KeyID)
		case len(p.AllowedModels) > 0 && !slices.ContainsFunc(p.AllowedModels, cand.named):
			e = errorf(KindModelNotAllowed, "model %q is not allowed for gateway key %s", cand.name(), p.KeyID)
		default:
			out = append(out, *cand)
			continue
		}
		rejected = append(rejected, Rejection{Model: cand.name(), Reason: e.Message})
		if first == nil {
			first = e
		}
	}
	if len(out) == 0 {
		return nil, rejected, first
	}
	return out, rejected, nil
}

// named reports whether the provider is called name (its ID or an alias,
// ASCII case-insensitively).
func (u *upstream) named(name string) bool {
	return strings.EqualFold(u.id, name) || slices.ContainsFunc(u.cat.Aliases, func(a string) bool { return strings.EqualFold(a, name) })
}

// named reports whether the candidate is the model an allow-list entry
// names: "provider:model", or a model ID or alias of any provider.
func (c *candidate) named(entry string) bool {
	if p, m, ok := strings.Cut(entry, ":"); ok && c.up.named(p) {
		entry = m
	}
	if strings.EqualFold(entry, c.upstreamModel) {
		return true
	}
	if c.model == nil {
		return false
	}
	return strings.EqualFold(entry, c.model.ID) || slices.ContainsFunc(c.model.Aliases, func(a string) bool { return strings.EqualFold(a, entry) })
}
