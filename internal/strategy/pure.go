package strategy

import "github.com/google/cel-go/common/ast"

// requestFree reports whether an expression's result depends on nothing
// but its inputs' values: it reads no request field and draws no random
// number. Such a result is the same for every request evaluated against
// the same universe and metrics, so a caller may reuse it while they do
// not change. A comprehension variable named "request" counts as reading
// the request (the check is conservative).
func requestFree(a *ast.AST) bool {
	free := true
	ast.PostOrderVisit(a.Expr(), ast.NewExprVisitor(func(e ast.Expr) {
		switch e.Kind() {
		case ast.IdentKind:
			if e.AsIdent() == "request" {
				free = false
			}
		case ast.CallKind:
			switch e.AsCall().FunctionName() {
			case "random", "randomize":
				free = false
			}
		}
	}))
	return free
}

// RequestFree reports whether the i-th expression reads no request field
// and draws no random number: its result is a function of the universe
// and the metrics alone.
func (p *Program) RequestFree(i int) bool { return p.free[i] }
