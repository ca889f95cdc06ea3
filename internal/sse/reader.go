package sse

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
)

// DefaultMaxEventBytes is the event size cap, in bytes of Event.Raw, that
// [NewReader] uses when it is given a limit <= 0: 8 MiB.
const DefaultMaxEventBytes = 8 << 20

// ErrEventTooLarge is returned, wrapped together with the limit, by
// [Reader.Next] when one event block is larger than the Reader's maximum. Match
// it with errors.Is.
var ErrEventTooLarge = errors.New("sse: event too large")

const (
	initialBufSize = 512 // first buffer allocation, in bytes (most events are a few hundred bytes; the buffer doubles as needed)
	maxEmptyReads  = 100 // consecutive (0, nil) reads before io.ErrNoProgress, as bufio does
	notFound       = math.MaxInt
)

// utf8BOM is skipped when it starts a stream, as the WHATWG parser does.
var utf8BOM = []byte{0xEF, 0xBB, 0xBF}

// Line terminator kinds, remembered for the last line of the current block.
const (
	eolNone byte = iota
	eolLF
	eolCR
	eolCRLF
)

// Event is one SSE event block. Its slices alias the Reader's buffers and are
// valid only until the next call to [Reader.Next] or [Reader.Reset]; copy them
// to keep them. Appending to a slice never overwrites the Reader's buffer (each
// slice's capacity ends where its bytes do).
//
// The zero Event has no fields and no bytes.
type Event struct {
	// Name is the value of the last "event:" field, nil if the block has none.
	// An "event:" field with an empty value gives an empty, non-nil Name
	// (which a browser would dispatch as "message").
	Name []byte
	// Data is the values of all "data:" fields joined with "\n", nil if the
	// block has no data field. A data field with an empty value gives an
	// empty, non-nil Data.
	Data []byte
	// ID is the value of the last "id:" field, nil if the block has none. As
	// in the WHATWG parser, an id field whose value contains a NUL byte is
	// ignored.
	ID []byte
	// Raw is the block's bytes exactly as read, from its first line through
	// its terminating blank line. Blank lines between blocks, a leading UTF-8
	// BOM and the LF that may follow a block ending in CR belong to no Raw.
	// Only the final event of a stream that ends without a blank line differs
	// from the input: see [Reader.Next].
	Raw []byte

	// fields reports that the block had an event, data, id or retry field.
	fields bool
}

// IsComment reports whether the block had no event, data, id or retry field:
// only ":" comment lines (keep-alives) or fields a client ignores. Such blocks
// dispatch nothing in a browser but are still returned so a proxy can forward
// them. The zero Event reports true.
func (e *Event) IsComment() bool {
	return !e.fields && e.Name == nil && e.Data == nil && e.ID == nil
}

// Reader splits a text/event-stream into event blocks. It handles LF, CR and
// CRLF line endings in any mix and enforces a per-event size cap. Memory is
// proportional to the largest event: one buffer that starts at 4 KiB and
// doubles up to the cap, plus a scratch buffer for events with several data
// lines. In the steady state Next does not allocate.
//
// Create a Reader with [NewReader]. A zero Reader is usable after
// [Reader.Reset] and then has the default cap. A Reader is not safe for
// concurrent use.
type Reader struct {
	src io.Reader
	max int // cap on len(Event.Raw), in bytes

	// buf[start:end] has been read and not yet returned in an event.
	// buf[start:scan] holds the complete lines of the current block; scan is
	// always at the start of a line (or just after a CR whose LF may follow).
	buf              []byte
	start, scan, end int

	// Caches that keep line search linear however bytes arrive: lfPos (crPos)
	// is the index of the next LF (CR) when scan <= lfPos < notFound; no LF
	// (CR) occurs in buf[scan:lfSeen] (buf[scan:crSeen]), and none at all in
	// buf[scan:end] if lfPos == notFound and lfSeen == end.
	lfPos, lfSeen int
	crPos, crSeen int

	afterCR bool // the byte before scan ended a line with CR; an LF next belongs to it
	bom     bool // at stream start: a UTF-8 BOM may still be skipped

	// The current block, as offsets relative to start (so they survive
	// compaction and growth of buf).
	lastEOL          byte
	fields           bool
	hasName, hasID   bool
	nameOff, nameLen int
	idOff, idLen     int
	dataOff, dataLen int
	dataLines        int
	scratch          []byte // Data joined from several data lines
	readErr, err     error  // first error from src, not yet reported; sticky error of Next
}

