package metrics

import (
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Kind tells model series from key series. The zero Kind is KindModel.
type Kind uint8

const (
	// KindModel is the kind of a (provider, model) series.
	KindModel Kind = iota
	// KindKey is the kind of a (provider, key ID) series.
	KindKey
	numKinds
)

// String returns "model" or "key".
func (k Kind) String() string {
	switch k {
	case KindModel:
		return "model"
	case KindKey:
		return "key"
	}
	return "Kind(" + strconv.Itoa(int(k)) + ")"
}

// overflowName is the name label of the overflow series of each kind; its
// provider label is empty.
const overflowName = "_other"

// labelBuf is the size of the stack buffers labels are folded into on
// lookup; longer labels are folded on the heap.
const labelBuf = 128

// table indexes the series of one kind by folded provider, then folded name.
// A published table is never modified: a new series publishes a copy.
type table map[string]map[string]*Series

// Recorder holds the live metrics of the gateway's upstream traffic: one
// [Series] per (provider, model) and per (provider, key ID). Create it with
// [NewRecorder]; the zero Recorder is not usable. A nil *Recorder hands out
// nil series, which record nothing. All methods are safe for concurrent
// use. A Recorder starts no goroutine and needs no closing.
type Recorder struct {
	geo     geometry
	refresh time.Duration
	max     int
	now     func() time.Time

	tables   [numKinds]atomic.Pointer[table]
	full     [numKinds]atomic.Bool // the kind reached max; misses overflow
	overflow [numKinds]*Series

	mu    sync.Mutex // serialises series creation
	count [numKinds]int
	all   []*Series // creation order; append only
}

// Refresh returns how long a Series' cached Stats may be reused: readers
// that derive values from Stats may cache them as long. Zero for a nil
// Recorder.
func (r *Recorder) Refresh() time.Duration {
	if r == nil {
		return 0
	}
	return r.refresh
}

// Now reads the recorder's clock.
func (r *Recorder) Now() time.Time {
	if r == nil {
		return time.Now()
	}
	return r.now()
}

// NewRecorder returns a recorder configured by o. It reports every problem
// with o at once, each wrapping [ErrInvalidOptions].
func NewRecorder(o Options) (*Recorder, error) {
	o, err := o.withDefaults()
	if err != nil {
		return nil, err
	}
	r := &Recorder{
		geo:     newGeometry(o.Window, o.Buckets),
		refresh: o.Refresh,
		max:     o.MaxSeries,
		now:     o.Now,
	}
	for k := range numKinds {
		r.tables[k].Store(&table{})
		r.overflow[k] = &Series{r: r, kind: k, name: overflowName}
	}
	return r, nil
}

// Model returns the series of a provider's model, creating it on first use.
// Labels are matched ASCII case-insensitively. A lookup of an existing
// series takes no lock and does not allocate (for labels up to 128 bytes).
// Once [Options.MaxSeries] model series exist, new labels get the model
// overflow series. Model on a nil Recorder returns nil.
func (r *Recorder) Model(provider, model string) *Series {
	return r.lookup(KindModel, provider, model)
}

// Key returns the series of a provider's API key, identified by an ID that
// is not the secret; otherwise like [Recorder.Model], with its own
// MaxSeries bound and overflow series.
func (r *Recorder) Key(provider, keyID string) *Series {
	return r.lookup(KindKey, provider, keyID)
}

func (r *Recorder) lookup(k Kind, provider, name string) *Series {
	if r == nil {
		return nil
	}
	var pb, nb [labelBuf]byte
	p, n := appendLower(pb[:0], provider), appendLower(nb[:0], name)
	if s, ok := (*r.tables[k].Load())[string(p)][string(n)]; ok {
		return s
	}
	if r.full[k].Load() {
		// The table read above may predate the last series: look again.
		// Once the kind is full no series is added, and the table that
		// holds the last one was stored before full was set.
		if s, ok := (*r.tables[k].Load())[string(p)][string(n)]; ok {
			return s
		}
		return r.overflow[k]
	}
	return r.create(k, string(p), string(n))
}

// create adds the series of folded labels p and n, or returns the overflow
// series when the kind is full.
func (r *Recorder) create(k Kind, p, n string) *Series {
	r.mu.Lock()
	defer r.mu.Unlock()
	old := *r.tables[k].Load()
	if s, ok := old[p][n]; ok {
		return s
	}
	if r.count[k] >= r.max {
		if !r.full[k].Load() {
			r.all = append(r.all, r.overflow[k])
			r.full[k].Store(true)
		}
		return r.overflow[k]
	}
	s := &Series{r: r, kind: k, provider: p, name: n}
	t := make(table, len(old)+1)
	for prov, names := range old {
		t[prov] = names
	}
	names := make(map[string]*Series, len(old[p])+1)
	for name, s := range old[p] {
		names[name] = s
	}
	names[n] = s
	t[p] = names
	r.tables[k].Store(&t)
	r.count[k]++
	r.all = append(r.all, s)
	return s
}

// Each calls fn with the labels and current [Series.Stats] of every series,
// in creation order (an overflow series appears where it was first handed
// out), until fn returns false. Series created during the call may be
// missed. fn may call the recorder.
func (r *Recorder) Each(fn func(kind Kind, provider, name string, st *Stats) bool) {
	if r == nil {
		return
	}
	r.mu.Lock()
	all := r.all
	r.mu.Unlock()
	for _, s := range all {
		if !fn(s.kind, s.provider, s.name, s.Stats()) {
			return
		}
	}
}

// appendLower appends s to dst with ASCII upper-case letters folded.
func appendLower(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		dst = append(dst, c)
	}
	return dst
}
