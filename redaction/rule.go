package redaction

import (
	"errors"
	"fmt"
	"regexp"
	"regexp/syntax"
	"strconv"
	"strings"
	"unicode/utf8"
)

// DefaultMaxMatch is the longest match, in bytes, that a stream catches
// across chunks for a rule whose pattern has no length bound (such as
// `secret: \S+`) and that sets no Rule.MaxMatch.
const DefaultMaxMatch = 256

// Rule is one find-and-replace rule: a pattern, from a preset or written
// out, and what replaces its matches. The zero value is not a valid rule:
// it needs a Preset or a From.
type Rule struct {
	// Name identifies the rule in Counts and errors. It defaults to the
	// preset's name, or "rule N" (N counting from 0) for a From rule.
	// Names must be unique.
	Name string

	// Preset names a built-in pattern (see Presets): "email", "phone",
	// "us_ssn", "payment_card", "ip_address", "api_key". Exclusive with
	// From.
	Preset string

	// From is an RE2 pattern (Go's regexp syntax). It must not match the
	// empty string. Exclusive with Preset.
	From string

	// To replaces each match: $1, ${name} and $$ expand as in
	// regexp.Expand ("$1x" means the group named "1x": write "${1}x").
	// Empty deletes the match; for a preset, empty means the preset's
	// marker, such as "[EMAIL]".
	To string

	// Delete removes each match. It is needed only for a preset, whose
	// empty To means its marker; it cannot be combined with a To.
	Delete bool

	// MaxMatch bounds, in bytes, the matches a stream holds text back
	// for when it splits them across chunks: a longer match may be
	// missed in a stream. Zero means the pattern's own bound or, for a
	// pattern without one, the preset's bound or DefaultMaxMatch. It
	// never changes what Text and JSON find.
	MaxMatch int
}

// Errors that Compile reports, inside a *RuleError.
var (
	ErrNoPattern     = errors.New("rule needs a preset or a from pattern")
	ErrPresetAndFrom = errors.New("rule has both a preset and a from pattern")
	ErrUnknownPreset = errors.New("unknown preset")
	ErrEmptyMatch    = errors.New("pattern matches the empty string")
	ErrDeleteAndTo   = errors.New("rule has both delete and a replacement")
	ErrTemplate      = errors.New("replacement refers to a group the pattern lacks")
	ErrDuplicateName = errors.New("rule name used twice")
	ErrMaxMatch      = errors.New("max match is negative")
)

// RuleError reports a rule that does not compile. Err is one of the
// sentinel errors above or a *syntax.Error from the pattern.
type RuleError struct {
	Index int    // position in the rules given to Compile
	Name  string // the rule's name, defaulted
	Err   error
}

// Error names the rule and the problem.
func (e *RuleError) Error() string {
	return fmt.Sprintf("redaction: rule %d (%s): %v", e.Index, e.Name, e.Err)
}

// Unwrap returns the problem.
func (e *RuleError) Unwrap() error { return e.Err }

// rule is a compiled Rule.
type rule struct {
	name   string
	re     *regexp.Regexp // the pattern
	ctx    *regexp.Regexp // `^(?s:.)(?s:.*?)(pattern)`: its leftmost match after a context character
	to     string
	tmpl   []byte // to, for regexp.Expand
	expand bool   // to has a '$'
	valid  validator
	window int // longest match a stream holds back for
	span   int // longest match and one rune, 0 for an unbounded pattern
}

// Redactor applies a list of rules to text, JSON documents and streams.
// Every match of every rule is replaced in one pass over the text: where
// matches of several rules start at one position the longest wins, and
// then the rule listed first. Replacement text is never scanned again, by
// its rule or another, so a To that itself matches a rule stays in the
// output. Compile it once; it is immutable apart from internal caches and
// safe for concurrent use.
type Redactor struct {
	rules  []rule
	fwd    *dfa // unanchored: could a rule match in this text?
	rev    *dfa // anchored, backwards: where could a match begin?
	window int  // longest hold-back of any rule
}

