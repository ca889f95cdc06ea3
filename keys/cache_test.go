package keys

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

// fakeStore is a KeyStore for the Cache and Toucher tests: it counts
// Lookup calls, records Touch batches, and lets a test inject errors,
// block calls and drive Watch. Methods the tests do not need fail.
type fakeStore struct {
	mu       sync.Mutex
	keys     map[[32]byte]Key
	attached map[[32]byte][]AttachedKey
	lookups  map[[32]byte]int
	touches  [][]Use
	lastUsed map[string]time.Time

	// lookupCalls counts every Lookup.
	lookupCalls atomic.Int64
	// lookupHook, when set, runs at the start of each Lookup with its call
	// number (from 1); a non-nil error is returned as the answer.
	lookupHook func(ctx context.Context, n int64, hash [32]byte) error
	// touchHook, when set, runs at the start of each Touch with its call
	// number (from 1); a non-nil error fails the call.
	touchHook  func(ctx context.Context, n int, uses []Use) error
	touchCalls int
	// watch, when set, is Watch; nil blocks until ctx ends.
	watch func(ctx context.Context, changed func([32]byte)) error
}

var errNotImplemented = errors.New("fakeStore: not implemented")

func newFakeStore() *fakeStore {
	return &fakeStore{
		keys:     map[[32]byte]Key{},
		attached: map[[32]byte][]AttachedKey{},
		lookups:  map[[32]byte]int{},
		lastUsed: map[string]time.Time{},
	}
}

// add stores a key for token and returns its hash.
func (s *fakeStore) add(token string) [32]byte {
	h := sha256.Sum256([]byte(token))
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keys[h] = Key{ID: "key_" + token, Hash: h, Endpoint: "default", AllowedModels: []string{"gpt-4o"}}
	s.attached[h] = []AttachedKey{{ID: "pk_" + token, Provider: "openai"}}
	return h
}

func (s *fakeStore) remove(h [32]byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.keys, h)
}

func (s *fakeStore) lookupsOf(h [32]byte) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lookups[h]
}

