package prommetrics

import (
	"strings"
	"sync"
	"sync/atomic"

	"github.com/llmgate/gateway/catalog"
)

// Other is the label value of providers and models the catalog does not
// know, and of models past Options.MaxModels.
const Other = "other"

// pair is a (provider, model) label pair.
type pair struct{ provider, model string }

// labels maps the (provider, model) names that events and the recorder
// carry to bounded label pairs, each with its metric children
// (modelSeries). A name pair is known when the gateway's catalog has the
// provider (by ID or alias) and the model among the provider's (by ID or
// alias); its labels are the provider's catalog ID and the model name as
// sent upstream, both ASCII lower-cased (as the metrics recorder keeps
// them). An unknown provider gives ("other", "other"), an unknown model
// (provider, "other"). At most max known pairs get labels of their own;
// later ones share (provider, "other"). Safe for concurrent use.
type labels struct {
	e   *Exporter
	max int

	mu     sync.Mutex             // serialises admissions
	series map[pair]*modelSeries  // by label pair; guarded by mu
	known  int                    // pairs admitted with a model of their own
	table  atomic.Pointer[lookup] // the resolutions under the current catalog
}

// lookup caches the resolution of name pairs under one catalog, bounded
// by maxCached; past that, names are resolved on every use. The cache is
// copied on write: new names are rare, reads are on every event.
type lookup struct {
	cat    *catalog.Catalog
	mu     sync.Mutex                         // serialises writers
	cached atomic.Pointer[map[pair]*resolved] // by pair of names
}

// resolved is a name pair's label pair (its series) and its model's list
// price under the lookup's catalog.
type resolved struct {
	s       *modelSeries
	pricing catalog.Pricing
}

func newLabels(e *Exporter, max int) *labels {
	return &labels{e: e, max: max, series: map[pair]*modelSeries{}}
}

// maxCached bounds the cached name pairs of a catalog: names come from
// clients ("openai:anything"), so the cache must not grow without limit.
func (l *labels) maxCached() int { return 4*l.max + 256 }

// current returns the lookup of cat, starting a new one when the catalog
// changed (a reload).
func (l *labels) current(cat *catalog.Catalog) *lookup {
	t := l.table.Load()
	for t == nil || t.cat != cat {
		nt := &lookup{cat: cat}
		if l.table.CompareAndSwap(t, nt) {
			return nt
		}
		t = l.table.Load()
	}
	return t
}

// resolve returns the labels and price of a provider and model name pair
// under t's catalog. It does not allocate once the pair is cached.
func (l *labels) resolve(t *lookup, provider, model string) *resolved {
	k := pair{provider, model}
	if m := t.cached.Load(); m != nil {
		if r, ok := (*m)[k]; ok {
			return r
		}
	}
	r := l.resolveUncached(t.cat, provider, model)
	t.mu.Lock()
	defer t.mu.Unlock()
	old := t.cached.Load()
	if old == nil {
		old = new(map[pair]*resolved)
	}
	if prev, ok := (*old)[k]; ok {
		return prev
	}
	if len(*old) < l.maxCached() {
		m := make(map[pair]*resolved, len(*old)+1)
		for k, v := range *old {
			m[k] = v
		}
		m[k] = r
		t.cached.Store(&m)
	}
	return r
}

func (l *labels) resolveUncached(cat *catalog.Catalog, provider, model string) *resolved {
	var p *catalog.Provider
	if cat != nil {
		p, _ = cat.Provider(provider)
	}
	if p == nil {
		return &resolved{s: l.seriesFor(pair{Other, Other}, false)}
	}
	pl := strings.ToLower(p.ID)
	m, ok := p.Model(model)
	if !ok {
		return &resolved{s: l.seriesFor(pair{pl, Other}, false)}
	}
	return &resolved{s: l.seriesFor(pair{pl, strings.ToLower(strings.TrimSpace(model))}, true), pricing: m.Pricing}
}

// label returns the label pair of a name pair the recorder keeps (already
// lower-cased) and whether the pair has labels of its own.
func (l *labels) label(t *lookup, provider, model string) (pair, bool) {
	s := l.resolve(t, provider, model).s
	return s.pair, s.model != Other
}

// seriesFor returns the series of label pair k, admitting it when there
// is room; a known pair past the bound gets (provider, "other").
func (l *labels) seriesFor(k pair, known bool) *modelSeries {
	l.mu.Lock()
	defer l.mu.Unlock()
	if s := l.series[k]; s != nil {
		return s
	}
	if known {
		if l.known >= l.max {
			k.model = Other
			if s := l.series[k]; s != nil {
				return s
			}
		} else {
			l.known++
		}
	}
	s := newModelSeries(l.e, k)
	l.series[k] = s
	return s
}

// lazy is a metric child created on first use: most label combinations of
// a series never occur, and a child once created is exported even at
// zero. The zero lazy is empty.
type lazy[T any] struct{ p atomic.Pointer[T] }

// get returns the child, creating it with mk the first time.
func (l *lazy[T]) get(mk func() T) T {
	if p := l.p.Load(); p != nil {
		return *p
	}
	v := mk()
	l.p.CompareAndSwap(nil, &v)
	return *l.p.Load()
}

// Operations (gen_ai_operation_name), indexed as the arrays of modelSeries.
const (
	opChat = iota
	opEmbeddings
	numOps
)
