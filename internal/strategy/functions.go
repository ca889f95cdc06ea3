package strategy

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/ast"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
	"github.com/google/cel-go/common/types/traits"
)

// ErrNotFound is wrapped by the error of a lookup (get, getModel) that
// found nothing; the caller treats such an expression as yielding no
// candidates rather than as a failure.
var ErrNotFound = errors.New("strategy: not found")

// Internal function names of the sortBy macros; '@' keeps them out of
// reach of expressions.
const (
	fnSortAsc  = "@llmgate_sortBy"
	fnSortDesc = "@llmgate_sortByDesc"
)

// priceTypes are the accepted underCost price types.
var priceTypes = []string{"text.input", "text.output", "text.input_cache_read", "text.input_cache_write"}

// priceOf returns the price field of p named by typ, or nil.
func priceOf(p *pricingVal, typ string) ref.Val {
	switch typ {
	case "text.input":
		return p.input
	case "text.output":
		return p.output
	case "text.input_cache_read":
		return p.cacheRead
	case "text.input_cache_write":
		return p.cacheWrite
	}
	return nil
}

func errPriceType(typ string) error {
	return fmt.Errorf("underCost: unsupported price type %q; accepted: %s", typ, strings.Join(priceTypes, ", "))
}

// library returns the functions and macros of the environment.
func library(o Options) []cel.EnvOption {
	lists := []*types.Type{modelListT, provListT, authListT, keyListT}
	var opts []cel.EnvOption

	// only / ignore on every list, with a string or a list of strings.
	for _, name := range []string{"only", "ignore"} {
		keep := name == "only"
		var ovs []cel.FunctionOpt
		for _, lt := range lists {
			tn := lt.Parameters()[0].TypeName()[len("llmgate."):]
			impl := func(l, ids ref.Val) ref.Val { return filterByIDs(l, ids, keep, matchItem) }
			ovs = append(ovs,
				cel.MemberOverload(tn+"s_"+name+"_string", []*cel.Type{lt, cel.StringType}, lt, cel.BinaryBinding(impl)),
				cel.MemberOverload(tn+"s_"+name+"_list", []*cel.Type{lt, strListT}, lt, cel.BinaryBinding(impl)))
		}
		opts = append(opts, function(name, ovs...))
	}
	for _, f := range []struct {
		name  string
		keep  bool
		match func(ref.Val, idList) bool
	}{
		{"onlyProviders", true, matchProvider}, {"ignoreProviders", false, matchProvider},
		{"onlyAuthors", true, matchAuthor}, {"ignoreAuthors", false, matchAuthor},
	} {
		impl := func(l, ids ref.Val) ref.Val { return filterByIDs(l, ids, f.keep, f.match) }
		opts = append(opts, function(f.name,
			cel.MemberOverload("models_"+f.name+"_string", []*cel.Type{modelListT, cel.StringType}, modelListT, cel.BinaryBinding(impl)),
			cel.MemberOverload("models_"+f.name+"_list", []*cel.Type{modelListT, strListT}, modelListT, cel.BinaryBinding(impl))))
	}

	opts = append(opts, function("underCost",
		cel.MemberOverload("models_underCost_double", []*cel.Type{modelListT, cel.StringType, cel.DoubleType}, modelListT, cel.FunctionBinding(underCost)),
		cel.MemberOverload("models_underCost_int", []*cel.Type{modelListT, cel.StringType, cel.IntType}, modelListT, cel.FunctionBinding(underCost))))

	opts = append(opts, function("sortBy",
		cel.MemberOverload("models_sortBy_string", []*cel.Type{modelListT, cel.StringType}, modelListT, cel.BinaryBinding(sortByName))))

	// random / randomize on every list (and on lists of anything).
	rnd := o.Rand
	tp := cel.TypeParamType("T")
	opts = append(opts,
		function("random", cel.MemberOverload("list_random", []*cel.Type{cel.ListType(tp)}, tp,
			cel.UnaryBinding(func(l ref.Val) ref.Val { return random(l, rnd) }))),
		function("randomize", cel.MemberOverload("list_randomize", []*cel.Type{cel.ListType(tp)}, cel.ListType(tp),
			cel.UnaryBinding(func(l ref.Val) ref.Val { return randomize(l, rnd) }))))

	// Lookups.
	opts = append(opts, function("get",
		cel.MemberOverload("models_get_provider_model", []*cel.Type{modelListT, cel.StringType, cel.StringType}, modelT, cel.FunctionBinding(getModel)),
		cel.MemberOverload("models_get_string", []*cel.Type{modelListT, cel.StringType}, modelT, cel.BinaryBinding(getByID)),
		cel.MemberOverload("providers_get_string", []*cel.Type{provListT, cel.StringType}, providerT, cel.BinaryBinding(getByID)),
		cel.MemberOverload("authors_get_string", []*cel.Type{authListT, cel.StringType}, authorT, cel.BinaryBinding(getByID)),
		cel.MemberOverload("keys_get_string", []*cel.Type{keyListT, cel.StringType}, keyT, cel.BinaryBinding(getByID))))
	opts = append(opts, function("getModel",
		cel.MemberOverload("provider_getModel_string", []*cel.Type{providerT, cel.StringType}, modelT, cel.BinaryBinding(providerGetModel))))
	opts = append(opts, function("getMetadata",
		cel.MemberOverload("model_getMetadata_string", []*cel.Type{modelT, cel.StringType}, cel.DynType, cel.BinaryBinding(getMetadata)),
		cel.MemberOverload("provider_getMetadata_string", []*cel.Type{providerT, cel.StringType}, cel.DynType, cel.BinaryBinding(getMetadata))))
	opts = append(opts, function("header",
		cel.MemberOverload("request_header_string", []*cel.Type{requestT, cel.StringType}, cel.StringType, cel.BinaryBinding(requestHeader))))

	// sortBy(x, expr) / sortByDesc(x, expr) macros and their internals.
	kp := cel.TypeParamType("K")
	opts = append(opts,
		cel.Macros(cel.ReceiverMacro("sortBy", 2, sortMacro(fnSortAsc)), cel.ReceiverMacro("sortByDesc", 2, sortMacro(fnSortDesc))),
		function(fnSortAsc, cel.Overload("llmgate_sortBy_list_list", []*cel.Type{cel.ListType(tp), cel.ListType(kp)}, cel.ListType(tp),
			cel.BinaryBinding(func(l, k ref.Val) ref.Val { return sortByKeys(l, k, false) }))),
		function(fnSortDesc, cel.Overload("llmgate_sortByDesc_list_list", []*cel.Type{cel.ListType(tp), cel.ListType(kp)}, cel.ListType(tp),
			cel.BinaryBinding(func(l, k ref.Val) ref.Val { return sortByKeys(l, k, true) }))))
	return opts
}

