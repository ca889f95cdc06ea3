// Package strategy is the CEL environment of operator-written model and key
// selection strategies (SPEC §3.3–3.4): it compiles strategy expressions
// once per configuration and evaluates one expression at a time against a
// [Universe] of candidate models (ai.models, ai.providers, ai.authors) or a
// provider's [Key]s (ai.keys), plus the client [Request] (request).
//
// The caller runs the strategy loop (first non-empty result wins, the
// allowed and client filters, the trace); this package evaluates single
// expressions. It imports only catalog (prices) and metrics (Stats).
//
// # Types
//
// Objects are real CEL types (llmgate.Model, llmgate.Provider, ...), so a
// misspelt field is a compile error. Model fields: id, id_aliases,
// provider_id, provider_id_aliases, author_id, display_name, known, custom,
// metadata, input_modalities, output_modalities, supported_features,
// max_context_window, max_output_tokens, pricing {input, output,
// cache_read, cache_write} (double USD per 1M tokens), metrics
// {request_count, in_flight, start_time, end_time (int unix seconds),
// latency {upstream_ms_avg, upstream_ms_p95, time_to_first_token_ms_avg,
// time_to_first_token_ms_p95} (int ms), error_rate {total, timeout,
// rate_limit, client, server} (double 0–1)}. Provider: id, id_aliases,
// display_name, custom, metadata, models. Author: id, models. Key: id,
// weight, cooling_down, in_flight, metrics, error_rate. Request: headers
// (lower-cased names, first value; credential headers are never visible,
// see [Request].Headers), stream, api, models, input_tokens
// (computed on first read only), key {id, metadata}; request.header(name).
// request_count is an int (saturating) so that comparisons with literals
// need no u suffix; numeric comparisons across int, uint and double are
// allowed.
//
// Model strategies see ai.models, ai.providers and ai.authors; key
// strategies see only ai.keys (ai.models is a compile error there, and
// ai.keys one in a model strategy).
//
// # Functions
//
// Besides standard CEL (filter, map, exists, all, size, [i], in, contains,
// startsWith, endsWith, matches; filter and map are our own macros with the
// standard meaning that build their result in place) and the ext.Strings
// and ext.Lists libraries:
//
//   - only(ids) / ignore(ids) on lists of models, providers, authors and
//     keys: keep or drop items whose id or alias is listed (ASCII
//     case-insensitive); ids is a string or a list of strings; a model also
//     matches "provider:model".
//   - onlyProviders(ids) / ignoreProviders(ids), onlyAuthors(ids) /
//     ignoreAuthors(ids) on models.
//   - underCost(type, max): models priced strictly below max USD per 1M
//     tokens; type is text.input, text.output, text.input_cache_read or
//     text.input_cache_write (other types are a compile error when literal,
//     a runtime error otherwise). A model that is not custom and has no
//     price at all is "unpriced" and never under any cost; a priced model's
//     zero field means no charge.
//   - sortBy(x, expr) / sortByDesc(x, expr): stable sort by a key of type
//     int, uint, double, string, bool, duration or timestamp; the target is
//     evaluated once, expr once per element; mixed key types are an error.
//     sortBy('price') sorts by text input price, unpriced models last.
//   - random() one element (an error on an empty list), randomize() a
//     shuffled copy; the source is [Options.Rand].
//   - ai.models.get(provider, model), get(id) on any list, and
//     provider.getModel(id): lookups whose failure wraps [ErrNotFound].
//   - model.getMetadata('a.b'), provider.getMetadata('a.b'): a dotted path
//     into metadata, null when absent.
package strategy

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/checker"
	"github.com/google/cel-go/common/ast"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
	"github.com/google/cel-go/common/types/traits"
	"github.com/google/cel-go/ext"
	"github.com/google/cel-go/interpreter"
)

// Kind says what a Program selects.
type Kind int

const (
	// Models programs select models: ai.models, ai.providers, ai.authors.
	Models Kind = iota
	// Keys programs select a provider's keys: ai.keys.
	Keys
)

