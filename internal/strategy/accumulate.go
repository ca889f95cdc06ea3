package strategy

import (
	"cmp"
	"errors"
	"math"
	"reflect"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/ast"
	"github.com/google/cel-go/common/decls"
	"github.com/google/cel-go/common/operators"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
	"github.com/google/cel-go/common/types/traits"
	"github.com/google/cel-go/interpreter"
	"github.com/google/cel-go/parser"
)

// This file replaces the standard filter and map macros, whose loop step
// accu + [x] builds a one-element list per kept element, with macros that
// append to an accumulator in place, and speeds up numeric comparisons.
//
// The expansions are
//
//	r.filter(x, p)    → fold(x in r; acc = @llmgate_acc(); p ? @llmgate_push(acc, x) : acc; @llmgate_done(acc))
//	r.map(x, e)       → fold(x in r; acc = @llmgate_acc(); @llmgate_push(acc, e); @llmgate_done(acc))
//	r.map(x, p, e)    → fold(x in r; acc = @llmgate_acc(); p ? @llmgate_push(acc, e) : acc; @llmgate_done(acc))
//
// @llmgate_acc() is an accStart: a list-typed value that is not a
// traits.Lister, so that cel-go's folder does not swap it for its own
// mutable list. The first push replaces it with a fresh *sliceList, later
// pushes append to that list in place, and @llmgate_done turns a start
// into the shared empty list. An sliceList is created by one comprehension of
// one evaluation and only its own step ever pushes to it (the accumulator
// name is hidden from expressions), so it is never shared across
// evaluations or goroutines, and it is never appended to once the
// comprehension has returned it: from then on it is an immutable list. The
// planner's constant folding (OptOptimize) only folds list and map literals,
// set membership tests and type conversions, never these calls.

// Internal function names; '@' keeps them out of reach of expressions.
const (
	fnAcc  = "@llmgate_acc"
	fnPush = "@llmgate_push"
	fnDone = "@llmgate_done"
)

// accDefaultCap is the capacity of an accumulator whose final size is not
// known in advance.
const accDefaultCap = 16

// emptyList is the result of a comprehension that kept nothing. Immutable.
var emptyList = &sliceList{vals: []ref.Val{}}

// macros returns the macros of the environment: the standard ones, with
// filter and map replaced.
func macros() []cel.Macro {
	return []cel.Macro{
		parser.HasMacro, parser.AllMacro, parser.ExistsMacro, parser.ExistsOneMacro, parser.ExistsOneMacroNew,
		cel.ReceiverMacro(operators.Filter, 2, filterMacro),
		cel.ReceiverMacro(operators.Map, 2, mapMacro),
		cel.ReceiverMacro(operators.Map, 3, mapMacro),
	}
}

// accFunctions declares the accumulator functions.
func accFunctions() []cel.EnvOption {
	tp := cel.TypeParamType("T")
	lt := cel.ListType(tp)
	// The sized start takes the list iterated over, whose element type is
	// unrelated to the accumulator's (map).
	src := cel.ListType(cel.TypeParamType("S"))
	return []cel.EnvOption{
		function(fnAcc,
			cel.Overload("llmgate_acc", nil, lt, cel.FunctionBinding(func(...ref.Val) ref.Val { return accStart(0) })),
			cel.Overload("llmgate_acc_list", []*cel.Type{src}, lt, cel.UnaryBinding(accSized))),
		function(fnPush, cel.Overload("llmgate_push_list", []*cel.Type{lt, tp}, lt, cel.BinaryBinding(accPush))),
		function(fnDone, cel.Overload("llmgate_done_list", []*cel.Type{lt}, lt, cel.UnaryBinding(accDone))),
	}
}

// function declares a function of ours without cel-go's runtime type
// guards: the implementations check their arguments themselves, and the
// guard of a list parameter allocates an iterator per call.
func function(name string, opts ...cel.FunctionOpt) cel.EnvOption {
	return cel.Function(name, append(opts, decls.DisableTypeGuards(true))...)
}

