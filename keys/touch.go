package keys

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults of TouchOptions.
const (
	DefaultTouchInterval   = 10 * time.Second
	DefaultTouchMaxPending = 100_000
)

// MaxTouchBatch is the most uses a Toucher passes to one KeyStore.Touch
// call.
const MaxTouchBatch = 1000

// touchShards is the number of independently locked pending sets; a power
// of two.
const touchShards = 32

// minFlushTimeout is the least time a background flush is given, however
// short the Interval.
const minFlushTimeout = time.Second

// ErrClosed is returned by a Toucher's Flush after Close.
var ErrClosed = errors.New("keys: toucher closed")

// TouchOptions configure a Toucher. The zero value selects every default.
type TouchOptions struct {
	// Interval is the time between background flushes, and bounds each
	// one (but a flush is given at least a second). 0 or less means
	// DefaultTouchInterval (10s).
	Interval time.Duration
	// MaxPending bounds the distinct keys waiting for a flush (and, apart,
	// those waiting for their one retry); uses of further keys are dropped
	// and counted (TouchStats.Dropped). 0 or less means
	// DefaultTouchMaxPending (100,000).
	MaxPending int
	// Now is the clock Used reads when given a zero time; nil means
	// time.Now.
	Now func() time.Time
	// OnError, when not nil, receives the store's errors of background
	// flushes, from the Toucher's goroutine. Flush and Close return theirs
	// instead. Every error is counted (TouchStats.Errors) either way.
	OnError func(error)
}

// TouchStats counts what a Toucher did since it was made.
type TouchStats struct {
	// Dropped counts uses not recorded because MaxPending distinct keys
	// were pending, or because the Toucher was closed.
	Dropped uint64
	// Lost counts keys whose last use was never written: their batch
	// failed, and failed again when retried.
	Lost uint64
	// Errors counts failed KeyStore.Touch calls.
	Errors uint64
}

// Toucher batches the writes of keys' LastUsed off the request path: Used
// records a use in memory, and a background goroutine (see Start) writes
// the pending uses with KeyStore.Touch every Interval, in batches of at
// most MaxTouchBatch sorted by key ID (so that concurrent replicas lock
// rows in one order). Uses of one key between two flushes coalesce into
// one, with the latest time.
//
// A batch the store fails to write is retried once, at the next flush, and
// then dropped: LastUsed is a hint, and memory stays bounded.
//
// The zero Toucher is not usable; call NewToucher. A Toucher is safe for
// concurrent use.
type Toucher struct {
	store    KeyStore
	interval time.Duration
	max      int64
	now      func() time.Time
	onError  func(error)

	shards  [touchShards]touchShard
	pending atomic.Int64 // distinct keys in the shards
	closed  atomic.Bool

	dropped, lost, errs atomic.Uint64

	flushMu sync.Mutex // serializes flushes; guards retry
	retry   []Use      // uses of failed batches, for their one retry

	startOnce sync.Once
	closeOnce sync.Once
	stop      chan struct{} // closed by Close
	cancel    context.CancelFunc
	done      chan struct{} // closed when the goroutine returns; nil if never started
	mu        sync.Mutex    // guards done and cancel
}

// touchShard is one pending set: the latest use of each key ID.
type touchShard struct {
	mu   sync.Mutex
	uses map[string]time.Time
	_    [48]byte // keeps neighbouring shards' locks off one cache line
}

// NewToucher returns a Toucher writing to store with o's options (zero
// fields take their defaults). Call Start to flush in the background, and
// Close when done.
func NewToucher(store KeyStore, o TouchOptions) *Toucher {
	t := &Toucher{
		store:    store,
		interval: o.Interval,
		max:      int64(o.MaxPending),
		now:      o.Now,
		onError:  o.OnError,
		stop:     make(chan struct{}),
	}
	if t.interval <= 0 {
		t.interval = DefaultTouchInterval
	}
	if t.max <= 0 {
		t.max = DefaultTouchMaxPending
	}
	if t.now == nil {
		t.now = time.Now
	}
	for i := range t.shards {
		t.shards[i].uses = make(map[string]time.Time)
	}
	return t
}

// Used records that the key with that ID authenticated a request at at (a
// zero at means now). It never waits for the store and does not allocate
// when the key already has a pending use. Beyond MaxPending distinct keys,
// or after Close, the use is dropped and counted. Safe for concurrent use.
func (t *Toucher) Used(id string, at time.Time) {
	if t.closed.Load() {
		t.dropped.Add(1)
		return
	}
	if at.IsZero() {
		at = t.now()
	}
	s := &t.shards[fnv32(id)&(touchShards-1)]
	s.mu.Lock()
	if prev, ok := s.uses[id]; ok {
		if at.After(prev) {
			s.uses[id] = at
		}
		s.mu.Unlock()
		return
	}
	if t.pending.Add(1) > t.max {
		t.pending.Add(-1)
		s.mu.Unlock()
		t.dropped.Add(1)
		return
	}
	s.uses[id] = at
	s.mu.Unlock()
}