// Defaults of [Options].
const (
	// DefaultMaxCost is the default runtime cost limit of one evaluation, in
	// CEL cost units (about one per evaluated node or list element).
	DefaultMaxCost = 1_000_000
	// DefaultMaxEstimatedCost is the default limit of the worst-case cost
	// the checker estimates for an expression, assuming [EstimatedItems]
	// models, providers, authors or keys.
	DefaultMaxEstimatedCost = 10_000_000
	// NoCostLimit as Options.MaxCost disables runtime cost tracking.
	NoCostLimit = ^uint64(0)
	// EstimatedItems is the list size the cost estimate assumes.
	EstimatedItems = 1000
	// interruptEvery is how many comprehension iterations pass between
	// checks of the context.
	interruptEvery = 100
	// quickCost is the estimated worst-case cost under which an expression
	// is evaluated without interrupt checks: it ends within a few
	// milliseconds even over EstimatedItems items, and the checks (a
	// context per evaluation) would cost more than they could save.
	quickCost = 100_000
)

// Options configures [Compile]. The zero Options uses the defaults.
type Options struct {
	// Rand returns a random int in [0, n) for random() and randomize(); it
	// must be safe for concurrent use. Nil is math/rand/v2.IntN.
	Rand func(n int) int
	// MaxCost is the runtime cost limit per evaluation; zero is
	// DefaultMaxCost. Runtime cost tracking makes evaluation several times
	// slower (cel-go allocates per call to track it); NoCostLimit turns it
	// off, leaving the compile-time estimate and context cancellation as the
	// bounds.
	MaxCost uint64
	// MaxEstimatedCost rejects at compile time expressions whose estimated
	// worst-case cost exceeds it; zero is DefaultMaxEstimatedCost.
	MaxEstimatedCost uint64
}

// CompileError is one problem of one expression found by [Compile].
type CompileError struct {
	// Index is the expression's position in the list given to Compile.
	Index int
	// Expr is the expression.
	Expr string
	// Line and Column (1-based) locate the problem; zero when it concerns the
	// whole expression.
	Line, Column int
	// Message describes the problem.
	Message string
}

func (e *CompileError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "strategy %d %q", e.Index, truncate(e.Expr, 60))
	if e.Line > 0 {
		fmt.Fprintf(&b, " at %d:%d", e.Line, e.Column)
	}
	b.WriteString(": ")
	b.WriteString(e.Message)
	return b.String()
}

// EvalError is a runtime failure of one expression; Err may wrap
// [ErrNotFound] (a lookup found nothing) or a context error.
type EvalError struct {
	Index int
	Expr  string
	Err   error
}

func (e *EvalError) Error() string {
	return fmt.Sprintf("strategy %d %q: %v", e.Index, truncate(e.Expr, 60), e.Err)
}

func (e *EvalError) Unwrap() error { return e.Err }

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// Program is a compiled list of strategy expressions. It is immutable and
// safe for concurrent use; the zero Program has no expressions.
type Program struct {
	kind        Kind
	exprs       []string
	progs       []cel.Program
	free        []bool // per expression: see RequestFree
	quick       []bool // per expression: estimated cost under quickCost
	readsTokens bool
}

