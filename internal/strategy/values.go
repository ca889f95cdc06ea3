package strategy

import (
	"fmt"
	"reflect"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
	"github.com/google/cel-go/common/types/traits"

	"github.com/llmgate/gateway/metrics"
)

// This file holds the CEL object types (schema, type provider) and the
// ref.Val implementations of models, providers, authors, keys, the request
// and their nested objects. Values are built once (per universe, per key,
// per request, per *metrics.Stats) and then only read, so they are safe for
// concurrent use.

// objType describes one CEL object type: its name and its fields.
type objType struct {
	typ    *types.Type
	names  []string
	fields map[string]*fieldDef
}

// fieldDef is one field of an objType. get receives the value's Value()
// (the concrete *xxxVal pointer).
type fieldDef struct {
	name string
	ft   *types.FieldType
	get  func(any) ref.Val
}

// field declares a field of type t read by get from a *V.
func field[V any](name string, t *types.Type, get func(*V) ref.Val) *fieldDef {
	g := func(obj any) ref.Val {
		v, ok := obj.(*V)
		if !ok {
			return types.NewErr("no such field %q on %T", name, obj)
		}
		return get(v)
	}
	return &fieldDef{
		name: name,
		get:  g,
		ft: &types.FieldType{
			Type:  t,
			IsSet: func(any) bool { return true },
			GetFrom: func(obj any) (any, error) {
				v := g(obj)
				if err, ok := v.(*types.Err); ok {
					return nil, err
				}
				return v, nil
			},
		},
	}
}

// setFields fills in t's fields (only while building the schema).
func setFields(t *objType, fields ...*fieldDef) {
	t.fields = make(map[string]*fieldDef, len(fields))
	for _, f := range fields {
		t.names = append(t.names, f.name)
		t.fields[f.name] = f
	}
}

// CEL types of the objects; schema() fills in their fields.
var (
	modelT     = types.NewObjectType("llmgate.Model")
	providerT  = types.NewObjectType("llmgate.Provider")
	authorT    = types.NewObjectType("llmgate.Author")
	keyT       = types.NewObjectType("llmgate.Key")
	requestT   = types.NewObjectType("llmgate.Request")
	modelListT = types.NewListType(modelT)
	keyListT   = types.NewListType(keyT)
	provListT  = types.NewListType(providerT)
	authListT  = types.NewListType(authorT)
	strListT   = types.NewListType(types.StringType)
	metaT      = types.NewMapType(types.StringType, types.DynType)
)

// The object types; newSchema fills in their fields once.
var (
	modelOT    = &objType{typ: modelT}
	providerOT = &objType{typ: providerT}
	authorOT   = &objType{typ: authorT}
	keyOT      = &objType{typ: keyT}
	requestOT  = &objType{typ: requestT}
	pricingOT  = &objType{typ: types.NewObjectType("llmgate.Pricing")}
	metricsOT  = &objType{typ: types.NewObjectType("llmgate.Metrics")}
	latencyOT  = &objType{typ: types.NewObjectType("llmgate.Latency")}
	errOT      = &objType{typ: types.NewObjectType("llmgate.ErrorRate")}
	reqKeyOT   = &objType{typ: types.NewObjectType("llmgate.RequestKey")}
	aiOT       = &objType{typ: types.NewObjectType("llmgate.AI")}
	keyAIOT    = &objType{typ: types.NewObjectType("llmgate.KeyAI")}
)

// schemaTables holds every object type by name. It is built once by
// newSchema and never modified (an immutable table).
type schemaTables struct {
	byName map[string]*objType
}

var schema = newSchema()

