package keys

import (
	"context"
	"errors"
	"sync"
	"time"
)

// Defaults of CacheOptions.
const (
	DefaultCacheTTL         = 30 * time.Second
	DefaultCacheNegativeTTL = 5 * time.Second
	DefaultCacheMaxEntries  = 100_000
)

// Bounds of Run's retry delay after a Watch that returned before its ctx
// ended.
const (
	watchBackoffMin = 100 * time.Millisecond
	watchBackoffMax = 30 * time.Second
)

// cacheShardsMax is the number of shards of a large cache; smaller caches
// use fewer so that each shard holds at least cacheShardMin entries.
const (
	cacheShardsMax = 256
	cacheShardMin  = 64
	// cacheEvictSample is how many entries an insertion into a full shard
	// looks at to choose its victim.
	cacheEvictSample = 4
)

// errWatchEnded is reported when a Watch returns nil before its ctx ended.
var errWatchEnded = errors.New("keys: watch ended before its context")

// CacheOptions configure a Cache. The zero value selects every default.
type CacheOptions struct {
	// TTL is how long a key found by the store is served from the cache:
	// the longest a revoked or changed key keeps working on a replica that
	// is not told of the change (see Cache.Run). 0 means
	// DefaultCacheTTL (30s); a negative TTL disables positive caching.
	TTL time.Duration
	// NegativeTTL is how long an unknown hash (ErrNotFound) is remembered:
	// the longest a key created on another replica may be refused here
	// after a client first tried it before it existed. 0 means
	// DefaultCacheNegativeTTL (5s); a negative value disables negative
	// caching.
	NegativeTTL time.Duration
	// MaxEntries bounds the entries held, positive and negative alike, so
	// that clients sending random tokens cannot grow the cache. 0 or less
	// means DefaultCacheMaxEntries (100,000). An insertion into a full
	// cache evicts, among a few entries sampled at random, the one that
	// expires first.
	MaxEntries int
	// Now is the clock used for expiry; nil means time.Now.
	Now func() time.Time
	// OnError, when not nil, receives each error of the store's Watch that
	// Run retries (Watch failed or returned before Run's ctx ended). It is
	// called from Run's goroutine.
	OnError func(error)
}

// Cache answers KeyStore.Lookup from memory, in front of a store, on the
// request path. It holds key hashes, never tokens, and logs nothing.
//
// A key found by the store is served for TTL, an unknown hash
// (ErrNotFound) for NegativeTTL. Store failures (errors wrapping
// ErrUnavailable, or any other error) are never cached. Nor does the cache
// serve an expired entry when the store is unavailable: a revoked key must
// not outlive its bound because the database is down, so an outage fails
// authentication of keys whose entries have expired, and the caller
// reports the store as unavailable.
//
// Concurrent misses for one hash make one store call: the first caller asks
// the store and the others wait for its answer, each honouring its own ctx.
// If the first caller's ctx ends before the store answers, a waiter whose
// ctx is still alive asks again.
//
// A revocation reaches every replica within the notification latency when
// the store implements Watcher and Run is running, else within TTL. The
// admin API calls Forget after each change made on this replica.
//
// The zero Cache is not usable; call NewCache. A Cache is safe for
// concurrent use. A hit takes one shard's read lock and does not allocate.
type Cache struct {
	store      KeyStore
	ttl        time.Duration
	negTTL     time.Duration
	now        func() time.Time
	onError    func(error)
	perShard   int
	mask       uint8
	shards     []cacheShard
	backoffMin time.Duration
	backoffMax time.Duration
}

// cacheShard holds the entries whose hash's first byte selects it.
type cacheShard struct {
	mu       sync.RWMutex
	entries  map[[32]byte]*cacheEntry
	inflight map[[32]byte]*cacheCall
	_        [64]byte // keeps neighbouring shards' locks off one cache line
}

// cacheEntry is an immutable answer of the store: a key and its attached
// keys, or err (wrapping ErrNotFound) for an unknown hash.
type cacheEntry struct {
	key      Key
	attached []AttachedKey
	err      error
	expires  time.Time
}