// NewReader returns a Reader over r whose events may be at most maxEventBytes
// long (counting Event.Raw); maxEventBytes <= 0 means [DefaultMaxEventBytes].
// The buffer is allocated on the first read.
func NewReader(r io.Reader, maxEventBytes int) *Reader {
	rd := &Reader{max: maxEventBytes}
	rd.Reset(r)
	return rd
}

// Reset discards all state, including a sticky error, and makes the Reader
// read a new stream from src. It keeps the buffers and the size cap, so a
// pooled Reader does not allocate again for events no larger than before.
// Events returned earlier become invalid.
func (r *Reader) Reset(src io.Reader) {
	if r.max <= 0 {
		r.max = DefaultMaxEventBytes
	}
	r.src = src
	r.start, r.scan, r.end = 0, 0, 0
	r.lfPos, r.lfSeen, r.crPos, r.crSeen = notFound, 0, notFound, 0
	r.afterCR = false
	r.bom = true
	r.readErr, r.err = nil, nil
	r.resetBlock()
}

// Buffered returns the number of bytes already read from the underlying
// reader and not yet returned in an event. Blank lines that follow a returned
// event are skipped eagerly, so they are not counted. A positive count does
// not mean the next call to Next can return without reading: the bytes may be
// the first part of an event.
func (r *Reader) Buffered() int { return r.end - r.start }

// Ready reports whether the buffered bytes already hold the end of a block
// (a blank line), so that the next call to Next will most likely return
// without waiting for the underlying reader. A proxy flushes what it has
// written when Ready is false: the next read may block. Ready costs a scan
// of the buffered bytes and does not allocate.
func (r *Reader) Ready() bool {
	if r.err != nil || r.readErr != nil {
		return true
	}
	b := r.buf[r.start:r.end]
	lineStart := true
	for i := 0; i < len(b); i++ {
		c := b[i]
		if c != '\n' && c != '\r' {
			lineStart = false
			continue
		}
		if lineStart && i > 0 {
			return true
		}
		if c == '\r' && i+1 < len(b) && b[i+1] == '\n' {
			i++
		}
		lineStart = true
	}
	return false
}

// Next returns the next event block. Blocks with only comments are returned
// too (see [Event.IsComment]); empty blocks are skipped. A block is returned as
// soon as its terminating blank line has been read, without another read of
// the underlying reader, with one exception: when the blank line is a CR that
// is the last byte read and the line before it ended in CRLF, Next reads once
// more to keep the LF of that CRLF in Raw. A CR-terminated block is otherwise
// returned at once, and a single LF that follows it is skipped.
//
// At the end of the stream, a pending block that has an event, data, id or
// retry field is returned as a final event although its blank line is
// missing; its Raw is completed with "\n" if its bytes end in LF and with
// "\n\n" otherwise, so that Raw is always a terminated block. A pending block
// without such a field (comments only, or nothing) is dropped. After that,
// Next returns io.EOF.
//
// An error from the underlying reader other than io.EOF is returned as is,
// after the complete events read before it. A block longer than the cap
// gives an error that wraps [ErrEventTooLarge]. Errors are sticky: later calls
// return the same error until [Reader.Reset].
func (r *Reader) Next() (Event, error) {
	if r.err != nil {
		return Event{}, r.err
	}
	for {
		if ev, ok := r.scanBlock(false); ok {
			return ev, nil
		}
		if r.readErr != nil {
			return r.finish()
		}
		if err := r.fill(); err != nil {
			r.err = err
			return Event{}, err
		}
	}
}