func (s *fakeStore) Lookup(ctx context.Context, hash [32]byte) (Key, []AttachedKey, error) {
	n := s.lookupCalls.Add(1)
	s.mu.Lock()
	s.lookups[hash]++
	hook := s.lookupHook
	s.mu.Unlock()
	if hook != nil {
		if err := hook(ctx, n, hash); err != nil {
			return Key{}, nil, err
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	k, ok := s.keys[hash]
	if !ok {
		return Key{}, nil, fmt.Errorf("fakeStore: lookup: %w", ErrNotFound)
	}
	return k, s.attached[hash], nil
}

func (s *fakeStore) Touch(ctx context.Context, uses []Use) error {
	s.mu.Lock()
	s.touchCalls++
	n, hook := s.touchCalls, s.touchHook
	s.mu.Unlock()
	if hook != nil {
		if err := hook(ctx, n, uses); err != nil {
			return err
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.touches = append(s.touches, append([]Use(nil), uses...))
	for _, u := range uses {
		if u.At.After(s.lastUsed[u.ID]) {
			s.lastUsed[u.ID] = u.At
		}
	}
	return nil
}

// touched returns the batches written so far.
func (s *fakeStore) touched() [][]Use {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([][]Use(nil), s.touches...)
}

func (s *fakeStore) Watch(ctx context.Context, changed func([32]byte)) error {
	if s.watch != nil {
		return s.watch(ctx, changed)
	}
	<-ctx.Done()
	return ctx.Err()
}

func (s *fakeStore) Create(context.Context, Key) (Key, error) { return Key{}, errNotImplemented }
func (s *fakeStore) Get(context.Context, string) (Key, error) { return Key{}, errNotImplemented }
func (s *fakeStore) List(context.Context, ListOptions) (Page, error) {
	return Page{}, errNotImplemented
}
func (s *fakeStore) Delete(context.Context, string) error         { return errNotImplemented }
func (s *fakeStore) Detach(context.Context, string, string) error { return errNotImplemented }
func (s *fakeStore) Update(context.Context, string, Update) (Key, error) {
	return Key{}, errNotImplemented
}
func (s *fakeStore) Attach(context.Context, AttachedKey) (AttachedKey, error) {
	return AttachedKey{}, errNotImplemented
}
func (s *fakeStore) Attached(context.Context, string) ([]AttachedKey, error) {
	return nil, errNotImplemented
}
func (s *fakeStore) Rewrap(context.Context, string, func(AttachedKey) ([]byte, string, error)) (int, error) {
	return 0, errNotImplemented
}

// noWatch hides the fake store's Watch: only KeyStore's methods are
// promoted.
type noWatch struct{ KeyStore }

// fakeClock is a settable clock.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// randomHash returns a distinct hash for i.
func randomHash(i int) [32]byte {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], uint64(i))
	return sha256.Sum256(b[:])
}

func TestCacheLookup(t *testing.T) {
	errDown := fmt.Errorf("db down: %w", ErrUnavailable)
	errOdd := errors.New("odd failure")
	tests := []struct {
		name string
		opts CacheOptions
		// run performs lookups against a cache whose store holds the key
		// of hash known, and returns the store calls expected for it.
		run func(t *testing.T, c *Cache, s *fakeStore, clk *fakeClock, known [32]byte) int
	}{{
		name: "positive hit served from cache",
		run: func(t *testing.T, c *Cache, s *fakeStore, clk *fakeClock, known [32]byte) int {
			for range 3 {
				k, att, err := c.Lookup(t.Context(), known)
				require.NoError(t, err)
				require.Equal(t, "key_good", k.ID)
				require.Len(t, att, 1)
				clk.Advance(DefaultCacheTTL / 2)
			}
			return 2 // the third lookup is past the TTL
		},
	}, {
		name: "positive entry expires at TTL",
		opts: CacheOptions{TTL: time.Minute},
		run: func(t *testing.T, c *Cache, s *fakeStore, clk *fakeClock, known [32]byte) int {
			_, _, err := c.Lookup(t.Context(), known)
			require.NoError(t, err)
			clk.Advance(time.Minute - time.Nanosecond)
			_, _, err = c.Lookup(t.Context(), known)
			require.NoError(t, err)
			clk.Advance(time.Nanosecond)
			_, _, err = c.Lookup(t.Context(), known)
			require.NoError(t, err)
			return 2
		},
	}, {
		name: "revocation seen after TTL",
		run: func(t *testing.T, c *Cache, s *fakeStore, clk *fakeClock, known [32]byte) int {
			_, _, err := c.Lookup(t.Context(), known)
			require.NoError(t, err)
			s.remove(known)
			_, _, err = c.Lookup(t.Context(), known)
			require.NoError(t, err, "still cached")
			clk.Advance(DefaultCacheTTL)
			_, _, err = c.Lookup(t.Context(), known)
			require.ErrorIs(t, err, ErrNotFound)
			return 2
		},
	}, {
		name: "negative hit served for NegativeTTL",
		run: func(t *testing.T, c *Cache, s *fakeStore, clk *fakeClock, known [32]byte) int {
			unknown := randomHash(1)
			for range 2 {
				k, att, err := c.Lookup(t.Context(), unknown)
				require.ErrorIs(t, err, ErrNotFound)
				require.Zero(t, k)
				require.Nil(t, att)
			}
			clk.Advance(DefaultCacheNegativeTTL)
			_, _, err := c.Lookup(t.Context(), unknown)
			require.ErrorIs(t, err, ErrNotFound)
			require.Equal(t, 2, s.lookupsOf(unknown))
			return 2
		},
	}, {
		name: "unavailable is not cached",
		run: func(t *testing.T, c *Cache, s *fakeStore, clk *fakeClock, known [32]byte) int {
			s.lookupHook = func(_ context.Context, n int64, _ [32]byte) error {
				if n <= 2 {
					return errDown
				}
				return nil
			}
			for range 2 {
				_, _, err := c.Lookup(t.Context(), known)
				require.ErrorIs(t, err, ErrUnavailable)
			}
			k, _, err := c.Lookup(t.Context(), known)
			require.NoError(t, err)
			require.Equal(t, "key_good", k.ID)
			return 3
		},
	}, {
		name: "unavailable wrapping not found is not cached",
		run: func(t *testing.T, c *Cache, s *fakeStore, clk *fakeClock, known [32]byte) int {
			s.lookupHook = func(_ context.Context, n int64, _ [32]byte) error {
				if n == 1 {
					return errors.Join(ErrUnavailable, ErrNotFound)
				}
				return nil
			}
			_, _, err := c.Lookup(t.Context(), known)
			require.ErrorIs(t, err, ErrUnavailable)
			_, _, err = c.Lookup(t.Context(), known)
			require.NoError(t, err)
			return 2
		},
	}, {
		name: "other errors are not cached",
		run: func(t *testing.T, c *Cache, s *fakeStore, clk *fakeClock, known [32]byte) int {
			s.lookupHook = func(_ context.Context, n int64, _ [32]byte) error {
				if n == 1 {
					return errOdd
				}
				return nil
			}
			_, _, err := c.Lookup(t.Context(), known)
			require.ErrorIs(t, err, errOdd)
			_, _, err = c.Lookup(t.Context(), known)
			require.NoError(t, err)
			return 2
		},
	}, {
		name: "stale entry not served on outage",
		run: func(t *testing.T, c *Cache, s *fakeStore, clk *fakeClock, known [32]byte) int {
			_, _, err := c.Lookup(t.Context(), known)
			require.NoError(t, err)
			s.lookupHook = func(context.Context, int64, [32]byte) error { return errDown }
			clk.Advance(DefaultCacheTTL)
			k, att, err := c.Lookup(t.Context(), known)
			require.ErrorIs(t, err, ErrUnavailable)
			require.Zero(t, k)
			require.Nil(t, att)
			return 2
		},
	}, {
		name: "negative TTL disables positive caching",
		opts: CacheOptions{TTL: -1},
		run: func(t *testing.T, c *Cache, s *fakeStore, clk *fakeClock, known [32]byte) int {
			for range 3 {
				_, _, err := c.Lookup(t.Context(), known)
				require.NoError(t, err)
			}
			return 3
		},
	}, {
		name: "negative NegativeTTL disables negative caching",
		opts: CacheOptions{NegativeTTL: -1},
		run: func(t *testing.T, c *Cache, s *fakeStore, clk *fakeClock, known [32]byte) int {
			for range 3 {
				_, _, err := c.Lookup(t.Context(), randomHash(7))
				require.ErrorIs(t, err, ErrNotFound)
			}
			require.Zero(t, c.Len())
			return 3
		},
	}, {
		name: "Forget drops the entry",
		run: func(t *testing.T, c *Cache, s *fakeStore, clk *fakeClock, known [32]byte) int {
			_, _, err := c.Lookup(t.Context(), known)
			require.NoError(t, err)
			s.remove(known)
			c.Forget(known)
			_, _, err = c.Lookup(t.Context(), known)
			require.ErrorIs(t, err, ErrNotFound)
			return 2
		},
	}, {
		name: "Purge drops every entry",
		run: func(t *testing.T, c *Cache, s *fakeStore, clk *fakeClock, known [32]byte) int {
			for i := range 10 {
				_, _, _ = c.Lookup(t.Context(), randomHash(i))
			}
			_, _, err := c.Lookup(t.Context(), known)
			require.NoError(t, err)
			require.Equal(t, 11, c.Len())
			c.Purge()
			require.Zero(t, c.Len())
			_, _, err = c.Lookup(t.Context(), known)
			require.NoError(t, err)
			return 12
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newFakeStore()
			known := s.add("good")
			clk := newFakeClock()
			o := tt.opts
			o.Now = clk.Now
			c := NewCache(s, o)
			want := tt.run(t, c, s, clk, known)
			require.Equal(t, int64(want), s.lookupCalls.Load(), "store calls")
		})
	}
}

func TestCacheExpiryCountsFromStoreCall(t *testing.T) {
	// A slow store answer expires TTL after the store was asked.
	s := newFakeStore()
	h := s.add("good")
	clk := newFakeClock()
	s.lookupHook = func(context.Context, int64, [32]byte) error {
		clk.Advance(10 * time.Second)
		return nil
	}
	c := NewCache(s, CacheOptions{TTL: 30 * time.Second, Now: clk.Now})
	_, _, err := c.Lookup(t.Context(), h)
	require.NoError(t, err)
	s.lookupHook = nil
	clk.Advance(20 * time.Second)
	_, _, err = c.Lookup(t.Context(), h)
	require.NoError(t, err)
	require.Equal(t, int64(2), s.lookupCalls.Load())
}

// blockingLookup makes the store's first Lookup signal entered and wait
// for release or its ctx.
func blockingLookup(s *fakeStore) (entered chan struct{}, release chan struct{}) {
	entered, release = make(chan struct{}), make(chan struct{})
	s.lookupHook = func(ctx context.Context, n int64, _ [32]byte) error {
		if n != 1 {
			return nil
		}
		close(entered)
		select {
		case <-release:
			return nil
		case <-ctx.Done():
			return fmt.Errorf("fakeStore: %w", ctx.Err())
		}
	}
	return entered, release
}

// waitForWaiters returns once n callers wait for the store lookup of h in
// flight.
func waitForWaiters(c *Cache, h [32]byte, n int) {
	s := c.shard(&h)
	for {
		s.mu.Lock()
		call := s.inflight[h]
		ok := call != nil && call.waiters >= n
		s.mu.Unlock()
		if ok {
			return
		}
		runtime.Gosched()
	}
}

func TestCacheSingleFlight(t *testing.T) {
	s := newFakeStore()
	h := s.add("good")
	entered, release := blockingLookup(s)
	c := NewCache(s, CacheOptions{})

	const n = 50
	var wg sync.WaitGroup
	ids := make([]string, n)
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			k, _, err := c.Lookup(t.Context(), h)
			ids[i], errs[i] = k.ID, err
		})
	}
	<-entered
	waitForWaiters(c, h, n-1)
	close(release)
	wg.Wait()
	for i := range n {
		require.NoError(t, errs[i])
		require.Equal(t, "key_good", ids[i])
	}
	require.Equal(t, int64(1), s.lookupCalls.Load())
}