// cacheCall is one store lookup in flight, which concurrent misses for the
// same hash wait for. Its result fields are written before done is closed.
type cacheCall struct {
	done     chan struct{}
	key      Key
	attached []AttachedKey
	err      error
	// abandoned: the caller that asked the store stopped waiting (its ctx
	// ended, or the store panicked); the result is no answer for waiters.
	abandoned bool
	// forgotten: Forget or Purge ran while the call was in flight, so its
	// answer may predate a change and is not cached. Guarded by the
	// shard's mu.
	forgotten bool
	// waiters counts the callers that waited for the call (tests use it).
	// Guarded by the shard's mu.
	waiters int
}

// NewCache returns a cache in front of store, with o's options (zero fields
// take their defaults). Call Run to drop changed keys as the store reports
// them.
func NewCache(store KeyStore, o CacheOptions) *Cache {
	c := &Cache{
		store:      store,
		ttl:        o.TTL,
		negTTL:     o.NegativeTTL,
		now:        o.Now,
		onError:    o.OnError,
		backoffMin: watchBackoffMin,
		backoffMax: watchBackoffMax,
	}
	if c.ttl == 0 {
		c.ttl = DefaultCacheTTL
	}
	if c.negTTL == 0 {
		c.negTTL = DefaultCacheNegativeTTL
	}
	if c.now == nil {
		c.now = time.Now
	}
	maxEntries := o.MaxEntries
	if maxEntries <= 0 {
		maxEntries = DefaultCacheMaxEntries
	}
	n := cacheShardsMax
	for n > 1 && maxEntries/n < cacheShardMin {
		n /= 2
	}
	c.perShard = maxEntries / n
	c.mask = uint8(n - 1)
	c.shards = make([]cacheShard, n)
	for i := range c.shards {
		c.shards[i].entries = make(map[[32]byte]*cacheEntry)
		c.shards[i].inflight = make(map[[32]byte]*cacheCall)
	}
	return c
}

func (c *Cache) shard(hash *[32]byte) *cacheShard {
	return &c.shards[hash[0]&c.mask]
}

// Lookup returns the key whose token hashes to hash, with its attached
// keys, from the cache while its entry is fresh, else from the store. An
// unknown hash returns an error wrapping ErrNotFound; a store failure
// returns the store's error (wrapping ErrUnavailable), and ctx's error when
// ctx ends while waiting for the store.
//
// The returned Key's slices and the AttachedKey slice are shared with the
// cache and with other callers: treat them as read-only.
func (c *Cache) Lookup(ctx context.Context, hash [32]byte) (Key, []AttachedKey, error) {
	s := c.shard(&hash)
	now := c.now()
	s.mu.RLock()
	e := s.entries[hash]
	s.mu.RUnlock()
	if e != nil && now.Before(e.expires) {
		return e.key, e.attached, e.err
	}
	return c.miss(ctx, s, hash)
}

// miss asks the store, or waits for the caller already asking it.
func (c *Cache) miss(ctx context.Context, s *cacheShard, hash [32]byte) (Key, []AttachedKey, error) {
	for {
		s.mu.Lock()
		if e := s.entries[hash]; e != nil && c.now().Before(e.expires) {
			s.mu.Unlock()
			return e.key, e.attached, e.err
		}
		call := s.inflight[hash]
		if call == nil {
			call = &cacheCall{done: make(chan struct{})}
			s.inflight[hash] = call
			s.mu.Unlock()
			return c.load(ctx, s, hash, call)
		}
		call.waiters++
		s.mu.Unlock()
		select {
		case <-call.done:
		case <-ctx.Done():
			return Key{}, nil, ctx.Err()
		}
		if !call.abandoned {
			return call.key, call.attached, call.err
		}
		if err := ctx.Err(); err != nil {
			return Key{}, nil, err
		}
	}
}