// finish handles the end of the input (or a read error): a complete block
// that was waiting for one more byte, then the unterminated tail.
func (r *Reader) finish() (Event, error) {
	if ev, ok := r.scanBlock(true); ok {
		return ev, nil
	}
	if r.readErr != io.EOF {
		r.err = r.readErr
		return Event{}, r.err
	}
	r.err = io.EOF
	if r.scan < r.end { // an unterminated last line
		r.field(r.buf[r.scan:r.end], r.scan-r.start)
		r.scan = r.end
	}
	if !r.fields {
		r.start, r.scan = r.end, r.end
		r.resetBlock()
		return Event{}, io.EOF
	}
	suffix := "\n\n"
	if r.buf[r.end-1] == '\n' {
		suffix = "\n"
	}
	if r.end-r.start+len(suffix) > r.max {
		r.err = r.tooLarge()
		return Event{}, r.err
	}
	if len(r.buf)-r.end < len(suffix) {
		r.makeRoom()
	}
	r.end += copy(r.buf[r.end:], suffix)
	r.scan = r.end
	return r.emit(r.end), nil // r.err is io.EOF: the next call reports the end
}

func (r *Reader) tooLarge() error {
	return fmt.Errorf("%w (limit %d bytes)", ErrEventTooLarge, r.max)
}

// scanBlock parses the complete lines in buf[scan:end] and returns the
// current block once its blank line is found. final means no more bytes will
// arrive, so a CR at the end of the buffer cannot be followed by an LF.
func (r *Reader) scanBlock(final bool) (Event, bool) {
	if r.bom {
		avail := r.buf[r.start:r.end]
		if len(avail) < len(utf8BOM) && bytes.HasPrefix(utf8BOM, avail) && !final {
			return Event{}, false
		}
		r.bom = false
		if bytes.HasPrefix(avail, utf8BOM) {
			r.start += len(utf8BOM)
			r.scan = r.start
		}
	}
	if r.scan == r.start {
		r.skipBlankLines()
	}
	for {
		if r.afterCR { // only inside a block: skipBlankLines handles block starts
			if r.scan == r.end {
				return Event{}, false
			}
			r.afterCR = false
			if r.buf[r.scan] == '\n' {
				r.scan++
				r.lastEOL = eolCRLF
			}
		}
		eol := r.findEOL()
		if eol < 0 {
			return Event{}, false
		}
		lineStart, next, kind := r.scan, eol+1, eolLF
		if r.buf[eol] == '\r' {
			kind = eolCR
			switch {
			case next < r.end:
				if r.buf[next] == '\n' {
					next++
					kind = eolCRLF
				}
			case eol == lineStart && r.lastEOL == eolCRLF && !final && r.end-r.start < r.max:
				// The blank line of a CRLF stream, split between its CR and
				// LF: wait for the LF so that Raw keeps it.
				return Event{}, false
			default:
				r.afterCR = true
			}
		}
		r.scan = next
		if eol == lineStart { // blank line: the block is complete
			return r.emit(next), true
		}
		r.lastEOL = kind
		r.field(r.buf[lineStart:eol], lineStart-r.start)
	}
}

// skipBlankLines drops the blank lines (and the LF of a CRLF whose CR ended
// the previous block) at the start of a block. Any run of CR and LF bytes
// there is only blank lines.
func (r *Reader) skipBlankLines() {
	for r.start < r.end {
		c := r.buf[r.start]
		if c != '\n' && c != '\r' {
			break
		}
		r.afterCR = c == '\r'
		r.start++
	}
	r.scan = r.start
}

// findEOL returns the index of the first CR or LF in buf[scan:end], or -1.
func (r *Reader) findEOL() int {
	lf, cr := r.lfPos, r.crPos
	if lf < r.scan || (lf == notFound && r.lfSeen < r.end) {
		lf = r.search('\n', &r.lfPos, &r.lfSeen)
	}
	if cr < r.scan || (cr == notFound && r.crSeen < r.end) {
		cr = r.search('\r', &r.crPos, &r.crSeen)
	}
	if eol := min(lf, cr); eol != notFound {
		return eol
	}
	return -1
}

// search finds the next c at or after scan, skipping the bytes known not to
// hold one, and caches the answer in pos (notFound if none) and seen.
func (r *Reader) search(c byte, pos, seen *int) int {
	from := max(r.scan, *seen)
	*seen = r.end
	*pos = notFound
	if i := bytes.IndexByte(r.buf[from:r.end], c); i >= 0 {
		*pos = from + i
		*seen = *pos
	}
	return *pos
}