// iterVar checks the iteration variable of a filter or map macro.
func iterVar(eh cel.MacroExprFactory, arg ast.Expr) (string, *cel.Error) {
	if arg.Kind() != ast.IdentKind {
		return "", eh.NewError(arg.ID(), "argument is not an identifier")
	}
	v := arg.AsIdent()
	if v == eh.AccuIdentName() || v == parser.AccumulatorName {
		return "", eh.NewError(arg.ID(), "iteration variable overwrites accumulator variable")
	}
	return v, nil
}

// accFold builds the comprehension over target pushing elem when pred (nil
// is always) holds, starting from init.
func accFold(eh cel.MacroExprFactory, target ast.Expr, v string, init, pred, elem ast.Expr) ast.Expr {
	step := eh.NewCall(fnPush, eh.NewAccuIdent(), elem)
	if pred != nil {
		step = eh.NewCall(operators.Conditional, pred, step, eh.NewAccuIdent())
	}
	return eh.NewComprehension(target, v, eh.AccuIdentName(), init, eh.NewLiteral(types.True), step,
		eh.NewCall(fnDone, eh.NewAccuIdent()))
}

func filterMacro(eh cel.MacroExprFactory, target ast.Expr, args []ast.Expr) (ast.Expr, *cel.Error) {
	v, err := iterVar(eh, args[0])
	if err != nil {
		return nil, err
	}
	return accFold(eh, target, v, eh.NewCall(fnAcc), args[1], eh.NewIdent(v)), nil
}

func mapMacro(eh cel.MacroExprFactory, target ast.Expr, args []ast.Expr) (ast.Expr, *cel.Error) {
	v, err := iterVar(eh, args[0])
	if err != nil {
		return nil, err
	}
	if len(args) == 3 {
		return accFold(eh, target, v, eh.NewCall(fnAcc), args[1], args[2]), nil
	}
	return accFold(eh, target, v, eh.NewCall(fnAcc), nil, args[1]), nil
}

// accStart is the initial accumulator: a capacity hint. It is a list for
// the checker but not a traits.Lister, and never escapes the comprehension.
type accStart int

func (accStart) ConvertToNative(reflect.Type) (any, error) {
	return nil, errors.New("strategy: cannot convert an internal accumulator")
}
func (accStart) ConvertToType(ref.Type) ref.Val {
	return types.NewErr("strategy: internal accumulator")
}
func (accStart) Equal(ref.Val) ref.Val { return types.NewErr("strategy: internal accumulator") }
func (accStart) Type() ref.Type        { return types.ListType }
func (s accStart) Value() any          { return int(s) }

// accSized starts an accumulator with the size of l as capacity hint.
func accSized(l ref.Val) ref.Val {
	if s, ok := l.(traits.Sizer); ok {
		if n, ok := s.Size().(types.Int); ok {
			return accStart(n)
		}
	}
	return accStart(0)
}

// accPush appends v to the accumulator acc, in place once acc is an
// *sliceList.
func accPush(acc, v ref.Val) ref.Val {
	switch a := acc.(type) {
	case *sliceList:
		a.vals = append(a.vals, v)
		return a
	case accStart:
		n := int(a)
		if n <= 0 {
			n = accDefaultCap
		}
		l := &sliceList{vals: make([]ref.Val, 1, n)}
		l.vals[0] = v
		return l
	}
	return types.MaybeNoSuchOverloadErr(acc)
}

// accDone returns the comprehension's result.
func accDone(acc ref.Val) ref.Val {
	if _, ok := acc.(accStart); ok {
		return emptyList
	}
	return acc
}

// sliceList is a CEL list over a slice of values: the lists of the
// universe and of the request, the results of our list functions (never
// modified once built) and the list a filter or map builds (see the comment
// at the top of the file; immutable once its comprehension has returned
// it). It is then safe for concurrent reads.
type sliceList struct {
	vals []ref.Val
}

var _ traits.Lister = (*sliceList)(nil)