func newSchema() *schemaTables {
	s := &schemaTables{}
	setFields(pricingOT,
		field("input", types.DoubleType, func(v *pricingVal) ref.Val { return v.input }),
		field("output", types.DoubleType, func(v *pricingVal) ref.Val { return v.output }),
		field("cache_read", types.DoubleType, func(v *pricingVal) ref.Val { return v.cacheRead }),
		field("cache_write", types.DoubleType, func(v *pricingVal) ref.Val { return v.cacheWrite }),
	)
	setFields(latencyOT,
		field("upstream_ms_avg", types.IntType, func(v *latencyVal) ref.Val { return v.upAvg }),
		field("upstream_ms_p95", types.IntType, func(v *latencyVal) ref.Val { return v.upP95 }),
		field("time_to_first_token_ms_avg", types.IntType, func(v *latencyVal) ref.Val { return v.ttftAvg }),
		field("time_to_first_token_ms_p95", types.IntType, func(v *latencyVal) ref.Val { return v.ttftP95 }),
	)
	setFields(errOT,
		field("total", types.DoubleType, func(v *errorRateVal) ref.Val { return v.total }),
		field("timeout", types.DoubleType, func(v *errorRateVal) ref.Val { return v.timeout }),
		field("rate_limit", types.DoubleType, func(v *errorRateVal) ref.Val { return v.rateLimit }),
		field("client", types.DoubleType, func(v *errorRateVal) ref.Val { return v.client }),
		field("server", types.DoubleType, func(v *errorRateVal) ref.Val { return v.server }),
	)
	setFields(metricsOT,
		field("request_count", types.IntType, func(v *metricsVal) ref.Val { return v.requests }),
		field("in_flight", types.IntType, func(v *metricsVal) ref.Val { return v.inFlight }),
		field("start_time", types.IntType, func(v *metricsVal) ref.Val { return v.start }),
		field("end_time", types.IntType, func(v *metricsVal) ref.Val { return v.end }),
		field("latency", latencyOT.typ, func(v *metricsVal) ref.Val { return &v.latency }),
		field("error_rate", errOT.typ, func(v *metricsVal) ref.Val { return &v.errorRate }),
	)
	setFields(modelOT,
		field("id", types.StringType, func(v *modelVal) ref.Val { return v.id }),
		field("id_aliases", strListT, func(v *modelVal) ref.Val { return v.aliases }),
		field("provider_id", types.StringType, func(v *modelVal) ref.Val { return v.providerID }),
		field("provider_id_aliases", strListT, func(v *modelVal) ref.Val { return v.providerAliases }),
		field("author_id", types.StringType, func(v *modelVal) ref.Val { return v.authorID }),
		field("display_name", types.StringType, func(v *modelVal) ref.Val { return v.displayName }),
		field("known", types.BoolType, func(v *modelVal) ref.Val { return types.Bool(v.m.Known) }),
		field("custom", types.BoolType, func(v *modelVal) ref.Val { return types.Bool(v.m.Custom) }),
		field("metadata", metaT, func(v *modelVal) ref.Val { return v.metadata }),
		field("input_modalities", strListT, func(v *modelVal) ref.Val { return v.inMods }),
		field("output_modalities", strListT, func(v *modelVal) ref.Val { return v.outMods }),
		field("supported_features", strListT, func(v *modelVal) ref.Val { return v.features }),
		field("max_context_window", types.IntType, func(v *modelVal) ref.Val { return v.ctxWindow }),
		field("max_output_tokens", types.IntType, func(v *modelVal) ref.Val { return v.maxOutput }),
		field("pricing", pricingOT.typ, func(v *modelVal) ref.Val { return &v.pricing }),
		field("metrics", metricsOT.typ, func(v *modelVal) ref.Val { return v.stats.get(v.m.Stats) }),
	)
	setFields(providerOT,
		field("id", types.StringType, func(v *providerVal) ref.Val { return v.id }),
		field("id_aliases", strListT, func(v *providerVal) ref.Val { return v.aliases }),
		field("display_name", types.StringType, func(v *providerVal) ref.Val { return v.displayName }),
		field("custom", types.BoolType, func(v *providerVal) ref.Val { return types.Bool(v.p.Custom) }),
		field("metadata", metaT, func(v *providerVal) ref.Val { return v.metadata }),
		field("models", modelListT, func(v *providerVal) ref.Val { return v.models }),
	)
	setFields(authorOT,
		field("id", types.StringType, func(v *authorVal) ref.Val { return v.id }),
		field("models", modelListT, func(v *authorVal) ref.Val { return v.models }),
	)
	setFields(keyOT,
		field("id", types.StringType, func(v *keyVal) ref.Val { return v.id }),
		field("weight", types.IntType, func(v *keyVal) ref.Val { return v.weight }),
		field("cooling_down", types.BoolType, func(v *keyVal) ref.Val { return types.Bool(v.k.CoolingDown) }),
		field("in_flight", types.IntType, func(v *keyVal) ref.Val { return v.inFlight() }),
		field("metrics", metricsOT.typ, func(v *keyVal) ref.Val { return v.stats.get(v.k.Stats) }),
		field("error_rate", errOT.typ, func(v *keyVal) ref.Val { return &v.stats.get(v.k.Stats).errorRate }),
	)
	setFields(reqKeyOT,
		field("id", types.StringType, func(v *requestVal) ref.Val { return v.fields().keyID }),
		field("metadata", metaT, func(v *requestVal) ref.Val { return v.keyMetadata() }),
	)
	setFields(requestOT,
		field("headers", types.NewMapType(types.StringType, types.StringType), func(v *requestVal) ref.Val { return v.headers() }),
		field("stream", types.BoolType, func(v *requestVal) ref.Val { return types.Bool(v.r.Stream) }),
		field("api", types.StringType, func(v *requestVal) ref.Val { return v.fields().api }),
		field("models", strListT, func(v *requestVal) ref.Val { return v.fields().models }),
		field("input_tokens", types.IntType, func(v *requestVal) ref.Val { return v.inputTokens() }),
		field("key", reqKeyOT.typ, func(v *requestVal) ref.Val { return &v.key }),
	)
	setFields(aiOT,
		field("models", modelListT, func(v *aiVal) ref.Val { return v.models }),
		field("providers", provListT, func(v *aiVal) ref.Val { return v.providers }),
		field("authors", authListT, func(v *aiVal) ref.Val { return v.authors }),
	)
	setFields(keyAIOT,
		field("keys", keyListT, func(v *keyAIVal) ref.Val { return v.keys }),
	)
	s.byName = map[string]*objType{}
	for _, t := range []*objType{modelOT, providerOT, authorOT, keyOT, requestOT, pricingOT, metricsOT, latencyOT, errOT, reqKeyOT, aiOT, keyAIOT} {
		s.byName[t.typ.TypeName()] = t
	}
	return s
}