// Compile checks and compiles rules, reporting every problem at once: the
// error joins one *RuleError per problem. No rules is valid: the
// Redactor then changes nothing.
func Compile(rules []Rule) (*Redactor, error) {
	r := &Redactor{rules: make([]rule, 0, len(rules))}
	var errs []error
	seen := map[string]int{}
	var fwd, rev []*syntax.Prog
	var bits []uint8
	for i, spec := range rules {
		name := spec.Name
		if name == "" {
			if spec.Preset != "" {
				name = spec.Preset
			} else {
				name = "rule " + strconv.Itoa(i)
			}
		}
		fail := func(err error) { errs = append(errs, &RuleError{Index: i, Name: name, Err: err}) }
		if j, dup := seen[name]; dup {
			fail(fmt.Errorf("%w (also rule %d)", ErrDuplicateName, j))
		}
		seen[name] = i
		c, f, b, err := compileRule(spec)
		if err != nil {
			fail(err)
			continue
		}
		c.name = name
		r.rules = append(r.rules, c)
		r.window = max(r.window, c.window)
		fwd, rev = append(fwd, f), append(rev, b)
		bits = append(bits, uint8(min(i, 63)))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	r.fwd = newDFA(newNFA(fwd, bits), true)
	r.rev = newDFA(newNFA(rev, bits), false)
	return r, nil
}

// compileRule compiles one rule and the programs of its automata: its
// pattern without assertions (forward) and that pattern's prefixes,
// reversed.
func compileRule(spec Rule) (c rule, fwd, rev *syntax.Prog, err error) {
	from, to, maxMatch := spec.From, spec.To, spec.MaxMatch
	switch {
	case spec.Preset != "" && spec.From != "":
		return c, nil, nil, ErrPresetAndFrom
	case spec.Preset != "":
		p, ok := presetNamed(spec.Preset)
		if !ok {
			return c, nil, nil, fmt.Errorf("%w %q (known: %s)", ErrUnknownPreset, spec.Preset, strings.Join(Presets(), ", "))
		}
		from, c.valid = p.from, p.valid
		if to == "" && !spec.Delete {
			to = p.to
		}
		if maxMatch == 0 {
			maxMatch = p.maxMatch
		}
	case spec.From == "":
		return c, nil, nil, ErrNoPattern
	}
	if spec.Delete && spec.To != "" {
		return c, nil, nil, ErrDeleteAndTo
	}
	if maxMatch < 0 {
		return c, nil, nil, ErrMaxMatch
	}
	tree, err := syntax.Parse(from, syntax.Perl)
	if err != nil {
		return c, nil, nil, err
	}
	if c.re, err = regexp.Compile(from); err != nil {
		return c, nil, nil, err
	}
	lo, hi := lengths(tree)
	if lo == 0 {
		return c, nil, nil, ErrEmptyMatch
	}
	switch {
	case hi == unbounded && maxMatch == 0:
		c.window = DefaultMaxMatch
	case hi == unbounded || maxMatch != 0 && maxMatch < hi:
		c.window = maxMatch
	default:
		c.window = hi
	}
	if hi != unbounded {
		c.span = hi + utf8.UTFMax
	}
	if err := checkTemplate(c.re, to); err != nil {
		return c, nil, nil, err
	}
	c.to, c.tmpl, c.expand = to, []byte(to), strings.Contains(to, "$")

	// The pattern's leftmost match after a first character that only
	// gives its assertions their context: the lazy .*? tries the
	// positions in order, and the capture group shifts the pattern's own
	// groups by one.
	ctx := &syntax.Regexp{Op: syntax.OpConcat, Sub: []*syntax.Regexp{
		{Op: syntax.OpBeginText},
		{Op: syntax.OpAnyChar},
		{Op: syntax.OpStar, Flags: syntax.NonGreedy, Sub: []*syntax.Regexp{{Op: syntax.OpAnyChar}}},
		{Op: syntax.OpCapture, Cap: 1, Sub: []*syntax.Regexp{tree}},
	}}
	if c.ctx, err = regexp.Compile(ctx.String()); err != nil {
		return c, nil, nil, fmt.Errorf("pattern does not round-trip: %w", err)
	}
	if c.ctx.NumSubexp() != c.re.NumSubexp()+1 {
		return c, nil, nil, fmt.Errorf("pattern does not round-trip: %d groups, not %d", c.ctx.NumSubexp()-1, c.re.NumSubexp())
	}

	s := stripped(tree)
	if fwd, err = syntax.Compile(s.Simplify()); err != nil {
		return c, nil, nil, err
	}
	if rev, err = syntax.Compile(reversed(prefixes(s)).Simplify()); err != nil {
		return c, nil, nil, err
	}
	return c, fwd, rev, nil
}

// checkTemplate reports a $ reference in to that re has no group for, as
// regexp.Expand would replace it with nothing.
func checkTemplate(re *regexp.Regexp, to string) error {
	for {
		i := strings.IndexByte(to, '$')
		if i < 0 {
			return nil
		}
		to = to[i+1:]
		if strings.HasPrefix(to, "$") {
			to = to[1:]
			continue
		}
		var name string
		if strings.HasPrefix(to, "{") {
			j := strings.IndexByte(to, '}')
			if j < 0 {
				continue // not a reference: Expand copies the $
			}
			name, to = to[1:j], to[j+1:]
			if !isName(name) {
				continue // not a reference either
			}
		} else {
			j := 0
			for j < len(to) && isWord(to[j]) {
				j++
			}
			name, to = to[:j], to[j:]
		}
		if name == "" {
			continue
		}
		if n, err := strconv.Atoi(name); err == nil {
			if n <= re.NumSubexp() {
				continue
			}
		} else if re.SubexpIndex(name) >= 0 {
			continue
		}
		return fmt.Errorf("%w: $%s (write ${1}x for group 1 followed by x)", ErrTemplate, name)
	}
}

func isName(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isWord(s[i]) {
			return false
		}
	}
	return s != ""
}

// Names returns the rules' names, in the order given to Compile; Counts
// are indexed the same way.
func (r *Redactor) Names() []string {
	names := make([]string, len(r.rules))
	for i := range r.rules {
		names[i] = r.rules[i].name
	}
	return names
}