// load asks the store for hash on behalf of call's waiters and caches the
// answer.
func (c *Cache) load(ctx context.Context, s *cacheShard, hash [32]byte, call *cacheCall) (Key, []AttachedKey, error) {
	finished := false
	defer func() {
		if finished {
			return
		}
		// The store panicked: release the waiters, who ask again.
		s.mu.Lock()
		if s.inflight[hash] == call {
			delete(s.inflight, hash)
		}
		call.abandoned = true
		s.mu.Unlock()
		close(call.done)
	}()
	// Entries expire TTL after the store was asked, not after it answered,
	// so that the bound holds even for a store answering from a snapshot
	// taken when the call began.
	start := c.now()
	k, att, err := c.store.Lookup(ctx, hash)
	abandoned := err != nil && ctx.Err() != nil

	s.mu.Lock()
	if s.inflight[hash] == call {
		delete(s.inflight, hash)
	}
	if !abandoned && !call.forgotten {
		switch {
		case err == nil:
			if c.ttl > 0 {
				c.put(s, hash, &cacheEntry{key: k, attached: att, expires: start.Add(c.ttl)})
			}
		case errors.Is(err, ErrUnavailable):
			// Never cached: the next request asks again.
		case errors.Is(err, ErrNotFound):
			if c.negTTL > 0 {
				c.put(s, hash, &cacheEntry{err: err, expires: start.Add(c.negTTL)})
			}
		}
	}
	call.key, call.attached, call.err, call.abandoned = k, att, err, abandoned
	s.mu.Unlock()
	finished = true
	close(call.done)
	return k, att, err
}

// put stores e for hash, evicting another entry when the shard is full.
// s.mu is held.
func (c *Cache) put(s *cacheShard, hash [32]byte, e *cacheEntry) {
	if _, ok := s.entries[hash]; !ok && len(s.entries) >= c.perShard {
		// Map iteration starts at a random position: look at a few entries
		// there and evict the one expiring first, so expired entries go
		// first and negative ones (shorter TTL) before positive ones of
		// the same age.
		var victim [32]byte
		var soonest time.Time
		n := 0
		for h, v := range s.entries {
			if n == 0 || v.expires.Before(soonest) {
				victim, soonest = h, v.expires
			}
			n++
			if n == cacheEvictSample {
				break
			}
		}
		delete(s.entries, victim)
	}
	s.entries[hash] = e
}

// Forget drops the entry for hash, so that the next Lookup asks the store.
// A lookup in flight for hash is answered but its answer is not cached.
// The admin API calls Forget after it creates, updates or deletes a key, or
// attaches or detaches a provider key, on this replica. Safe for
// concurrent use.
func (c *Cache) Forget(hash [32]byte) {
	s := c.shard(&hash)
	s.mu.Lock()
	delete(s.entries, hash)
	if call := s.inflight[hash]; call != nil {
		call.forgotten = true
		delete(s.inflight, hash)
	}
	s.mu.Unlock()
}

// Purge drops every entry, as Forget does for one: after a change the
// cache cannot name by hash (a KEK rotation rewrapping attached keys), or
// when change notifications may have been missed. Safe for concurrent use.
func (c *Cache) Purge() {
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		clear(s.entries)
		for _, call := range s.inflight {
			call.forgotten = true
		}
		clear(s.inflight)
		s.mu.Unlock()
	}
}

// Len returns the number of entries held, fresh or expired, positive or
// negative. Safe for concurrent use.
func (c *Cache) Len() int {
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.RLock()
		n += len(s.entries)
		s.mu.RUnlock()
	}
	return n
}

// Run keeps the cache in step with a store shared by several replicas
// until ctx ends, then returns nil. When the store implements Watcher, Run
// watches it and forgets each changed hash, so a revocation reaches every
// replica within the notification latency; otherwise Run only waits for
// ctx, and a revocation reaches other replicas within TTL.
//
// When Watch fails or returns before ctx ends, Run reports the error to
// OnError, purges the cache (changes may have been missed) and watches
// again after a delay doubling from 100ms to 30s, honouring ctx. Changes
// made between the failure and the moment the new watch is established
// reach this replica within TTL at worst. Run purges the cache each time it
// starts watching, too.
//
// Run at most once at a time per Cache; it starts no goroutine of its own.
func (c *Cache) Run(ctx context.Context) error {
	w, ok := c.store.(Watcher)
	if !ok {
		<-ctx.Done()
		return nil
	}
	delay := c.backoffMin
	for {
		c.Purge()
		began := time.Now()
		err := w.Watch(ctx, c.Forget)
		if ctx.Err() != nil {
			return nil
		}
		c.Purge()
		if err == nil {
			err = errWatchEnded
		}
		if c.onError != nil {
			c.onError(err)
		}
		if time.Since(began) > c.backoffMax {
			delay = c.backoffMin // it had worked for a while
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		delay = min(2*delay, c.backoffMax)
	}
}