// fnv32 is the 32-bit FNV-1a hash of s.
func fnv32(s string) uint32 {
	h := uint32(2166136261)
	for i := 0; i < len(s); i++ {
		h ^= uint32(s[i])
		h *= 16777619
	}
	return h
}

// Stats returns the Toucher's counters. Safe for concurrent use.
func (t *Toucher) Stats() TouchStats {
	return TouchStats{Dropped: t.dropped.Load(), Lost: t.lost.Load(), Errors: t.errs.Load()}
}

// Start starts the background goroutine that flushes every Interval, each
// flush bounded by Interval (at least a second). Calls after the first, or after Close, do
// nothing. Safe for concurrent use.
func (t *Toucher) Start() {
	t.startOnce.Do(func() {
		t.mu.Lock()
		defer t.mu.Unlock()
		if t.closed.Load() {
			return
		}
		ctx, cancel := context.WithCancel(context.Background())
		t.cancel = cancel
		t.done = make(chan struct{})
		go t.loop(ctx, t.done)
	})
}

func (t *Toucher) loop(ctx context.Context, done chan struct{}) {
	defer close(done)
	tick := time.NewTicker(t.interval)
	defer tick.Stop()
	for {
		select {
		case <-t.stop:
			return
		case <-tick.C:
		}
		fctx, cancel := context.WithTimeout(ctx, max(t.interval, minFlushTimeout))
		err := t.flush(fctx)
		cancel()
		if err != nil && t.onError != nil {
			t.onError(err)
		}
	}
}

// Flush writes every pending use now, and retries the uses whose batch
// failed at the previous flush. It returns the store's errors, joined;
// uses of a failed batch are kept for one retry (or lost, if that was
// their retry). After Close it returns ErrClosed. Safe for concurrent use;
// flushes run one at a time.
func (t *Toucher) Flush(ctx context.Context) error {
	if t.closed.Load() {
		return ErrClosed
	}
	return t.flush(ctx)
}

// flush drains the pending sets and writes them with the uses kept for a
// retry.
func (t *Toucher) flush(ctx context.Context) error {
	t.flushMu.Lock()
	defer t.flushMu.Unlock()

	var uses []Use
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.Lock()
		for id, at := range s.uses {
			uses = append(uses, Use{ID: id, At: at})
		}
		n := len(s.uses)
		clear(s.uses)
		t.pending.Add(-int64(n))
		s.mu.Unlock()
	}
	fresh := len(uses)
	retry := t.retry
	t.retry = nil
	if fresh == 0 && len(retry) == 0 {
		return nil
	}

	// A retried use whose key was used again since is superseded by the
	// fresh use, which gets a retry of its own.
	if len(retry) > 0 {
		ids := make(map[string]struct{}, fresh)
		for _, u := range uses[:fresh] {
			ids[u.ID] = struct{}{}
		}
		for _, u := range retry {
			if _, ok := ids[u.ID]; !ok {
				uses = append(uses, u)
			}
		}
	}
	var isRetry map[string]bool
	if len(uses) > fresh {
		isRetry = make(map[string]bool, len(uses)-fresh)
		for _, u := range uses[fresh:] {
			isRetry[u.ID] = true
		}
	}
	slices.SortFunc(uses, func(a, b Use) int { return cmp.Compare(a.ID, b.ID) })

	var errs []error
	for len(uses) > 0 {
		n := min(len(uses), MaxTouchBatch)
		batch := uses[:n]
		uses = uses[n:]
		err := ctx.Err()
		if err == nil {
			err = t.store.Touch(ctx, batch)
		}
		if err == nil {
			continue
		}
		t.errs.Add(1)
		lost := 0
		for _, u := range batch {
			if isRetry[u.ID] {
				lost++
			} else {
				t.retry = append(t.retry, u)
			}
		}
		t.lost.Add(uint64(lost))
		errs = append(errs, fmt.Errorf("keys: touching %d keys (%d lost): %w", n, lost, err))
	}
	return errors.Join(errs...)
}

// Close stops the background goroutine, waiting for a flush in progress
// (cancelled if ctx ends first), then flushes the pending uses once more,
// bounded by ctx. No goroutine of the Toucher runs after Close returns.
// Later Used calls are dropped. It returns the final flush's errors, or
// ctx's error. Calls after the first return nil. Safe for concurrent use.
func (t *Toucher) Close(ctx context.Context) error {
	first := false
	t.closeOnce.Do(func() { first = true })
	if !first {
		return nil
	}
	t.mu.Lock()
	t.closed.Store(true)
	close(t.stop)
	done, cancel := t.done, t.cancel
	t.mu.Unlock()
	if done != nil {
		select {
		case <-done:
		case <-ctx.Done():
			cancel()
			<-done
		}
		cancel()
	}
	return t.flush(ctx)
}