// typeProvider adds the object types to a base registry.
type typeProvider struct {
	*types.Registry
}

func (p typeProvider) FindStructType(name string) (*types.Type, bool) {
	if t := schema.byName[name]; t != nil {
		return types.NewTypeTypeWithParam(t.typ), true
	}
	return p.Registry.FindStructType(name)
}

func (p typeProvider) FindIdent(name string) (ref.Val, bool) {
	if t := schema.byName[name]; t != nil {
		return t.typ, true
	}
	return p.Registry.FindIdent(name)
}

func (p typeProvider) FindStructFieldNames(name string) ([]string, bool) {
	if t := schema.byName[name]; t != nil {
		return t.names, true
	}
	return p.Registry.FindStructFieldNames(name)
}

func (p typeProvider) FindStructFieldType(name, fieldName string) (*types.FieldType, bool) {
	if t := schema.byName[name]; t != nil {
		f := t.fields[fieldName]
		if f == nil {
			return nil, false
		}
		return f.ft, true
	}
	return p.Registry.FindStructFieldType(name, fieldName)
}

func (p typeProvider) NewValue(name string, fields map[string]ref.Val) ref.Val {
	if schema.byName[name] != nil {
		return types.NewErr("cannot create a %s value in an expression", name)
	}
	return p.Registry.NewValue(name, fields)
}

// obj implements ref.Val, traits.Indexer and traits.FieldTester for every
// object value by its objType; self is the concrete value (what Value
// returns and field getters receive).
type obj struct {
	t    *objType
	self any
}

var (
	_ traits.Indexer     = (*obj)(nil)
	_ traits.FieldTester = (*obj)(nil)
)

func (o *obj) ConvertToNative(typeDesc reflect.Type) (any, error) {
	if reflect.TypeOf(o.self).AssignableTo(typeDesc) {
		return o.self, nil
	}
	return nil, fmt.Errorf("strategy: cannot convert %s to %v", o.t.typ.TypeName(), typeDesc)
}

func (o *obj) ConvertToType(t ref.Type) ref.Val {
	switch t {
	case o.t.typ:
		return o.self.(ref.Val)
	case types.TypeType:
		return o.t.typ
	}
	return types.NewErr("type conversion error from %s to %s", o.t.typ.TypeName(), t.TypeName())
}

// Equal is identity: two objects are equal when they are the same value.
func (o *obj) Equal(other ref.Val) ref.Val { return types.Bool(other.Value() == o.self) }
func (o *obj) Type() ref.Type              { return o.t.typ }
func (o *obj) Value() any                  { return o.self }

func (o *obj) Get(index ref.Val) ref.Val {
	name, ok := index.(types.String)
	if !ok {
		return types.ValOrErr(index, "no such overload")
	}
	f := o.t.fields[string(name)]
	if f == nil {
		return types.NewErr("no such field %q on %s", string(name), o.t.typ.TypeName())
	}
	return f.get(o.self)
}