func TestCacheWaiterHonoursItsContext(t *testing.T) {
	s := newFakeStore()
	h := s.add("good")
	entered, release := blockingLookup(s)
	c := NewCache(s, CacheOptions{})

	leader := make(chan error, 1)
	go func() {
		_, _, err := c.Lookup(t.Context(), h)
		leader <- err
	}()
	<-entered
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, _, err := c.Lookup(ctx, h)
	require.Equal(t, 1, c.shard(&h).inflight[h].waiters)
	require.ErrorIs(t, err, context.Canceled)
	close(release)
	require.NoError(t, <-leader)
	require.Equal(t, int64(1), s.lookupCalls.Load())
}

func TestCacheLeaderCancelled(t *testing.T) {
	// The first caller's ctx ends while the store is asked: it gets its
	// ctx's error, which is not cached, and a waiter asks again.
	s := newFakeStore()
	h := s.add("good")
	entered, _ := blockingLookup(s)
	c := NewCache(s, CacheOptions{})

	ctx, cancel := context.WithCancel(t.Context())
	leader := make(chan error, 1)
	go func() {
		_, _, err := c.Lookup(ctx, h)
		leader <- err
	}()
	<-entered
	waiter := make(chan error, 1)
	go func() {
		k, _, err := c.Lookup(t.Context(), h)
		if err == nil && k.ID != "key_good" {
			err = fmt.Errorf("got key %q", k.ID)
		}
		waiter <- err
	}()
	waitForWaiters(c, h, 1)
	cancel()
	require.ErrorIs(t, <-leader, context.Canceled)
	require.NoError(t, <-waiter)
	require.Equal(t, int64(2), s.lookupCalls.Load())
	_, _, err := c.Lookup(t.Context(), h)
	require.NoError(t, err)
	require.Equal(t, int64(2), s.lookupCalls.Load(), "the waiter's answer is cached")
}

