package redaction

import "unicode/utf8"

// Mode is how a stream treats a match split across chunks.
type Mode uint8

const (
	// AcrossChunks, the zero value, catches matches split across chunks:
	// it holds back the end of a chunk while it could still be the start
	// of a match — and only that — and sends it with the next chunk or at
	// Flush. The concatenated output equals Text of the concatenated
	// input whenever every match fits in its rule's MaxMatch.
	AcrossChunks Mode = iota
	// PerChunk redacts each chunk on its own, as a whole text, and holds
	// nothing back: a match split across chunks is not seen.
	PerChunk
)

// String returns "across_chunks" or "per_chunk".
func (m Mode) String() string {
	if m == PerChunk {
		return "per_chunk"
	}
	return "across_chunks"
}

// Stream redacts one text that arrives in chunks, such as the content of
// one streamed answer. Feed each chunk, then Flush at the end of the text.
// A Stream is not safe for concurrent use; create one per stream with
// Redactor.NewStream (the zero value is not usable).
type Stream struct {
	c      core
	counts Counts
}

// NewStream returns a Stream of the given mode.
func (r *Redactor) NewStream(m Mode) *Stream {
	s := &Stream{counts: make(Counts, len(r.rules))}
	s.c.init(r, m, s.counts)
	return s
}

// Feed takes the next chunk of the text and returns the text to send now:
// when nothing was held back and nothing in the chunk is replaced, the
// chunk itself or the part of it before what is held back (the caller's
// memory, not copied); otherwise a slice of the Stream's own buffer, valid
// until the next call.
func (s *Stream) Feed(chunk []byte) []byte { return s.c.feed(chunk) }

// Flush ends the text and returns what was held back, redacted (valid
// until the next call). The next Feed starts a new text.
func (s *Stream) Flush() []byte { return s.c.flush() }

// Pending returns the number of bytes held back.
func (s *Stream) Pending() int { return len(s.c.buf) - s.c.off }

// Counts returns the replacements made so far, per rule (a copy).
func (s *Stream) Counts() Counts { return append(Counts(nil), s.counts...) }

// core is the redaction state of one text in a stream. Text not yet sent
// is held in buf, after one byte of context (the last byte sent) once
// anything has been sent: assertions such as \b and validators read it.
type core struct {
	r       *Redactor
	split   bool
	buf     []byte
	off     int     // 1 when buf[0] is context, 0 at the start of the text
	scanned int     // the forward automaton has read buf[off:scanned]
	fc      *dcache // in this cache
	fwd     int32   // its state there (giveUp: unknown)
	acc     uint64  // rules that may match in buf[off:scanned]
	out     []byte
	sc      scratch
	counts  Counts
}

func (c *core) init(r *Redactor, m Mode, counts Counts) {
	*c = core{r: r, split: m == AcrossChunks, fc: r.fwd.cache(), fwd: startState, counts: counts}
}

// feed redacts the next chunk; see Stream.Feed.
func (c *core) feed(p []byte) []byte {
	r := c.r
	if len(r.rules) == 0 {
		return p
	}
	if !c.split {
		out, changed := r.whole(c.out[:0], p, &c.sc, &c.counts)
		if !changed {
			return p
		}
		c.out = out
		return out
	}
	if len(c.buf) == c.off && c.fwd == startState {
		// Nothing held: p alone decides. The common case is a chunk no
		// rule can match in, sent at once but for a tail that could
		// begin a match, without copying it.
		e := completeEnd(p, 0)
		fc := r.fwd.cache()
		id, acc := fc.scan(startState, p[:e])
		if acc == 0 && id >= 0 {
			h := r.holdStart(p[:e], 0)
			switch {
			case h == len(p):
				if len(p) > 0 {
					c.buf, c.off = append(c.buf[:0], p[len(p)-1]), 1
				}
			case h > 0:
				c.buf = append(append(c.buf[:0], p[h-1]), p[h:]...)
				c.off = 1
			default:
				c.buf = append(c.buf, p...)
			}
			c.fc, c.fwd, c.scanned = fc, id, c.off+e-h
			return p[:h]
		}
	}
	c.buf = append(c.buf, p...)
	e := completeEnd(c.buf, c.off)
	c.scan(e)
	return c.emit(r.holdStart(c.buf[:e], c.off))
}

// completeEnd returns len(b) or, when b ends with the first bytes of a
// UTF-8 sequence that more bytes could complete, where they start (not
// before from). Those bytes cannot be decoded yet.
func completeEnd(b []byte, from int) int {
	n := len(b)
	for i := n - 1; i >= from && i > n-utf8.UTFMax; i-- {
		if b[i] < utf8.RuneSelf {
			return n
		}
		if utf8.RuneStart(b[i]) {
			if utf8.FullRune(b[i:]) {
				return n
			}
			return i
		}
	}
	return n
}

// scan runs the forward automaton up to buf[:end].
func (c *core) scan(end int) {
	if end <= c.scanned {
		return
	}
	if c.fwd >= 0 {
		id, acc := c.fc.scan(c.fwd, c.buf[c.scanned:end])
		if id < 0 {
			// The cache filled up: start again on a fresh one, from
			// the start of what is held (the automaton's threads from
			// before it have all died).
			c.fc = c.r.fwd.renew(c.fc)
			id, acc = c.fc.scan(startState, c.buf[c.off:end])
		}
		c.fwd, c.acc = id, c.acc|acc
	}
	c.scanned = end
}

// flush ends the text; see Stream.Flush.
func (c *core) flush() []byte {
	if !c.split || len(c.buf) == c.off {
		c.reset()
		return nil
	}
	c.scan(len(c.buf))
	out := c.emit(len(c.buf))
	c.reset()
	return out
}

func (c *core) reset() {
	c.buf, c.off, c.scanned, c.fwd, c.acc = c.buf[:0], 0, 0, startState, 0
	c.fc = c.r.fwd.cache()
}

// emit redacts and returns buf[off:h] — and, when a match that starts
// before h runs past it, up to the match's end — keeping the rest and one
// byte of context.
func (c *core) emit(h int) []byte {
	c.out = c.out[:0]
	pos := h
	matched := c.acc != 0 || c.fwd < 0
	if matched {
		mask := c.acc
		if c.fwd < 0 {
			mask = ^uint64(0)
		}
		c.out, pos = c.r.replace(c.out, c.buf, c.off, h, c.off == 0, mask, &c.sc, c.counts)
	} else {
		c.out = append(c.out, c.buf[c.off:h]...)
	}
	if pos > c.off {
		n := copy(c.buf, c.buf[pos-1:])
		c.buf, c.off = c.buf[:n], 1
		c.scanned = max(c.off, c.scanned-(pos-1))
	}
	if matched {
		// Matches were settled: what may match now is only in what is
		// held.
		end := c.scanned
		c.fc, c.fwd, c.acc, c.scanned = c.r.fwd.cache(), startState, 0, c.off
		c.scan(end)
	}
	return c.out
}