func (o *obj) IsSet(index ref.Val) ref.Val {
	name, ok := index.(types.String)
	if !ok {
		return types.ValOrErr(index, "no such overload")
	}
	if o.t.fields[string(name)] == nil {
		return types.NewErr("no such field %q on %s", string(name), o.t.typ.TypeName())
	}
	return types.True
}

// modelVal is the CEL value of a *Model; every field but metrics is
// precomputed.
type modelVal struct {
	obj
	m                                         *Model
	id, providerID, authorID, displayName     ref.Val
	aliases, providerAliases, inMods, outMods ref.Val
	features, metadata, ctxWindow, maxOutput  ref.Val
	pricing                                   pricingVal
	stats                                     statsCache
	unpriced                                  bool
}

func newModelVal(m *Model) *modelVal {
	v := &modelVal{
		m:               m,
		id:              types.String(m.ID),
		providerID:      types.String(m.ProviderID),
		authorID:        types.String(m.AuthorID),
		displayName:     types.String(m.DisplayName),
		aliases:         stringList(m.Aliases),
		providerAliases: stringList(m.ProviderAliases),
		inMods:          stringList(m.InputModalities),
		outMods:         stringList(m.OutputModalities),
		features:        stringList(m.Features),
		metadata:        metadataVal(m.Metadata),
		ctxWindow:       types.Int(m.ContextWindow),
		maxOutput:       types.Int(m.MaxOutputTokens),
		unpriced:        m.Pricing.IsZero() && !m.Custom,
	}
	v.obj = obj{t: modelOT, self: v}
	v.pricing = pricingVal{
		obj:        obj{t: pricingOT},
		input:      usd(m.Pricing.Input),
		output:     usd(m.Pricing.Output),
		cacheRead:  usd(m.Pricing.CacheRead),
		cacheWrite: usd(m.Pricing.CacheWrite),
	}
	v.pricing.self = &v.pricing
	return v
}

// usd converts micro-USD to a USD double.
func usd(micro int64) ref.Val { return types.Double(float64(micro) / 1e6) }

type pricingVal struct {
	obj
	input, output, cacheRead, cacheWrite ref.Val
}

// stringList converts a []string once into a CEL list.
func stringList(s []string) ref.Val {
	vals := make([]ref.Val, len(s))
	for i, x := range s {
		vals[i] = types.String(x)
	}
	return newList(vals)
}

// metadataVal converts operator metadata once into a CEL map.
func metadataVal(m map[string]any) ref.Val {
	if m == nil {
		m = map[string]any{}
	}
	return types.DefaultTypeAdapter.NativeToValue(m)
}

// statsCache holds the metrics object derived from the last *metrics.Stats
// a Stats func returned; a new pointer rebuilds it.
type statsCache struct {
	p atomic.Pointer[metricsVal]
}

// get returns the metrics object for f's current stats (zeros when f is nil
// or returns nil); it allocates only when the stats pointer changed.
func (c *statsCache) get(f func() *metrics.Stats) *metricsVal {
	var s *metrics.Stats
	if f != nil {
		s = f()
	}
	if v := c.p.Load(); v != nil && v.src == s {
		return v
	}
	v := newMetricsVal(s)
	c.p.Store(v)
	return v
}

type metricsVal struct {
	obj
	src                            *metrics.Stats
	requests, inFlight, start, end ref.Val
	latency                        latencyVal
	errorRate                      errorRateVal
}

type latencyVal struct {
	obj
	upAvg, upP95, ttftAvg, ttftP95 ref.Val
}

type errorRateVal struct {
	obj
	total, timeout, rateLimit, client, server ref.Val
}

func newMetricsVal(s *metrics.Stats) *metricsVal {
	var z metrics.Stats
	if s == nil {
		s = &z
	}
	v := &metricsVal{
		requests: types.Int(min(s.Requests, 1<<63-1)),
		inFlight: types.Int(s.InFlight),
		start:    unix(s.Start),
		end:      unix(s.End),
	}
	if s != &z {
		v.src = s
	}
	v.obj = obj{t: metricsOT, self: v}
	v.latency = latencyVal{
		upAvg:   ms(s.Latency.UpstreamAvg),
		upP95:   ms(s.Latency.UpstreamP95),
		ttftAvg: ms(s.Latency.TTFTAvg),
		ttftP95: ms(s.Latency.TTFTP95),
	}
	v.latency.obj = obj{t: latencyOT, self: &v.latency}
	v.errorRate = errorRateVal{
		total:     types.Double(s.ErrorRate.Total),
		timeout:   types.Double(s.ErrorRate.Timeout),
		rateLimit: types.Double(s.ErrorRate.RateLimit),
		client:    types.Double(s.ErrorRate.Client),
		server:    types.Double(s.ErrorRate.Server),
	}
	v.errorRate.obj = obj{t: errOT, self: &v.errorRate}
	return v
}

