package strategy

import (
	"net/http"
	"sync"
	"sync/atomic"

	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"

	"github.com/llmgate/gateway/catalog"
	"github.com/llmgate/gateway/metrics"
)

// Model is one candidate model as strategies see it (ai.models). The
// gateway builds Models once per configuration; they must not be modified
// after they are handed to [NewUniverse] or a [Universe], and are then safe
// for concurrent use. The zero Model is an unknown, unpriced model with an
// empty ID.
type Model struct {
	// ID and Aliases are the model's names at its provider.
	ID      string
	Aliases []string
	// ProviderID and ProviderAliases name the provider serving the model.
	ProviderID      string
	ProviderAliases []string
	// AuthorID names who made the model ("openai", "meta", ...).
	AuthorID    string
	DisplayName string
	// Known is false for a pass-through model the catalog does not list;
	// Custom is true for a model defined in the configuration.
	Known, Custom bool
	// Metadata is the operator's metadata (nil for built-in models); the
	// values are JSON-like (string, bool, numbers, []any, map[string]any).
	Metadata                                    map[string]any
	InputModalities, OutputModalities, Features []string
	// ContextWindow and MaxOutputTokens are in tokens; zero is unknown.
	ContextWindow, MaxOutputTokens int
	// Pricing is the list price; the zero Pricing of a model that is not
	// Custom means "unpriced" (see underCost).
	Pricing catalog.Pricing
	// Stats returns the live metrics of the model at its provider; nil (or a
	// nil result) reads as zeros. It must be safe for concurrent use and
	// should return the same pointer until the figures change: the CEL
	// metrics object is rebuilt only when the pointer changes.
	Stats func() *metrics.Stats
	// Ref is an opaque back-pointer for the caller; strategies never see it.
	Ref any
}

// Provider is one provider of the universe (ai.providers). Immutable once
// handed to a Universe; the zero Provider has no models.
type Provider struct {
	ID          string
	Aliases     []string
	DisplayName string
	Custom      bool
	// Metadata is the operator's metadata; nil for built-in providers.
	Metadata map[string]any
	// Models are the provider's models, usually the same pointers as in
	// Universe.Models.
	Models []*Model
}

// Author is one model author of the universe (ai.authors). Immutable once
// handed to a Universe.
type Author struct {
	ID     string
	Models []*Model
}

// Universe is what a model strategy sees: ai.models, ai.providers and
// ai.authors. Build it with [NewUniverse] or as a literal; either way its
// CEL values are built once, on first evaluation, and it must then not be
// modified nor copied. A *Universe is safe for concurrent use. The zero
// Universe is empty.
type Universe struct {
	Models    []*Model
	Providers []*Provider
	Authors   []*Author

	once sync.Once
	vals *aiVal
}

// NewUniverse returns a universe of models whose providers and authors are
// derived from the models' ProviderID and AuthorID, in first-seen order.
// Provider aliases come from the first model of the provider; a model with
// an empty AuthorID has no author. NewUniverse builds the CEL values at once
// so that evaluation does not.
func NewUniverse(models []*Model) *Universe {
	u := &Universe{Models: models}
	provs := map[string]*Provider{}
	auths := map[string]*Author{}
	for _, m := range models {
		p := provs[m.ProviderID]
		if p == nil {
			p = &Provider{ID: m.ProviderID, Aliases: m.ProviderAliases, DisplayName: m.ProviderID, Custom: m.Custom}
			provs[m.ProviderID] = p
			u.Providers = append(u.Providers, p)
		}
		p.Models = append(p.Models, m)
		if m.AuthorID == "" {
			continue
		}
		a := auths[m.AuthorID]
		if a == nil {
			a = &Author{ID: m.AuthorID}
			auths[m.AuthorID] = a
			u.Authors = append(u.Authors, a)
		}
		a.Models = append(a.Models, m)
	}
	u.values()
	return u
}

// values returns the CEL value of ai, building it on first use.
func (u *Universe) values() *aiVal {
	u.once.Do(u.build)
	return u.vals
}