func TestCacheForgetDuringLookup(t *testing.T) {
	// An answer read before a change is returned but not cached.
	s := newFakeStore()
	h := s.add("good")
	entered, release := blockingLookup(s)
	c := NewCache(s, CacheOptions{})

	done := make(chan error, 1)
	go func() {
		_, _, err := c.Lookup(t.Context(), h)
		done <- err
	}()
	<-entered
	c.Forget(h)
	close(release)
	require.NoError(t, <-done)
	require.Zero(t, c.Len())
	_, _, err := c.Lookup(t.Context(), h)
	require.NoError(t, err)
	require.Equal(t, int64(2), s.lookupCalls.Load())
}

func TestCacheStorePanics(t *testing.T) {
	s := newFakeStore()
	h := s.add("good")
	s.lookupHook = func(_ context.Context, n int64, _ [32]byte) error {
		if n == 1 {
			panic("store bug")
		}
		return nil
	}
	c := NewCache(s, CacheOptions{})
	require.PanicsWithValue(t, "store bug", func() { _, _, _ = c.Lookup(t.Context(), h) })
	k, _, err := c.Lookup(t.Context(), h)
	require.NoError(t, err)
	require.Equal(t, "key_good", k.ID)
}

func TestCacheBounded(t *testing.T) {
	tests := []struct {
		name       string
		maxEntries int
		positive   bool
	}{
		{"negative entries", 1000, false},
		{"positive entries", 1000, true},
		{"tiny", 3, false},
		{"one shard", 64, false},
		{"many shards", 20_000, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newFakeStore()
			c := NewCache(s, CacheOptions{MaxEntries: tt.maxEntries})
			max := tt.maxEntries
			n := 3 * max
			for i := range n {
				h := randomHash(i)
				if tt.positive {
					h = s.add(fmt.Sprint(i))
				}
				_, _, _ = c.Lookup(t.Context(), h)
			}
			for i := range c.shards {
				require.LessOrEqual(t, len(c.shards[i].entries), c.perShard)
			}
			require.LessOrEqual(t, c.Len(), max)
			require.Greater(t, c.Len(), max*9/10, "the cache fills up")
			require.Equal(t, int64(n), s.lookupCalls.Load())
		})
	}
}