func unix(t time.Time) ref.Val {
	if t.IsZero() {
		return types.IntZero
	}
	return types.Int(t.Unix())
}

func ms(d time.Duration) ref.Val { return types.Int(d.Milliseconds()) }

type providerVal struct {
	obj
	p                                  *Provider
	id, aliases, displayName, metadata ref.Val
	models                             ref.Val
	modelVals                          []*modelVal
}

type authorVal struct {
	obj
	a          *Author
	id, models ref.Val
}

// keyVal is the CEL value of a *Key, built once per Key.
type keyVal struct {
	obj
	k          *Key
	id, weight ref.Val
	stats      statsCache
}

func newKeyVal(k *Key) *keyVal {
	v := &keyVal{k: k, id: types.String(k.ID), weight: types.Int(k.Weight)}
	v.obj = obj{t: keyOT, self: v}
	return v
}

func (v *keyVal) inFlight() ref.Val {
	if v.k.InFlight != nil {
		return types.Int(v.k.InFlight())
	}
	return v.stats.get(v.k.Stats).inFlight
}

type aiVal struct {
	obj
	models, providers, authors ref.Val
}

type keyAIVal struct {
	obj
	keys ref.Val
}

// requestVal is the CEL value of a *Request, part of the Request and
// initialized once; the other fields are computed on first access.
type requestVal struct {
	obj
	r                   *Request
	fieldsOnce          sync.Once
	api, models, keyID  ref.Val
	hdrOnce, tokOnce    sync.Once
	metaOnce            sync.Once
	hdrs, tokens, kmeta ref.Val
	key                 obj // request.key: a view of the same requestVal
}

func (v *requestVal) init(r *Request) {
	v.r = r
	v.obj = obj{t: requestOT, self: v}
	v.key = obj{t: reqKeyOT, self: v}
}

// fields computes api, models and key.id.
func (v *requestVal) fields() *requestVal {
	v.fieldsOnce.Do(func() {
		v.api, v.models, v.keyID = types.String(v.r.API), stringList(v.r.Models), types.String(v.r.KeyID)
	})
	return v
}

func (v *requestVal) headers() ref.Val {
	v.hdrOnce.Do(func() {
		m := make(map[string]string, len(v.r.Headers))
		for name, vals := range v.r.Headers {
			if len(vals) > 0 && !credentialHeader(name) {
				m[lowerASCII(name)] = vals[0]
			}
		}
		v.hdrs = types.NewStringStringMap(types.DefaultTypeAdapter, m)
	})
	return v.hdrs
}

func (v *requestVal) inputTokens() ref.Val {
	v.tokOnce.Do(func() {
		n := 0
		if v.r.InputTokens != nil {
			n = v.r.InputTokens()
		}
		v.tokens = types.Int(n)
	})
	return v.tokens
}

func (v *requestVal) keyMetadata() ref.Val {
	v.metaOnce.Do(func() { v.kmeta = metadataVal(v.r.KeyMetadata) })
	return v.kmeta
}

// credentialHeader reports whether a header named name (any case) may
// carry a credential, and is therefore hidden from strategies:
// Authorization, Proxy-Authorization, Cookie, Api-Key, X-Api-Key, and any
// name ending in -Key, -Token or -Secret.
func credentialHeader(name string) bool {
	for _, n := range []string{"authorization", "proxy-authorization", "cookie", "api-key", "x-api-key"} {
		if equalFoldASCII(name, n) {
			return true
		}
	}
	for _, suffix := range []string{"-key", "-token", "-secret"} {
		if len(name) >= len(suffix) && equalFoldASCII(name[len(name)-len(suffix):], suffix) {
			return true
		}
	}
	return false
}

// lowerASCII lower-cases ASCII letters, allocating only when needed.
func lowerASCII(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; 'A' <= c && c <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if c := b[j]; 'A' <= c && c <= 'Z' {
					b[j] = c + 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}

// equalFoldASCII reports whether a and b are equal under ASCII case folding.
func equalFoldASCII(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if x == y {
			continue
		}
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}
