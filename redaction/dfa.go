package redaction

import (
	"encoding/binary"
	"regexp/syntax"
	"slices"
	"sync"
	"sync/atomic"
	"unicode/utf8"
)

// The automata here answer, fast and for every rule at once, the two
// questions the hot path asks of each piece of text: "could a rule match
// anywhere in it?" (a forward, unanchored automaton over the rules'
// patterns with their assertions removed) and "where does the shortest
// suffix start that could still begin a match?" (an anchored automaton
// over the reversed prefixes of those patterns, run backwards from the
// end). Both only over-approximate: a yes is confirmed by the rule's
// regexp, which alone decides what a match is.
//
// Each is a lazily built DFA over the runes of the text, whose states are
// sets of instructions of one NFA merged from every rule's program. States
// and their ASCII transitions are cached, shared by every stream of a
// Redactor, and safe for concurrent use: a transition is an atomic load,
// and only a transition never taken before takes the lock.

// nfa instruction kinds.
const (
	opFail uint8 = iota
	opRune
	opAlt
	opEps
	opMatch
)

type ninst struct {
	op  uint8
	bit uint8  // opMatch: the rule's bit in match masks
	out uint32 // next instruction
	arg uint32 // opAlt: the other branch
	in  *syntax.Inst
}

// nfa is the rules' programs merged into one: start tries each in turn.
type nfa struct {
	insts []ninst
	start uint32
}

// newNFA merges progs; a match of progs[i] sets bit bits[i].
func newNFA(progs []*syntax.Prog, bits []uint8) *nfa {
	n := &nfa{}
	starts := make([]uint32, len(progs))
	for i, p := range progs {
		base := uint32(len(n.insts))
		starts[i] = base + uint32(p.Start)
		for j := range p.Inst {
			in := &p.Inst[j]
			ni := ninst{out: base + in.Out, arg: base + in.Arg}
			switch in.Op {
			case syntax.InstAlt, syntax.InstAltMatch:
				ni.op = opAlt
			case syntax.InstCapture, syntax.InstNop, syntax.InstEmptyWidth:
				ni.op = opEps // assertions were removed; treat any left as true
			case syntax.InstMatch:
				ni.op, ni.bit = opMatch, bits[i]
			case syntax.InstRune, syntax.InstRune1, syntax.InstRuneAny, syntax.InstRuneAnyNotNL:
				ni.op, ni.in = opRune, in
			default:
				ni.op = opFail
			}
			n.insts = append(n.insts, ni)
		}
	}
	if len(starts) == 0 {
		n.insts = append(n.insts, ninst{op: opFail})
		return n
	}
	n.start = starts[len(starts)-1]
	for i := len(starts) - 2; i >= 0; i-- {
		n.insts = append(n.insts, ninst{op: opAlt, out: starts[i], arg: n.start})
		n.start = uint32(len(n.insts) - 1)
	}
	return n
}

const (
	pageBits  = 6
	pageSize  = 1 << pageBits
	maxStates = 4096 // per automaton; beyond it, transitions are not cached
	maxOther  = 256  // cached non-ASCII transitions per state

	deadState  int32 = 0  // the empty set: no match can follow
	startState int32 = 1  // the start set
	giveUp     int32 = -1 // the cache is full: callers assume the worst
)

type dstate struct {
	pcs   []uint32 // rune and match instructions, sorted
	match uint64   // bits of the rules whose match instruction is in pcs
	next  [utf8.RuneSelf]atomic.Int32
	other map[rune]int32 // non-ASCII transitions; guarded by dfa.mu
}

type dfa struct {
	nfa        *nfa
	unanchored bool // every position may start a match

	pages [maxStates / pageSize]atomic.Pointer[[pageSize]dstate]

	mu    sync.Mutex // guards everything below and dstate.other
	limit int32      // states cached at most (maxStates; less in tests)
	n     int32
	index map[string]int32
	mark  []uint32 // per instruction: gen when visited
	gen   uint32
	stack []uint32
	set   []uint32
	key   []byte
}