// sortMacro expands target.sortBy(x, expr) into
//
//	cel.bind(@t, target, fn(@t, @t.map(x, expr)))
//
// so the target is evaluated exactly once and expr once per element; the
// map's accumulator is sized to the target.
func sortMacro(fn string) cel.MacroFactory {
	return func(eh cel.MacroExprFactory, target ast.Expr, args []ast.Expr) (ast.Expr, *cel.Error) {
		if args[0].Kind() != ast.IdentKind {
			return nil, eh.NewError(args[0].ID(), "sortBy: the first argument must be a simple name")
		}
		v, err := iterVar(eh, args[0])
		if err != nil {
			return nil, err
		}
		const bound = "@llmgate_sort_target"
		keys := accFold(eh, eh.NewIdent(bound), v, eh.NewCall(fnAcc, eh.NewIdent(bound)), nil, args[1])
		call := eh.NewCall(fn, eh.NewIdent(bound), keys)
		return eh.NewComprehension(eh.NewList(), "#unused", bound, target, eh.NewLiteral(types.False), eh.NewIdent(bound), call), nil
	}
}

// elems returns the elements of a CEL list without copying when possible.
func elems(l ref.Val) ([]ref.Val, ref.Val) {
	switch x := l.(type) {
	case *sliceList:
		return x.vals, nil
	case traits.Lister:
		if vs, ok := x.Value().([]ref.Val); ok {
			return vs, nil
		}
	}
	lister, ok := l.(traits.Lister)
	if !ok {
		return nil, types.MaybeNoSuchOverloadErr(l)
	}
	n := int(lister.Size().(types.Int))
	vs := make([]ref.Val, n)
	for i := range n {
		vs[i] = lister.Get(types.Int(i))
	}
	return vs, nil
}

