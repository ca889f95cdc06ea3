package redaction

// Counts holds how many replacements each rule made, indexed like the
// rules given to Compile (Redactor.Names gives their names). It never
// holds what was matched. A nil Counts means none; a Counts may be shorter
// than the rule list when the last rules made none.
type Counts []int

// Add returns c with o added to it, growing c as needed (c may be nil).
func (c Counts) Add(o Counts) Counts {
	if len(c) < len(o) {
		c = append(c, make(Counts, len(o)-len(c))...)
	}
	for i, n := range o {
		c[i] += n
	}
	return c
}

// Total returns the number of replacements of all rules.
func (c Counts) Total() int {
	n := 0
	for _, v := range c {
		n += v
	}
	return n
}

// Get returns rule i's count, 0 beyond the end of c.
func (c Counts) Get(i int) int {
	if i < 0 || i >= len(c) {
		return 0
	}
	return c[i]
}