func TestCacheDefaultBound(t *testing.T) {
	c := NewCache(newFakeStore(), CacheOptions{})
	require.Len(t, c.shards, cacheShardsMax)
	require.LessOrEqual(t, c.perShard*len(c.shards), DefaultCacheMaxEntries)
	require.Greater(t, c.perShard*len(c.shards), DefaultCacheMaxEntries*99/100)
}

func TestCacheEvictsExpiredFirst(t *testing.T) {
	// With one shard of 64 entries of which 63 have expired, inserting
	// keeps the fresh one: every sample holds an expired entry unless it
	// is the fresh one alone, which a sample of several never is.
	s := newFakeStore()
	clk := newFakeClock()
	c := NewCache(s, CacheOptions{MaxEntries: 64, Now: clk.Now, NegativeTTL: time.Second})
	require.Len(t, c.shards, 1)
	for i := range 63 {
		_, _, _ = c.Lookup(t.Context(), randomHash(i))
	}
	clk.Advance(time.Second)
	fresh := s.add("fresh")
	_, _, err := c.Lookup(t.Context(), fresh)
	require.NoError(t, err)
	for i := range 200 {
		_, _, _ = c.Lookup(t.Context(), randomHash(1000+i))
		clk.Advance(time.Millisecond) // older entries expire first
	}
	_, _, err = c.Lookup(t.Context(), fresh)
	require.NoError(t, err)
	require.Equal(t, 1, s.lookupsOf(fresh), "the fresh positive entry survived")
}

func TestCacheRunForgetsChangedKeys(t *testing.T) {
	defer goleak.VerifyNone(t)
	s := newFakeStore()
	h := s.add("good")
	watching := make(chan struct{})
	change := make(chan [32]byte)
	changed := make(chan struct{})
	s.watch = func(ctx context.Context, fn func([32]byte)) error {
		close(watching)
		for {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case h := <-change:
				fn(h)
				changed <- struct{}{}
			}
		}
	}
	c := NewCache(s, CacheOptions{})
	ctx, cancel := context.WithCancel(t.Context())
	ran := make(chan error, 1)
	go func() { ran <- c.Run(ctx) }()
	<-watching

	_, _, err := c.Lookup(t.Context(), h)
	require.NoError(t, err)
	s.remove(h)
	change <- h
	<-changed
	_, _, err = c.Lookup(t.Context(), h)
	require.ErrorIs(t, err, ErrNotFound)
	require.Equal(t, int64(2), s.lookupCalls.Load())

	cancel()
	require.NoError(t, <-ran)
}

func TestCacheRunRetriesWatch(t *testing.T) {
	defer goleak.VerifyNone(t)
	s := newFakeStore()
	h := s.add("good")
	errWatch := fmt.Errorf("listen: %w", ErrUnavailable)
	var calls atomic.Int64
	third := make(chan struct{})
	s.watch = func(ctx context.Context, _ func([32]byte)) error {
		switch calls.Add(1) {
		case 1:
			return errWatch
		case 2:
			return nil // ended early without an error
		case 3:
			close(third)
		}
		<-ctx.Done()
		return ctx.Err()
	}
	var mu sync.Mutex
	var reported []error
	c := NewCache(s, CacheOptions{OnError: func(err error) {
		mu.Lock()
		defer mu.Unlock()
		reported = append(reported, err)
	}})
	c.backoffMin, c.backoffMax = time.Microsecond, time.Millisecond
	_, _, err := c.Lookup(t.Context(), h)
	require.NoError(t, err)

	ctx, cancel := context.WithCancel(t.Context())
	ran := make(chan error, 1)
	go func() { ran <- c.Run(ctx) }()
	<-third
	cancel()
	require.NoError(t, <-ran)

	mu.Lock()
	defer mu.Unlock()
	require.Len(t, reported, 2)
	require.ErrorIs(t, reported[0], ErrUnavailable)
	require.ErrorIs(t, reported[1], errWatchEnded)
	require.Zero(t, c.Len(), "purged: changes may have been missed")
}