// newList wraps vs, which must not be modified afterwards, into a CEL list.
func newList(vs []ref.Val) ref.Val { return &sliceList{vals: vs} }

// idList is a string or a list of strings given as ids, read without
// copying; the zero idList is empty.
type idList struct {
	one  types.String
	many []ref.Val // all types.String; nil when the ids are one
}

func (l idList) len() int {
	if l.many == nil {
		return 1
	}
	return len(l.many)
}

func (l idList) at(i int) string {
	if l.many == nil {
		return string(l.one)
	}
	return string(l.many[i].(types.String))
}

// stringsArg accepts a string or a list of strings.
func stringsArg(v ref.Val) (idList, ref.Val) {
	if s, ok := v.(types.String); ok {
		return idList{one: s}, nil
	}
	vs, errv := elems(v)
	if errv != nil {
		return idList{}, errv
	}
	for _, x := range vs {
		if _, ok := x.(types.String); !ok {
			return idList{}, types.NewErr("expected a list of strings, found %s", x.Type().TypeName())
		}
	}
	if vs == nil {
		vs = []ref.Val{}
	}
	return idList{many: vs}, nil
}

// filterByIDs keeps (or drops) the elements for which match is true.
func filterByIDs(l, idsV ref.Val, keep bool, match func(ref.Val, idList) bool) ref.Val {
	vs, errv := elems(l)
	if errv != nil {
		return errv
	}
	ids, errv := stringsArg(idsV)
	if errv != nil {
		return errv
	}
	out := make([]ref.Val, 0, len(vs))
	for _, v := range vs {
		if match(v, ids) == keep {
			out = append(out, v)
		}
	}
	return newList(out)
}

func nameMatches(id string, aliases []string, want string) bool {
	if equalFoldASCII(id, want) {
		return true
	}
	for _, a := range aliases {
		if equalFoldASCII(a, want) {
			return true
		}
	}
	return false
}

// matchItem matches an element's ID or aliases; a model also matches a
// "provider:model" entry.
func matchItem(v ref.Val, ids idList) bool {
	for i := range ids.len() {
		want := ids.at(i)
		switch x := v.(type) {
		case *modelVal:
			if modelMatches(x.m, want) {
				return true
			}
		case *providerVal:
			if nameMatches(x.p.ID, x.p.Aliases, want) {
				return true
			}
		case *authorVal:
			if equalFoldASCII(x.a.ID, want) {
				return true
			}
		case *keyVal:
			if equalFoldASCII(x.k.ID, want) {
				return true
			}
		}
	}
	return false
}

// modelMatches reports whether want names m: its id or an alias, or
// "provider:model" with either part an id or alias. Model IDs may contain
// ':' themselves, so the bare form is tried first.
func modelMatches(m *Model, want string) bool {
	if nameMatches(m.ID, m.Aliases, want) {
		return true
	}
	p, model, ok := strings.Cut(want, ":")
	return ok && nameMatches(m.ProviderID, m.ProviderAliases, p) && nameMatches(m.ID, m.Aliases, model)
}

func matchProvider(v ref.Val, ids idList) bool {
	m, ok := v.(*modelVal)
	if !ok {
		return false
	}
	for i := range ids.len() {
		if want := ids.at(i); nameMatches(m.m.ProviderID, m.m.ProviderAliases, want) {
			return true
		}
	}
	return false
}

func matchAuthor(v ref.Val, ids idList) bool {
	m, ok := v.(*modelVal)
	if !ok {
		return false
	}
	for i := range ids.len() {
		if equalFoldASCII(m.m.AuthorID, ids.at(i)) {
			return true
		}
	}
	return false
}

