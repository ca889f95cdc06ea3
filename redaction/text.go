package redaction

import "unsafe"

// Text returns s with every match of every rule replaced, and how many
// replacements each rule made. It returns s itself, and nil Counts, when
// no rule matches.
func (r *Redactor) Text(s string) (string, Counts) {
	out, c := r.Bytes(unsafe.Slice(unsafe.StringData(s), len(s)))
	if c == nil {
		return s, nil
	}
	return string(out), c
}

// Bytes is Text for a byte slice: it returns b itself when no rule
// matches, and a new slice otherwise. b is only read.
func (r *Redactor) Bytes(b []byte) ([]byte, Counts) {
	var sc scratch
	var c Counts
	out, changed := r.whole(nil, b, &sc, &c)
	if !changed {
		return b, nil
	}
	return out, c
}

// whole appends b, redacted as one whole text, to out, and reports
// whether any rule matched. When none did, out is returned as it was. The
// replacements are added to *counts, which is allocated (with one entry
// per rule) when it is nil and a rule may match.
func (r *Redactor) whole(out, b []byte, sc *scratch, counts *Counts) ([]byte, bool) {
	if len(r.rules) == 0 {
		return out, false
	}
	mask := r.fwd.mayMatch(b)
	if mask == 0 {
		return out, false
	}
	if *counts == nil {
		*counts = make(Counts, len(r.rules))
	}
	before := counts.Total()
	n := len(out)
	out, _ = r.replace(out, b, 0, len(b), true, mask, sc, *counts)
	if counts.Total() == before {
		return out[:n], false
	}
	return out, true
}