func TestCacheRunStopsDuringBackoff(t *testing.T) {
	// A failed watch purges the cache at once, and Run stops during the
	// delay before the next watch.
	defer goleak.VerifyNone(t)
	s := newFakeStore()
	h := s.add("good")
	var c *Cache
	s.watch = func(ctx context.Context, _ func([32]byte)) error {
		if _, _, err := c.Lookup(ctx, h); err != nil {
			return err
		}
		return errors.New("listen failed")
	}
	failed := make(chan struct{})
	c = NewCache(s, CacheOptions{OnError: func(error) { close(failed) }})
	c.backoffMin = time.Hour
	ctx, cancel := context.WithCancel(t.Context())
	ran := make(chan error, 1)
	go func() { ran <- c.Run(ctx) }()
	<-failed
	require.Zero(t, c.Len())
	require.Equal(t, int64(1), s.lookupCalls.Load())
	cancel()
	require.NoError(t, <-ran)
}

func TestCacheRunWithoutWatcher(t *testing.T) {
	defer goleak.VerifyNone(t)
	s := newFakeStore()
	s.watch = func(context.Context, func([32]byte)) error {
		panic("Watch called through noWatch")
	}
	c := NewCache(noWatch{s}, CacheOptions{})
	h := s.add("good")
	_, _, err := c.Lookup(t.Context(), h)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(t.Context())
	ran := make(chan error, 1)
	go func() { ran <- c.Run(ctx) }()
	cancel()
	require.NoError(t, <-ran)
	require.Equal(t, 1, c.Len(), "nothing purged without a watch")
}

func TestCacheConcurrent(t *testing.T) {
	// Lookups, Forgets and Purges from many goroutines, under -race.
	s := newFakeStore()
	hashes := make([][32]byte, 20)
	for i := range hashes {
		hashes[i] = s.add(fmt.Sprint(i))
	}
	c := NewCache(s, CacheOptions{MaxEntries: 64})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 2000 {
				h := hashes[(g+i)%len(hashes)]
				switch i % 100 {
				case 0:
					c.Forget(h)
				case 50:
					c.Purge()
				case 25:
					_, _, err := c.Lookup(t.Context(), randomHash(i))
					if !errors.Is(err, ErrNotFound) {
						t.Errorf("unknown hash: %v", err)
					}
				default:
					k, _, err := c.Lookup(t.Context(), h)
					if err != nil || k.Hash != h {
						t.Errorf("lookup: %v, %v", k.Hash, err)
					}
				}
			}
		})
	}
	wg.Wait()
	require.LessOrEqual(t, c.Len(), 64)
}

func BenchmarkCacheHit(b *testing.B) {
	s := newFakeStore()
	hashes := make([][32]byte, 1024)
	for i := range hashes {
		hashes[i] = s.add(fmt.Sprint(i))
	}
	c := NewCache(s, CacheOptions{TTL: time.Hour})
	ctx := context.Background()
	for _, h := range hashes {
		if _, _, err := c.Lookup(ctx, h); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			if _, _, err := c.Lookup(ctx, hashes[i&1023]); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for i := 0; pb.Next(); i++ {
				if _, _, err := c.Lookup(ctx, hashes[i&1023]); err != nil {
					b.Fatal(err)
				}
			}
		})
	})
	b.Run("parallel-one-key", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, _, err := c.Lookup(ctx, hashes[0]); err != nil {
					b.Fatal(err)
				}
			}
		})
	})
	if got := s.lookupCalls.Load(); got != int64(len(hashes)) {
		b.Fatalf("store calls = %d, want %d", got, len(hashes))
	}
}

func ExampleCache() {
	store := newFakeStore()
	hash := store.add("demo")
	cache := NewCache(store, CacheOptions{TTL: time.Minute})

	for range 3 {
		k, _, err := cache.Lookup(context.Background(), hash)
		fmt.Println(k.ID, err)
	}
	_, _, err := cache.Lookup(context.Background(), sha256.Sum256([]byte("unknown")))
	fmt.Println(errors.Is(err, ErrNotFound))

	cache.Forget(hash) // after an update on this replica
	_, _, _ = cache.Lookup(context.Background(), hash)
	fmt.Println("store lookups:", store.lookupCalls.Load())
	// Output:
	// key_demo <nil>
	// key_demo <nil>
	// key_demo <nil>
	// true
	// store lookups: 3
}