// Compile parses and type-checks every expression for kind. Each must
// return a model or a list of models (a key or list of keys for Keys); an
// expression of type dyn is checked when evaluated. All problems are
// returned at once, joined, each a *CompileError.
func Compile(kind Kind, exprs []string, o Options) (*Program, error) {
	if o.Rand == nil {
		o.Rand = rand.IntN
	}
	if o.MaxCost == 0 {
		o.MaxCost = DefaultMaxCost
	}
	if o.MaxEstimatedCost == 0 {
		o.MaxEstimatedCost = DefaultMaxEstimatedCost
	}
	env, err := newEnv(kind, o)
	if err != nil {
		return nil, err
	}
	want := modelT
	if kind == Keys {
		want = keyT
	}
	p := &Program{kind: kind, exprs: exprs, progs: make([]cel.Program, len(exprs)), free: make([]bool, len(exprs)), quick: make([]bool, len(exprs))}
	var errs []error
	for i, src := range exprs {
		fail := func(line, col int, msg string) {
			errs = append(errs, &CompileError{Index: i, Expr: src, Line: line, Column: col, Message: msg})
		}
		checked, iss := env.Compile(src)
		if iss.Err() != nil {
			for _, e := range iss.Errors() {
				fail(e.Location.Line(), e.Location.Column()+1, e.Message)
			}
			continue
		}
		if !outputOK(checked.OutputType(), want) {
			fail(0, 0, fmt.Sprintf("returns %s, want %s or list(%s)", checked.OutputType(), want, want))
			continue
		}
		if msg := checkLiterals(checked.NativeRep()); msg != "" {
			fail(0, 0, msg)
			continue
		}
		est, err := env.EstimateCost(checked, estimator{})
		if err != nil {
			fail(0, 0, "cost estimate: "+err.Error())
			continue
		}
		if est.Max > o.MaxEstimatedCost {
			fail(0, 0, fmt.Sprintf("estimated worst-case cost %d exceeds the limit %d (assuming %d items)", est.Max, o.MaxEstimatedCost, EstimatedItems))
			continue
		}
		p.quick[i] = est.Max <= quickCost
		prg, err := env.Program(checked, programOptions(o)...)
		if err != nil {
			fail(0, 0, err.Error())
			continue
		}
		p.progs[i] = prg
		p.free[i] = requestFree(checked.NativeRep())
		if readsInputTokens(checked.NativeRep()) {
			p.readsTokens = true
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return p, nil
}

// programOptions are the options of every program; o has its defaults.
func programOptions(o Options) []cel.ProgramOption {
	popts := []cel.ProgramOption{cel.EvalOptions(cel.OptOptimize), cel.InterruptCheckFrequency(interruptEvery), cel.CustomDecoratorV2(numericCompare)}
	if o.MaxCost != NoCostLimit {
		popts = append(popts, cel.CostLimit(o.MaxCost), cel.CostTracking(runtimeCost{}))
	}
	return popts
}

func newEnv(kind Kind, o Options) (*cel.Env, error) {
	reg, err := types.NewRegistry()
	if err != nil {
		return nil, err
	}
	tp := typeProvider{reg}
	aiT := aiOT.typ
	if kind == Keys {
		aiT = keyAIOT.typ
	}
	opts := []cel.EnvOption{
		cel.CustomTypeProvider(tp),
		cel.CustomTypeAdapter(tp),
		cel.CrossTypeNumericComparisons(true),
		cel.ClearMacros(),
		cel.Macros(macros()...),
		ext.Strings(),
		ext.Lists(),
		cel.Variable("ai", aiT),
		cel.Variable("request", requestT),
	}
	opts = append(opts, accFunctions()...)
	return cel.NewEnv(append(opts, library(o)...)...)
}

// outputOK accepts want, list(want), dyn and list(dyn).
func outputOK(t *types.Type, want *types.Type) bool {
	switch t.Kind() {
	case types.DynKind, types.AnyKind:
		return true
	case types.StructKind:
		return t.TypeName() == want.TypeName()
	case types.ListKind:
		e := t.Parameters()[0]
		return e.Kind() == types.DynKind || e.TypeName() == want.TypeName()
	}
	return false
}

// checkLiterals validates literal underCost price types at compile time.
func checkLiterals(a *ast.AST) string {
	var msg string
	ast.PostOrderVisit(a.Expr(), ast.NewExprVisitor(func(e ast.Expr) {
		if msg != "" || e.Kind() != ast.CallKind {
			return
		}
		c := e.AsCall()
		if c.FunctionName() != "underCost" || len(c.Args()) != 2 || c.Args()[0].Kind() != ast.LiteralKind {
			return
		}
		if s, ok := c.Args()[0].AsLiteral().(types.String); ok && !slices.Contains(priceTypes, string(s)) {
			msg = errPriceType(string(s)).Error()
		}
	}))
	return msg
}

// readsInputTokens reports whether the expression selects input_tokens.
func readsInputTokens(a *ast.AST) bool {
	found := false
	ast.PostOrderVisit(a.Expr(), ast.NewExprVisitor(func(e ast.Expr) {
		if e.Kind() == ast.SelectKind && e.AsSelect().FieldName() == "input_tokens" {
			found = true
		}
	}))
	return found
}

// Len returns the number of expressions.
func (p *Program) Len() int { return len(p.exprs) }

// Expr returns the i-th expression's source.
func (p *Program) Expr(i int) string { return p.exprs[i] }

// ReadsInputTokens reports whether any expression reads
// request.input_tokens, so the caller can skip estimating them.
func (p *Program) ReadsInputTokens() bool { return p.readsTokens }

// activation resolves the two variables without a map.
type activation struct {
	ai, req ref.Val
}

func (a *activation) ResolveName(name string) (any, bool) {
	switch name {
	case "ai":
		return a.ai, true
	case "request":
		return a.req, true
	}
	return nil, false
}

func (a *activation) Parent() interpreter.Activation { return nil }

func (p *Program) eval(ctx context.Context, i int, kind Kind, act *activation) (ref.Val, error) {
	if i < 0 || i >= len(p.progs) {
		return nil, &EvalError{Index: i, Err: fmt.Errorf("no expression %d (have %d)", i, len(p.progs))}
	}
	if p.kind != kind {
		return nil, &EvalError{Index: i, Expr: p.exprs[i], Err: errors.New("wrong kind of program")}
	}
	var out ref.Val
	var err error
	if ctx.Done() == nil || p.quick[i] {
		// A context that can never be cancelled, or an expression too
		// cheap to be worth interrupting, needs no interrupt checks
		// (ContextEval allocates a child context and its state per call).
		if err := ctx.Err(); err != nil {
			return nil, &EvalError{Index: i, Expr: p.exprs[i], Err: err}
		}
		out, _, err = p.progs[i].Eval(act)
	} else {
		out, _, err = p.progs[i].ContextEval(ctx, act)
	}
	if err != nil {
		return nil, &EvalError{Index: i, Expr: p.exprs[i], Err: err}
	}
	return out, nil
}

// requestValue returns the CEL value of req; nil is the empty request.
func requestValue(req *Request) ref.Val {
	if req == nil {
		req = &Request{}
	}
	return req.value()
}

// modelActivation returns the activation of a model expression for u and
// req, reusing the one req cached for the same universe (the caller usually
// evaluates all expressions with the same pair).
func modelActivation(u *Universe, req *Request) *activation {
	if req == nil {
		req = &Request{}
	}
	ai := u.values()
	if a := req.act.Load(); a != nil && a.ai == ai {
		return a
	}
	a := &activation{ai: ai, req: req.value()}
	req.act.Store(a)
	return a
}

// EvalModels evaluates the i-th expression of a Models program; a single
// model comes back as a one-element list. u nil is the empty universe.
// Errors are *EvalError.
func (p *Program) EvalModels(ctx context.Context, i int, u *Universe, req *Request) ([]*Model, error) {
	if u == nil {
		u = &Universe{}
	}
	out, err := p.eval(ctx, i, Models, modelActivation(u, req))
	if err != nil {
		return nil, err
	}
	return collect(out, func(v ref.Val) (*Model, bool) {
		m, ok := v.(*modelVal)
		if !ok {
			return nil, false
		}
		return m.m, true
	}, p, i)
}

// EvalKeys evaluates the i-th expression of a Keys program against keys; a
// single key comes back as a one-element list. Errors are *EvalError.
func (p *Program) EvalKeys(ctx context.Context, i int, keys []*Key, req *Request) ([]*Key, error) {
	vals := make([]ref.Val, len(keys))
	for j, k := range keys {
		vals[j] = k.value()
	}
	ai := &keyAIVal{keys: newList(vals)}
	ai.obj = obj{t: keyAIOT, self: ai}
	out, err := p.eval(ctx, i, Keys, &activation{ai: ai, req: requestValue(req)})
	if err != nil {
		return nil, err
	}
	return collect(out, func(v ref.Val) (*Key, bool) {
		k, ok := v.(*keyVal)
		if !ok {
			return nil, false
		}
		return k.k, true
	}, p, i)
}

// collect turns an item or a list of items into a slice.
func collect[T any](out ref.Val, item func(ref.Val) (T, bool), p *Program, i int) ([]T, error) {
	bad := func(v ref.Val) error {
		return &EvalError{Index: i, Expr: p.exprs[i], Err: fmt.Errorf("result contains a %s, want %s", v.Type().TypeName(), map[Kind]string{Models: "model", Keys: "key"}[p.kind])}
	}
	if x, ok := item(out); ok {
		return []T{x}, nil
	}
	if _, ok := out.(traits.Lister); !ok {
		return nil, bad(out)
	}
	vs, errv := elems(out)
	if errv != nil {
		return nil, &EvalError{Index: i, Expr: p.exprs[i], Err: fmt.Errorf("%v", errv)}
	}
	res := make([]T, len(vs))
	for j, v := range vs {
		x, ok := item(v)
		if !ok {
			return nil, bad(v)
		}
		res[j] = x
	}
	return res, nil
}

// estimator sizes the variables for the checker's cost estimate.
type estimator struct{}

func (estimator) EstimateSize(n checker.AstNode) *checker.SizeEstimate {
	t := n.Type()
	switch t.Kind() {
	case types.ListKind:
		switch t.Parameters()[0].TypeName() {
		case modelT.TypeName(), providerT.TypeName(), authorT.TypeName(), keyT.TypeName():
			return &checker.SizeEstimate{Min: 0, Max: EstimatedItems}
		}
		return &checker.SizeEstimate{Min: 0, Max: 32}
	case types.StringKind:
		return &checker.SizeEstimate{Min: 0, Max: 256}
	case types.MapKind:
		return &checker.SizeEstimate{Min: 0, Max: 64}
	}
	return nil
}

func (estimator) EstimateCallCost(function, overloadID string, target *checker.AstNode, args []checker.AstNode) *checker.CallEstimate {
	items := &checker.SizeEstimate{Min: 0, Max: EstimatedItems}
	switch {
	case function == fnSortAsc || function == fnSortDesc:
		return &checker.CallEstimate{CostEstimate: checker.CostEstimate{Min: 1, Max: EstimatedItems * 10}, ResultSize: items}
	case function == "random" || function == "getMetadata" || function == "header":
		return &checker.CallEstimate{CostEstimate: checker.CostEstimate{Min: 1, Max: 8}}
	case function == "get" || function == "getModel":
		return &checker.CallEstimate{CostEstimate: checker.CostEstimate{Min: 1, Max: EstimatedItems}}
	case isListFunction(function):
		return &checker.CallEstimate{CostEstimate: checker.CostEstimate{Min: 1, Max: EstimatedItems * 2}, ResultSize: items}
	}
	return nil
}

func isListFunction(fn string) bool {
	switch fn {
	case "only", "ignore", "onlyProviders", "ignoreProviders", "onlyAuthors", "ignoreAuthors", "underCost", "sortBy", "randomize":
		return true
	}
	return false
}

// runtimeCost charges the list functions one unit per element.
type runtimeCost struct{}

func (runtimeCost) CallCost(function, overloadID string, args []ref.Val, result ref.Val) *uint64 {
	if !isListFunction(function) && function != fnSortAsc && function != fnSortDesc && function != "get" {
		return nil
	}
	if len(args) == 0 {
		return nil
	}
	l, ok := args[0].(traits.Sizer)
	if !ok {
		return nil
	}
	n, _ := l.Size().(types.Int)
	c := uint64(n) + 1
	return &c
}