// underCost keeps the models whose price of the given type is strictly
// below max USD per 1M tokens. A model that is not Custom and has the zero
// Pricing is unpriced (the catalog does not know its price) and never
// qualifies; any other model's zero field is a real zero (no charge).
func underCost(args ...ref.Val) ref.Val {
	vs, errv := elems(args[0])
	if errv != nil {
		return errv
	}
	typ, ok := args[1].(types.String)
	if !ok {
		return types.MaybeNoSuchOverloadErr(args[1])
	}
	var limit float64
	switch x := args[2].(type) {
	case types.Double:
		limit = float64(x)
	case types.Int:
		limit = float64(x)
	default:
		return types.MaybeNoSuchOverloadErr(args[2])
	}
	if !slices.Contains(priceTypes, string(typ)) {
		return types.WrapErr(errPriceType(string(typ)))
	}
	out := make([]ref.Val, 0, len(vs))
	for _, v := range vs {
		m, ok := v.(*modelVal)
		if !ok || m.unpriced {
			continue
		}
		if float64(priceOf(&m.pricing, string(typ)).(types.Double)) < limit {
			out = append(out, v)
		}
	}
	return newList(out)
}

// sortByName implements sortBy('price'): ascending text input price,
// unpriced models last, stable.
func sortByName(l, name ref.Val) ref.Val {
	if s, ok := name.(types.String); !ok || s != "price" {
		return types.NewErr("sortBy: unsupported sort %v; accepted: 'price' or sortBy(x, expr)", name)
	}
	vs, errv := elems(l)
	if errv != nil {
		return errv
	}
	out := slices.Clone(vs)
	price := func(v ref.Val) (float64, bool) {
		m, ok := v.(*modelVal)
		if !ok || m.unpriced {
			return 0, false
		}
		return float64(m.pricing.input.(types.Double)), true
	}
	slices.SortStableFunc(out, func(a, b ref.Val) int {
		pa, oka := price(a)
		pb, okb := price(b)
		switch {
		case oka != okb:
			if oka {
				return -1
			}
			return 1
		case !oka:
			return 0
		}
		return cmp.Compare(pa, pb)
	})
	return newList(out)
}

// sortByKeys sorts l stably by the associated keys.
func sortByKeys(l, k ref.Val, desc bool) ref.Val {
	vs, errv := elems(l)
	if errv != nil {
		return errv
	}
	keys, errv := elems(k)
	if errv != nil {
		return errv
	}
	if len(vs) != len(keys) {
		return types.NewErr("sortBy: %d elements but %d keys", len(vs), len(keys))
	}
	if len(vs) == 0 {
		return l
	}
	kt := keys[0].Type()
	switch kt {
	case types.IntType, types.UintType, types.DoubleType, types.StringType, types.BoolType, types.DurationType, types.TimestampType:
	default:
		return types.NewErr("sortBy: unsupported key type %s", kt.TypeName())
	}
	for _, key := range keys[1:] {
		if key.Type() != kt {
			return types.NewErr("sortBy: mixed key types %s and %s", kt.TypeName(), key.Type().TypeName())
		}
	}
	idx := make([]int, len(vs))
	for i := range idx {
		idx[i] = i
	}
	compare := func(a, b ref.Val) int {
		switch x := a.(type) {
		case types.Double:
			return cmp.Compare(float64(x), float64(b.(types.Double)))
		case types.Int:
			return cmp.Compare(x, b.(types.Int))
		case types.Uint:
			return cmp.Compare(x, b.(types.Uint))
		case types.String:
			return strings.Compare(string(x), string(b.(types.String)))
		case types.Bool:
			if x == b.(types.Bool) {
				return 0
			} else if x {
				return 1
			}
			return -1
		case types.Duration:
			return cmp.Compare(x.Duration, b.(types.Duration).Duration)
		case types.Timestamp:
			return x.Time.Compare(b.(types.Timestamp).Time)
		}
		return 0
	}
	slices.SortStableFunc(idx, func(i, j int) int {
		c := compare(keys[i], keys[j])
		if desc {
			return -c
		}
		return c
	})
	out := make([]ref.Val, len(vs))
	for i, j := range idx {
		out[i] = vs[j]
	}
	return newList(out)
}

