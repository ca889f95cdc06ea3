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
	maxStates = 4096 // per cache; a full cache is replaced by an empty one
	maxOther  = 256  // cached non-ASCII transitions per state

	deadState  int32 = 0  // the empty set: no match can follow
	startState int32 = 1  // the start set
	giveUp     int32 = -1 // the cache is full: callers assume the worst
)

type dstate struct {
	pcs   []uint32 // rune and match instructions, sorted
	match uint64   // bits of the rules whose match instruction is in pcs
	next  [utf8.RuneSelf]atomic.Int32
	other map[rune]int32 // non-ASCII transitions; guarded by dcache.mu
}

// dfa is a lazily built automaton. Its states live in a dcache; when one
// fills up (maxStates), the next transition that needs a new state fails
// and the caller asks for a fresh, empty cache (renew) and starts over
// from a point it knows. Holders of an old cache may keep using it: it
// stays valid, only full.
type dfa struct {
	nfa        *nfa
	unanchored bool  // every position may start a match
	limit      int32 // states per cache (maxStates; less in tests)

	mu     sync.Mutex // serialises renew
	cur    atomic.Pointer[dcache]
	renews atomic.Int64
}

// dcache holds the states of a dfa seen so far. Their ids index it.
type dcache struct {
	d     *dfa
	pages [maxStates / pageSize]atomic.Pointer[[pageSize]dstate]

	mu    sync.Mutex // guards everything below and dstate.other
	n     int32
	index map[string]int32
	mark  []uint32 // per instruction: gen when visited
	gen   uint32
	stack []uint32
	set   []uint32
	key   []byte
}

func newDFA(n *nfa, unanchored bool) *dfa {
	d := &dfa{nfa: n, unanchored: unanchored, limit: maxStates}
	d.cur.Store(d.newCache())
	return d
}

// newCache returns a cache with the dead and the start state.
func (d *dfa) newCache() *dcache {
	c := &dcache{d: d, index: map[string]int32{}, mark: make([]uint32, len(d.nfa.insts))}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.intern(nil) // deadState
	c.set = c.set[:0]
	c.gen++
	c.closure(d.nfa.start)
	c.intern(c.set) // startState
	dead := c.state(deadState)
	for i := range dead.next {
		dead.next[i].Store(deadState + 1)
	}
	return c
}

// cache returns the current cache.
func (d *dfa) cache() *dcache { return d.cur.Load() }

// renew replaces c, if it is still the current cache, with an empty one,
// and returns the current cache.
func (d *dfa) renew(c *dcache) *dcache {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.cur.Load() == c {
		d.cur.Store(d.newCache())
		d.renews.Add(1)
	}
	return d.cur.Load()
}

// mayMatch returns the rules whose patterns (without assertions) match
// somewhere in p: every rule when the cache fills up twice in a row.
func (d *dfa) mayMatch(p []byte) uint64 {
	c := d.cache()
	for range 2 {
		id, acc := c.scan(startState, p)
		if id >= 0 {
			return acc
		}
		c = d.renew(c)
	}
	return ^uint64(0)
}

// state returns the state with id (0 <= id < n).
func (c *dcache) state(id int32) *dstate {
	return &c.pages[id>>pageBits].Load()[id&(pageSize-1)]
}

// slow computes (and caches when it can) a transition, or returns giveUp
// when the cache is full.
func (c *dcache) slow(id int32, r rune) int32 {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := c.state(id)
	if r < utf8.RuneSelf {
		if v := st.next[r].Load(); v != 0 {
			return v - 1
		}
	} else if v, ok := st.other[r]; ok {
		return v
	}
	c.set = c.set[:0]
	c.gen++
	for _, pc := range st.pcs {
		in := &c.d.nfa.insts[pc]
		if in.op == opRune && in.in.MatchRune(r) {
			c.closure(in.out)
		}
	}
	if c.d.unanchored {
		c.closure(c.d.nfa.start)
	}
	nid := c.intern(c.set)
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

// closure adds to c.set the rune and match instructions reachable from pc
// without consuming input. The caller has incremented c.gen.
func (c *dcache) closure(pc uint32) {
	insts := c.d.nfa.insts
	c.stack = append(c.stack[:0], pc)
	for len(c.stack) > 0 {
		pc := c.stack[len(c.stack)-1]
		c.stack = c.stack[:len(c.stack)-1]
		if c.mark[pc] == c.gen {
			continue
		}
		c.mark[pc] = c.gen
		in := &insts[pc]
		switch in.op {
		case opRune, opMatch:
			c.set = append(c.set, pc)
		case opAlt:
			c.stack = append(c.stack, in.arg, in.out)
		case opEps:
			c.stack = append(c.stack, in.out)
		}
	}
}

// intern returns the id of the state for set, creating it; giveUp when
// the cache is full.
func (c *dcache) intern(set []uint32) int32 {
	slices.Sort(set)
	c.key = c.key[:0]
	for _, pc := range set {
		c.key = binary.LittleEndian.AppendUint32(c.key, pc)
	}
	if id, ok := c.index[string(c.key)]; ok {
		return id
	}
	if c.n >= c.d.limit && c.n >= startState+1 {
		return giveUp
	}
	id := c.n
	page := c.pages[id>>pageBits].Load()
	if page == nil {
		page = new([pageSize]dstate)
		c.pages[id>>pageBits].Store(page)
	}
	st := &page[id&(pageSize-1)]
	st.pcs = slices.Clone(set)
	for _, pc := range set {
		if in := &c.d.nfa.insts[pc]; in.op == opMatch {
			st.match |= 1 << in.bit
		}
	}
	c.index[string(c.key)] = id
	c.n++
	return id
}

// scan runs the automaton over p from state id. It returns the state
// after p and the union of the match masks of the states it entered, or
// (giveUp, every bit) when the cache is full.
func (c *dcache) scan(id int32, p []byte) (int32, uint64) {
	var acc uint64
	st := c.state(id)
	for i := 0; i < len(p); {
		var nid int32
		nid, i = c.step(id, st, p, i)
		if nid < 0 {
			return giveUp, ^uint64(0)
		}
		id = nid
		st = c.state(id)
		acc |= st.match
	}
	return id, acc
}

// step returns the state after the character of p at i from state id
// (st), and the index after that character; the state is negative when
// the cache is full.
func (c *dcache) step(id int32, st *dstate, p []byte, i int) (int32, int) {
	if b := p[i]; b < utf8.RuneSelf {
		if v := st.next[b].Load(); v != 0 {
			return v - 1, i + 1
		}
		return c.slow(id, rune(b)), i + 1
	}
	r, size := utf8.DecodeRune(p[i:])
	return c.slow(id, r), i + size
}

// firstAccept runs the automaton over p from the start state and returns
// the length of the shortest prefix of p after which it is in a state
// with a bit of mask, or -1; ok is false when the cache is full.
func (c *dcache) firstAccept(p []byte, mask uint64) (n int, ok bool) {
	id := startState
	st := c.state(id)
	for i := 0; i < len(p); {
		var nid int32
		nid, i = c.step(id, st, p, i)
		if nid < 0 {
			return 0, false
		}
		id = nid
		st = c.state(id)
		if st.match&mask != 0 {
			return i, true
		}
	}
	return -1, true
}