// field interprets one non-blank line that starts off bytes into the block.
func (r *Reader) field(line []byte, off int) {
	if line[0] == ':' {
		return // comment
	}
	name, value, voff := line, line[len(line):], off+len(line)
	if i := bytes.IndexByte(line, ':'); i >= 0 {
		name = line[:i]
		v := i + 1
		if v < len(line) && line[v] == ' ' {
			v++
		}
		value, voff = line[v:], off+v
	}
	switch string(name) {
	case "data":
		r.fields = true
		switch r.dataLines {
		case 0:
			r.dataOff, r.dataLen = voff, len(value)
		case 1:
			first := r.buf[r.start+r.dataOff : r.start+r.dataOff+r.dataLen]
			r.scratch = append(r.scratch[:0], first...)
			fallthrough
		default:
			r.scratch = append(r.scratch, '\n')
			r.scratch = append(r.scratch, value...)
		}
		r.dataLines++
	case "event":
		r.fields = true
		r.hasName, r.nameOff, r.nameLen = true, voff, len(value)
	case "id":
		r.fields = true
		if bytes.IndexByte(value, 0) < 0 {
			r.hasID, r.idOff, r.idLen = true, voff, len(value)
		}
	case "retry":
		r.fields = true
	}
}

// emit returns the block buf[start:blockEnd] as an event and starts the next.
func (r *Reader) emit(blockEnd int) Event {
	s := r.start
	ev := Event{Raw: r.buf[s:blockEnd:blockEnd], fields: r.fields}
	if r.hasName {
		a, b := s+r.nameOff, s+r.nameOff+r.nameLen
		ev.Name = r.buf[a:b:b]
	}
	if r.hasID {
		a, b := s+r.idOff, s+r.idOff+r.idLen
		ev.ID = r.buf[a:b:b]
	}
	switch {
	case r.dataLines == 1:
		a, b := s+r.dataOff, s+r.dataOff+r.dataLen
		ev.Data = r.buf[a:b:b]
	case r.dataLines > 1:
		ev.Data = r.scratch[:len(r.scratch):len(r.scratch)]
	}
	r.start, r.scan = blockEnd, blockEnd
	r.resetBlock()
	r.skipBlankLines()
	return ev
}

func (r *Reader) resetBlock() {
	r.lastEOL = eolNone
	r.fields, r.hasName, r.hasID = false, false, false
	r.dataLines = 0
}

// fill reads more bytes into buf, making room first when little is free. A
// read error is kept in readErr for Next to report after the events already
// buffered.
func (r *Reader) fill() error {
	if r.end-r.start >= r.max {
		// The pending block is incomplete and already at the cap.
		return r.tooLarge()
	}
	if len(r.buf)-r.end < len(r.buf)/4+1 {
		r.makeRoom()
	}
	for range maxEmptyReads {
		n, err := r.src.Read(r.buf[r.end:])
		if n < 0 || n > len(r.buf)-r.end {
			return fmt.Errorf("sse: invalid Read count %d from %T", n, r.src)
		}
		r.end += n
		if err != nil {
			r.readErr = err
			return nil
		}
		if n > 0 {
			return nil
		}
	}
	r.readErr = io.ErrNoProgress
	return nil
}

// makeRoom compacts or grows buf so that bytes can be read after end. It
// moves the pending bytes only when that frees at least half the buffer, so
// the copying stays linear in the event size.
func (r *Reader) makeRoom() {
	pending := r.end - r.start
	switch {
	case r.buf == nil:
		r.buf = make([]byte, min(initialBufSize, r.max))
	case r.start > 0 && pending <= len(r.buf)/2:
		r.shift(r.buf)
	case len(r.buf) < r.max:
		r.shift(make([]byte, min(2*len(r.buf), r.max)))
	case r.start > 0:
		r.shift(r.buf)
	}
}

// shift moves buf[start:end] to the beginning of dst and makes dst the buffer.
func (r *Reader) shift(dst []byte) {
	copy(dst, r.buf[r.start:r.end])
	d := r.start
	r.buf = dst
	r.start -= d
	r.scan -= d
	r.end -= d
	r.lfSeen -= d
	r.crSeen -= d
	if r.lfPos != notFound {
		r.lfPos -= d
	}
	if r.crPos != notFound {
		r.crPos -= d
	}
}