// list is a standard CEL list over the same elements, for the rarely used
// operations.
func (l *sliceList) list() traits.Lister {
	return types.NewRefValList(types.DefaultTypeAdapter, l.vals[:len(l.vals):len(l.vals)])
}

func (l *sliceList) ConvertToNative(t reflect.Type) (any, error) { return l.list().ConvertToNative(t) }
func (l *sliceList) ConvertToType(t ref.Type) ref.Val {
	if t == types.ListType {
		return l
	}
	return l.list().ConvertToType(t)
}

// Equal is element-wise equality with any list, like cel-go's lists.
func (l *sliceList) Equal(o ref.Val) ref.Val {
	ol, ok := o.(traits.Lister)
	if !ok || ol.Size() != types.Int(len(l.vals)) {
		return types.False
	}
	for i, v := range l.vals {
		if types.Equal(v, ol.Get(types.Int(i))) == types.False {
			return types.False
		}
	}
	return types.True
}
func (l *sliceList) Type() ref.Type        { return types.ListType }
func (l *sliceList) Value() any            { return l.vals[:len(l.vals):len(l.vals)] }
func (l *sliceList) Add(o ref.Val) ref.Val { return l.list().Add(o) }

// Contains is cel-go's list membership: some element equals v.
func (l *sliceList) Contains(v ref.Val) ref.Val {
	for _, x := range l.vals {
		if v.Equal(x) == types.True {
			return types.True
		}
	}
	return types.False
}
func (l *sliceList) Size() ref.Val { return types.Int(len(l.vals)) }

func (l *sliceList) Get(i ref.Val) ref.Val {
	if n, ok := i.(types.Int); ok && n >= 0 && int64(n) < int64(len(l.vals)) {
		return l.vals[n]
	}
	return l.list().Get(i)
}

func (l *sliceList) Iterator() traits.Iterator {
	if len(l.vals) == 0 {
		return emptyIter
	}
	return &sliceIter{vals: l.vals}
}

// emptyIter iterates over nothing; it has no state, so it is shared.
var emptyIter = &sliceIter{}

// sliceIter iterates over an sliceList.
type sliceIter struct {
	vals []ref.Val
	i    int
}

func (it *sliceIter) ConvertToNative(reflect.Type) (any, error) {
	return nil, errors.New("strategy: cannot convert an iterator")
}
func (it *sliceIter) ConvertToType(ref.Type) ref.Val {
	return types.NewErr("strategy: cannot convert an iterator")
}
func (it *sliceIter) Equal(ref.Val) ref.Val {
	return types.NewErr("strategy: cannot compare an iterator")
}
func (it *sliceIter) Type() ref.Type   { return types.IteratorType }
func (it *sliceIter) Value() any       { return nil }
func (it *sliceIter) HasNext() ref.Val { return types.Bool(it.i < len(it.vals)) }

func (it *sliceIter) Next() ref.Val {
	if it.i >= len(it.vals) {
		return nil
	}
	v := it.vals[it.i]
	it.i++
	return v
}

// numericCompare replaces the standard numeric ordering calls (<, <=, >,
// >= on int, uint and double, same type or mixed) by an evaluation that
// does not box the comparison's result: cel-go's Double.Compare allocates
// when it returns -1. Errors and unknowns fall back to the standard call.
func numericCompare(i interpreter.InterpretableV2) (interpreter.InterpretableV2, error) {
	call, ok := i.(interpreter.InterpretableCall)
	if !ok || len(call.Args()) != 2 {
		return i, nil
	}
	var op cmpOp
	switch call.Function() {
	case operators.Less:
		op = opLess
	case operators.LessEquals:
		op = opLessEq
	case operators.Greater:
		op = opGreater
	case operators.GreaterEquals:
		op = opGreaterEq
	default:
		return i, nil
	}
	if !numericOverload(call.OverloadID()) {
		return i, nil
	}
	return &cmpCall{InterpretableCall: call, op: op, lhs: call.Args()[0], rhs: call.Args()[1]}, nil
}