func newDFA(n *nfa, unanchored bool) *dfa {
	d := &dfa{nfa: n, unanchored: unanchored, limit: maxStates, index: map[string]int32{}, mark: make([]uint32, len(n.insts))}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.intern(nil) // deadState
	d.set = d.set[:0]
	d.gen++
	d.closure(n.start)
	d.intern(d.set) // startState
	dead := d.state(deadState)
	for c := range dead.next {
		dead.next[c].Store(deadState + 1)
	}
	return d
}

// state returns the state with id (0 <= id < n).
func (d *dfa) state(id int32) *dstate {
	return &d.pages[id>>pageBits].Load()[id&(pageSize-1)]
}

// next returns the state after r from state id, or giveUp.
func (d *dfa) next(id int32, r rune) int32 {
	if r < utf8.RuneSelf {
		if v := d.state(id).next[r].Load(); v != 0 {
			return v - 1
		}
	}
	return d.slow(id, r)
}

// slow computes (and caches when it can) a transition.
func (d *dfa) slow(id int32, r rune) int32 {
	d.mu.Lock()
	defer d.mu.Unlock()
	st := d.state(id)
	if r < utf8.RuneSelf {
		if v := st.next[r].Load(); v != 0 {
			return v - 1
		}
	} else if v, ok := st.other[r]; ok {
		return v
	}
	d.set = d.set[:0]
	d.gen++
	for _, pc := range st.pcs {
		in := &d.nfa.insts[pc]
		if in.op == opRune && in.in.MatchRune(r) {
			d.closure(in.out)
		}
	}
	if d.unanchored {
		d.closure(d.nfa.start)
	}
	nid := d.intern(d.set)
	if nid < 0 {
		return giveUp
	}
	if r < utf8.RuneSelf {
		st.next[r].Store(nid + 1)
	} else if len(st.other) < maxOther {
		if st.other == nil {
			st.other = map[rune]int32{}
		}
		st.other[r] = nid
	}
	return nid
}

// closure adds to d.set the rune and match instructions reachable from pc
// without consuming input. The caller has incremented d.gen.
func (d *dfa) closure(pc uint32) {
	d.stack = append(d.stack[:0], pc)
	for len(d.stack) > 0 {
		pc := d.stack[len(d.stack)-1]
		d.stack = d.stack[:len(d.stack)-1]
		if d.mark[pc] == d.gen {
			continue
		}
		d.mark[pc] = d.gen
		in := &d.nfa.insts[pc]
		switch in.op {
		case opRune, opMatch:
			d.set = append(d.set, pc)
		case opAlt:
			d.stack = append(d.stack, in.arg, in.out)
		case opEps:
			d.stack = append(d.stack, in.out)
		}
	}
}

// intern returns the id of the state for set, creating it; giveUp when
// the cache is full.
func (d *dfa) intern(set []uint32) int32 {
	slices.Sort(set)
	d.key = d.key[:0]
	for _, pc := range set {
		d.key = binary.LittleEndian.AppendUint32(d.key, pc)
	}
	if id, ok := d.index[string(d.key)]; ok {
		return id
	}
	if d.n >= d.limit {
		return giveUp
	}
	id := d.n
	page := d.pages[id>>pageBits].Load()
	if page == nil {
		page = new([pageSize]dstate)
		d.pages[id>>pageBits].Store(page)
	}
	st := &page[id&(pageSize-1)]
	st.pcs = slices.Clone(set)
	for _, pc := range set {
		if in := &d.nfa.insts[pc]; in.op == opMatch {
			st.match |= 1 << in.bit
		}
	}
	d.index[string(d.key)] = id
	d.n++
	return id
}

// scan runs the automaton over p from state id. It returns the state
// after p and the union of the match masks of the states it entered, or
// (giveUp, every bit) when the cache is full.
func (d *dfa) scan(id int32, p []byte) (int32, uint64) {
	var acc uint64
	st := d.state(id)
	for i := 0; i < len(p); {
		var nid int32
		if c := p[i]; c < utf8.RuneSelf {
			if v := st.next[c].Load(); v != 0 {
				nid = v - 1
			} else {
				nid = d.slow(id, rune(c))
			}
			i++
		} else {
			r, size := utf8.DecodeRune(p[i:])
			nid = d.slow(id, r)
			i += size
		}
		if nid < 0 {
			return giveUp, ^uint64(0)
		}
		id = nid
		st = d.state(id)
		acc |= st.match
	}
	return id, acc
}