// random returns one element; an empty list is an error.
func random(l ref.Val, rnd func(int) int) ref.Val {
	vs, errv := elems(l)
	if errv != nil {
		return errv
	}
	if len(vs) == 0 {
		return types.NewErr("random() of an empty list")
	}
	return vs[rnd(len(vs))]
}

// randomize returns a shuffled copy (Fisher-Yates).
func randomize(l ref.Val, rnd func(int) int) ref.Val {
	vs, errv := elems(l)
	if errv != nil {
		return errv
	}
	out := slices.Clone(vs)
	for i := len(out) - 1; i > 0; i-- {
		j := rnd(i + 1)
		out[i], out[j] = out[j], out[i]
	}
	return newList(out)
}

func notFound(format string, args ...any) ref.Val {
	return types.WrapErr(fmt.Errorf("%w: "+format, append([]any{ErrNotFound}, args...)...))
}

// getModel implements ai.models.get(provider, model).
func getModel(args ...ref.Val) ref.Val {
	vs, errv := elems(args[0])
	if errv != nil {
		return errv
	}
	p, ok1 := args[1].(types.String)
	id, ok2 := args[2].(types.String)
	if !ok1 || !ok2 {
		return types.NewErr("get: expected (string, string)")
	}
	for _, v := range vs {
		if m, ok := v.(*modelVal); ok && nameMatches(m.m.ProviderID, m.m.ProviderAliases, string(p)) && nameMatches(m.m.ID, m.m.Aliases, string(id)) {
			return v
		}
	}
	return notFound("model %s:%s", string(p), string(id))
}

// getByID implements get(id) on lists: the first element matching id as
// only(id) would.
func getByID(l, idV ref.Val) ref.Val {
	vs, errv := elems(l)
	if errv != nil {
		return errv
	}
	id, ok := idV.(types.String)
	if !ok {
		return types.MaybeNoSuchOverloadErr(idV)
	}
	ids := idList{one: id}
	for _, v := range vs {
		if matchItem(v, ids) {
			return v
		}
	}
	return notFound("%q", string(id))
}

func providerGetModel(p, idV ref.Val) ref.Val {
	pv, ok := p.(*providerVal)
	id, ok2 := idV.(types.String)
	if !ok || !ok2 {
		return types.NewErr("getModel: expected a provider and a string")
	}
	for _, m := range pv.modelVals {
		if nameMatches(m.m.ID, m.m.Aliases, string(id)) {
			return m
		}
	}
	return notFound("model %q of provider %q", string(id), pv.p.ID)
}

// getMetadata walks a dotted path into a model's or provider's metadata;
// an absent path is null.
func getMetadata(item, pathV ref.Val) ref.Val {
	path, ok := pathV.(types.String)
	if !ok {
		return types.MaybeNoSuchOverloadErr(pathV)
	}
	var cur any
	switch x := item.(type) {
	case *modelVal:
		cur = x.m.Metadata
	case *providerVal:
		cur = x.p.Metadata
	default:
		return types.MaybeNoSuchOverloadErr(item)
	}
	rest := string(path)
	for {
		seg, tail, more := strings.Cut(rest, ".")
		m, ok := cur.(map[string]any)
		if !ok {
			return types.NullValue
		}
		if cur, ok = m[seg]; !ok {
			return types.NullValue
		}
		if !more {
			return types.DefaultTypeAdapter.NativeToValue(cur)
		}
		rest = tail
	}
}

// requestHeader implements request.header(name): the first value, "" when
// absent; the name is case-insensitive.
func requestHeader(r, nameV ref.Val) ref.Val {
	rv, ok := r.(*requestVal)
	name, ok2 := nameV.(types.String)
	if !ok || !ok2 {
		return types.NewErr("header: expected a request and a string")
	}
	if credentialHeader(string(name)) {
		return types.String("")
	}
	if v := rv.r.Headers.Get(string(name)); v != "" {
		return types.String(v)
	}
	// Non-canonical keys (set by direct map assignment).
	for k, vals := range rv.r.Headers {
		if len(vals) > 0 && strings.EqualFold(k, string(name)) {
			return types.String(vals[0])
		}
	}
	return types.String("")
}