func (u *Universe) build() {
	byModel := make(map[*Model]*modelVal, len(u.Models))
	modelOf := func(m *Model) *modelVal {
		v := byModel[m]
		if v == nil {
			v = newModelVal(m)
			byModel[m] = v
		}
		return v
	}
	modelList := func(ms []*Model) (ref.Val, []*modelVal) {
		vals := make([]ref.Val, len(ms))
		mv := make([]*modelVal, len(ms))
		for i, m := range ms {
			mv[i] = modelOf(m)
			vals[i] = mv[i]
		}
		return newList(vals), mv
	}
	ai := &aiVal{}
	ai.obj = obj{t: aiOT, self: ai}
	ai.models, _ = modelList(u.Models)
	provs := make([]ref.Val, len(u.Providers))
	for i, p := range u.Providers {
		v := &providerVal{
			p:           p,
			id:          types.String(p.ID),
			aliases:     stringList(p.Aliases),
			displayName: types.String(p.DisplayName),
			metadata:    metadataVal(p.Metadata),
		}
		v.obj = obj{t: providerOT, self: v}
		v.models, v.modelVals = modelList(p.Models)
		provs[i] = v
	}
	ai.providers = newList(provs)
	auths := make([]ref.Val, len(u.Authors))
	for i, a := range u.Authors {
		v := &authorVal{a: a, id: types.String(a.ID)}
		v.obj = obj{t: authorOT, self: v}
		v.models, _ = modelList(a.Models)
		auths[i] = v
	}
	ai.authors = newList(auths)
	u.vals = ai
}

// Key is one credential of the provider being tried, as key strategies see
// it (ai.keys). The gateway builds Keys once per configuration; they must
// not be modified nor copied afterwards and are then safe for concurrent
// use. Its CEL value is built on first evaluation and cached in the Key.
type Key struct {
	// ID is safe to log (never the secret).
	ID string
	// Weight is the operator's weight for the key.
	Weight int
	// CoolingDown is true while the key rests after a 401/403/429.
	CoolingDown bool
	// Stats returns the key's live metrics (see Model.Stats); nil is zeros.
	Stats func() *metrics.Stats
	// InFlight returns the number of running attempts on the key; nil falls
	// back to Stats().InFlight.
	InFlight func() int64
	// Ref is an opaque back-pointer for the caller.
	Ref any

	val atomic.Pointer[keyVal]
}

func (k *Key) value() *keyVal {
	if v := k.val.Load(); v != nil {
		return v
	}
	v := newKeyVal(k)
	if k.val.CompareAndSwap(nil, v) {
		return v
	}
	return k.val.Load()
}

// Request is what strategies see of the client request (request). The
// caller builds one per HTTP request and may evaluate several expressions
// with it; lazily computed fields (input_tokens, headers) are computed at
// most once per Request. A *Request is safe for concurrent use once built;
// it must not be copied. The zero Request is an empty request.
type Request struct {
	// Headers are the client's headers; strategies only read them. The
	// caller may pass the request's own header map: headers that may carry
	// credentials (Authorization, Proxy-Authorization, Cookie, Api-Key,
	// X-Api-Key, and any name ending in -Key, -Token or -Secret, in any
	// case) are never visible, neither in request.headers nor through
	// request.header(name).
	Headers http.Header
	// Stream reports whether the client asked for a stream.
	Stream bool
	// API is "chat_completions", "messages", "responses" or "embeddings".
	API string
	// Models are the model names the client asked for, in order.
	Models []string
	// InputTokens estimates the request's input tokens. It is called at most
	// once, and only when an evaluated expression reads request.input_tokens;
	// nil reads as 0.
	InputTokens func() int
	// KeyID and KeyMetadata describe the calling gateway key, if any.
	KeyID       string
	KeyMetadata map[string]any

	once sync.Once
	val  requestVal
	act  atomic.Pointer[activation] // the last model activation
}

func (r *Request) value() *requestVal {
	r.once.Do(func() { r.val.init(r) })
	return &r.val
}