// numericOverload reports whether id is a standard ordering overload of two
// numbers (less_double, greater_equals_int64_uint64, ...).
func numericOverload(id string) bool {
	for _, prefix := range []string{"less_equals_", "less_", "greater_equals_", "greater_"} {
		if len(id) > len(prefix) && id[:len(prefix)] == prefix {
			switch id[len(prefix):] {
			case "int64", "uint64", "double", "int64_double", "int64_uint64", "uint64_double", "uint64_int64", "double_int64", "double_uint64":
				return true
			}
			return false
		}
	}
	return false
}

type cmpOp uint8

const (
	opLess cmpOp = iota
	opLessEq
	opGreater
	opGreaterEq
)

// cmpCall is a numeric comparison; it keeps the original call for
// everything but the fast path.
type cmpCall struct {
	interpreter.InterpretableCall
	op       cmpOp
	lhs, rhs interpreter.InterpretableV2
}

func (c *cmpCall) Eval(a interpreter.Activation) ref.Val {
	return c.Exec(interpreter.AsFrame(a))
}

func (c *cmpCall) Exec(frame *interpreter.ExecutionFrame) ref.Val {
	l := c.lhs.Exec(frame)
	if types.IsError(l) {
		return l
	}
	r := c.rhs.Exec(frame)
	cmp, ok := compareNumbers(l, r)
	if !ok {
		// Errors, unknowns: let the standard implementation decide (the
		// arguments are evaluated again; expressions have no side effects).
		return c.InterpretableCall.Exec(frame)
	}
	switch c.op {
	case opLess:
		return types.Bool(cmp < 0)
	case opLessEq:
		return types.Bool(cmp <= 0)
	case opGreater:
		return types.Bool(cmp > 0)
	}
	return types.Bool(cmp >= 0)
}

// compareNumbers orders two CEL numbers exactly as cel-go's Compare
// methods do, without boxing; ok is false for anything else and for NaN
// (which the caller's fallback turns into false like the standard library).
func compareNumbers(l, r ref.Val) (int, bool) {
	switch x := l.(type) {
	case types.Double:
		switch y := r.(type) {
		case types.Double:
			if math.IsNaN(float64(x)) || math.IsNaN(float64(y)) {
				return 0, false
			}
			return cmpFloat(float64(x), float64(y)), true
		case types.Int:
			if math.IsNaN(float64(x)) {
				return 0, false
			}
			return cmpDoubleInt(float64(x), int64(y)), true
		case types.Uint:
			if math.IsNaN(float64(x)) {
				return 0, false
			}
			return cmpDoubleUint(float64(x), uint64(y)), true
		}
	case types.Int:
		switch y := r.(type) {
		case types.Int:
			return cmp.Compare(int64(x), int64(y)), true
		case types.Double:
			if math.IsNaN(float64(y)) {
				return 0, false
			}
			return -cmpDoubleInt(float64(y), int64(x)), true
		case types.Uint:
			return cmpIntUint(int64(x), uint64(y)), true
		}
	case types.Uint:
		switch y := r.(type) {
		case types.Uint:
			return cmp.Compare(uint64(x), uint64(y)), true
		case types.Double:
			if math.IsNaN(float64(y)) {
				return 0, false
			}
			return -cmpDoubleUint(float64(y), uint64(x)), true
		case types.Int:
			return -cmpIntUint(int64(y), uint64(x)), true
		}
	}
	return 0, false
}

// cmpDoubleInt, cmpDoubleUint and cmpIntUint mirror cel-go's
// compareDoubleInt, compareDoubleUint and compareIntUint.
func cmpDoubleInt(d float64, i int64) int {
	if d < math.MinInt64 {
		return -1
	}
	if d > math.MaxInt64 {
		return 1
	}
	return cmpFloat(d, float64(i))
}

func cmpDoubleUint(d float64, u uint64) int {
	if d < 0 {
		return -1
	}
	if d > math.MaxUint64 {
		return 1
	}
	return cmpFloat(d, float64(u))
}

func cmpIntUint(i int64, u uint64) int {
	if i < 0 || u > math.MaxInt64 {
		return -1
	}
	return cmp.Compare(i, int64(u))
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
