package keys

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"slices"
	"sync"
	"time"
)

// MemoryStore is a KeyStore (and Watcher) holding keys in memory: for
// tests, examples and single-process gateways that create their keys at
// start. It copies everything in and out, so callers never share slices
// with it.
//
// The zero MemoryStore is empty and ready to use; NewMemoryStore returns
// one. A MemoryStore is safe for concurrent use; Now must be set before
// first use.
type MemoryStore struct {
	// Now is the clock setting CreatedAt and UpdatedAt; nil means
	// time.Now. Its times are stored in UTC, truncated to the
	// microsecond.
	Now func() time.Time

	mu       sync.Mutex
	byID     map[string]*memKey
	byHash   map[[32]byte]*memKey
	attached map[string]string // attached ID → gateway key ID
	watchers map[uint64]func([32]byte)
	nextW    uint64
}

// memKey is a stored key with its attached keys, kept newest first.
type memKey struct {
	k        Key
	attached []AttachedKey
}

// NewMemoryStore returns an empty MemoryStore using time.Now.
func NewMemoryStore() *MemoryStore { return &MemoryStore{} }

var (
	_ KeyStore = (*MemoryStore)(nil)
	_ Watcher  = (*MemoryStore)(nil)
)

// now returns the clock's time in UTC, truncated to the microsecond.
func (s *MemoryStore) now() time.Time {
	if s.Now != nil {
		return normTime(s.Now())
	}
	return normTime(time.Now())
}

// normTime returns t in UTC, truncated to the microsecond; zero stays zero.
func normTime(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return t.UTC().Truncate(time.Microsecond)
}

// later returns the later of a and b.
func later(a, b time.Time) time.Time {
	if a.Before(b) {
		return b
	}
	return a
}

// init makes the maps of a zero MemoryStore; s.mu is held.
func (s *MemoryStore) init() {
	if s.byID == nil {
		s.byID = make(map[string]*memKey)
		s.byHash = make(map[[32]byte]*memKey)
		s.attached = make(map[string]string)
		s.watchers = make(map[uint64]func([32]byte))
	}
}

// ctxErr returns a canceled or expired ctx's error, wrapped.
func ctxErr(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("keys: %w", err)
	}
	return nil
}

// copyKey returns k with slices of its own; empty allow-lists become nil.
func copyKey(k Key) Key {
	k.AllowedProviders = cloneList(k.AllowedProviders)
	k.AllowedModels = cloneList(k.AllowedModels)
	return k
}

func cloneList(l []string) []string {
	if len(l) == 0 {
		return nil
	}
	return slices.Clone(l)
}

// copyAttached returns a copy of l with Sealed slices of their own.
func copyAttached(l []AttachedKey) []AttachedKey {
	out := make([]AttachedKey, len(l))
	for i, a := range l {
		a.Sealed = bytes.Clone(a.Sealed)
		out[i] = a
	}
	return out
}

// notify calls the watchers with hash; s.mu is not held. Watchers run in
// the caller's goroutine, one after another.
func (s *MemoryStore) notify(hashes ...[32]byte) {
	s.mu.Lock()
	ws := make([]func([32]byte), 0, len(s.watchers))
	for _, w := range s.watchers {
		ws = append(ws, w)
	}
	s.mu.Unlock()
	for _, h := range hashes {
		for _, w := range ws {
			w(h)
		}
	}
}

// Lookup implements KeyStore.
func (s *MemoryStore) Lookup(ctx context.Context, hash [32]byte) (Key, []AttachedKey, error) {
	if err := ctxErr(ctx); err != nil {
		return Key{}, nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.byHash[hash]
	if m == nil {
		return Key{}, nil, ErrNotFound
	}
	return copyKey(m.k), copyAttached(m.attached), nil
}

// Create implements KeyStore.
func (s *MemoryStore) Create(ctx context.Context, k Key) (Key, error) {
	if err := ctxErr(ctx); err != nil {
		return Key{}, err
	}
	if err := Validate(&k); err != nil {
		return Key{}, err
	}
	k = copyKey(k)
	k.ExpiresAt = normTime(k.ExpiresAt)
	k.LastUsed = normTime(k.LastUsed)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.init()
	if s.byID[k.ID] != nil {
		return Key{}, fmt.Errorf("%w: key %s", ErrConflict, k.ID)
	}
	if s.byHash[k.Hash] != nil {
		return Key{}, fmt.Errorf("%w: a key with that token", ErrConflict)
	}
	k.CreatedAt = s.now()
	k.UpdatedAt = k.CreatedAt
	m := &memKey{k: k}
	s.byID[k.ID] = m
	s.byHash[k.Hash] = m
	return copyKey(k), nil
}

// Get implements KeyStore.
func (s *MemoryStore) Get(ctx context.Context, id string) (Key, error) {
	if err := ctxErr(ctx); err != nil {
		return Key{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.byID[id]
	if m == nil {
		return Key{}, ErrNotFound
	}
	return copyKey(m.k), nil
}

// compareNewest orders keys newest first: by CreatedAt, then ID, both
// descending.
func compareNewest(a, b *Key) int {
	if c := b.CreatedAt.Compare(a.CreatedAt); c != 0 {
		return c
	}
	return cmp.Compare(b.ID, a.ID)
}

// List implements KeyStore. It sorts the matching keys on every call: fine
// for the thousands of keys a memory store is for.
func (s *MemoryStore) List(ctx context.Context, o ListOptions) (Page, error) {
	if err := ctxErr(ctx); err != nil {
		return Page{}, err
	}
	limit, err := ListLimit(&o)
	if err != nil {
		return Page{}, err
	}
	var after Key // the last key of the previous page
	if o.Cursor != "" {
		if after.CreatedAt, after.ID, err = DecodeCursor(o.Cursor); err != nil {
			return Page{}, err
		}
	}
	s.mu.Lock()
	all := make([]*Key, 0, len(s.byID))
	for _, m := range s.byID {
		if o.Endpoint == "" || m.k.Endpoint == o.Endpoint {
			all = append(all, &m.k)
		}
	}
	slices.SortFunc(all, compareNewest)
	start := 0
	if o.Cursor != "" {
		start, _ = slices.BinarySearchFunc(all, &after, func(k, target *Key) int {
			if c := compareNewest(k, target); c != 0 {
				return c
			}
			return -1 // the cursor's key itself belongs to the previous page
		})
	}
	rest := all[start:]
	var p Page
	if len(rest) > limit {
		rest = rest[:limit]
		last := rest[limit-1]
		p.NextCursor = EncodeCursor(last.CreatedAt, last.ID)
	}
	p.Keys = make([]Key, len(rest))
	for i, k := range rest {
		p.Keys[i] = copyKey(*k)
	}
	s.mu.Unlock()
	return p, nil
}

// Update implements KeyStore.
func (s *MemoryStore) Update(ctx context.Context, id string, u Update) (Key, error) {
	if err := ctxErr(ctx); err != nil {
		return Key{}, err
	}
	if err := ValidateUpdate(&u); err != nil {
		return Key{}, err
	}
	s.mu.Lock()
	m := s.byID[id]
	if m == nil {
		s.mu.Unlock()
		return Key{}, ErrNotFound
	}
	k := &m.k
	if u.Description != nil {
		k.Description = *u.Description
	}
	if u.Metadata != nil {
		k.Metadata = *u.Metadata
	}
	if u.ExpiresAt != nil {
		k.ExpiresAt = normTime(*u.ExpiresAt)
	}
	if u.AllowedProviders != nil {
		k.AllowedProviders = cloneList(*u.AllowedProviders)
	}
	if u.AllowedModels != nil {
		k.AllowedModels = cloneList(*u.AllowedModels)
	}
	// Never earlier than it was, even if the clock steps back.
	k.UpdatedAt = later(s.now(), k.UpdatedAt)
	out := copyKey(*k)
	s.mu.Unlock()
	s.notify(out.Hash)
	return out, nil
}

// Delete implements KeyStore.
func (s *MemoryStore) Delete(ctx context.Context, id string) error {
	if err := ctxErr(ctx); err != nil {
		return err
	}
	s.mu.Lock()
	m := s.byID[id]
	if m == nil {
		s.mu.Unlock()
		return ErrNotFound
	}
	delete(s.byID, id)
	delete(s.byHash, m.k.Hash)
	for _, a := range m.attached {
		delete(s.attached, a.ID)
	}
	s.mu.Unlock()
	s.notify(m.k.Hash)
	return nil
}

// Touch implements KeyStore.
func (s *MemoryStore) Touch(ctx context.Context, uses []Use) error {
	if err := ctxErr(ctx); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, u := range uses {
		if m := s.byID[u.ID]; m != nil {
			m.k.LastUsed = later(m.k.LastUsed, normTime(u.At))
		}
	}
	return nil
}

// Attach implements KeyStore.
func (s *MemoryStore) Attach(ctx context.Context, a AttachedKey) (AttachedKey, error) {
	if err := ctxErr(ctx); err != nil {
		return AttachedKey{}, err
	}
	if err := ValidateAttached(&a); err != nil {
		return AttachedKey{}, err
	}
	a.Sealed = bytes.Clone(a.Sealed)
	s.mu.Lock()
	m := s.byID[a.KeyID]
	if m == nil {
		s.mu.Unlock()
		return AttachedKey{}, ErrNotFound
	}
	if _, ok := s.attached[a.ID]; ok {
		s.mu.Unlock()
		return AttachedKey{}, fmt.Errorf("%w: attached key %s", ErrConflict, a.ID)
	}
	n := 0
	for _, b := range m.attached {
		if b.Provider == a.Provider {
			n++
		}
	}
	if n >= MaxAttachedPerProvider {
		s.mu.Unlock()
		return AttachedKey{}, TooManyAttached()
	}
	a.CreatedAt = s.now()
	s.attached[a.ID] = a.KeyID
	m.attached = append(m.attached, a)
	slices.SortFunc(m.attached, compareAttached)
	a.Sealed = bytes.Clone(a.Sealed)
	hash := m.k.Hash
	s.mu.Unlock()
	s.notify(hash)
	return a, nil
}

// compareAttached orders attached keys newest first: by CreatedAt, then
// ID, both descending.
func compareAttached(a, b AttachedKey) int {
	if c := b.CreatedAt.Compare(a.CreatedAt); c != 0 {
		return c
	}
	return cmp.Compare(b.ID, a.ID)
}

// Detach implements KeyStore.
func (s *MemoryStore) Detach(ctx context.Context, keyID, attachedID string) error {
	if err := ctxErr(ctx); err != nil {
		return err
	}
	s.mu.Lock()
	m := s.byID[keyID]
	if m == nil || s.attached[attachedID] != keyID {
		s.mu.Unlock()
		return ErrNotFound
	}
	delete(s.attached, attachedID)
	m.attached = slices.DeleteFunc(m.attached, func(a AttachedKey) bool { return a.ID == attachedID })
	hash := m.k.Hash
	s.mu.Unlock()
	s.notify(hash)
	return nil
}

// Attached implements KeyStore.
func (s *MemoryStore) Attached(ctx context.Context, keyID string) ([]AttachedKey, error) {
	if err := ctxErr(ctx); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.byID[keyID]
	if m == nil {
		return nil, ErrNotFound
	}
	return copyAttached(m.attached), nil
}

// Rewrap implements KeyStore. It calls fn without holding its lock, so fn
// may use the store; an entry detached or changed meanwhile is skipped.
// When fn fails, nothing is rewrapped.
func (s *MemoryStore) Rewrap(ctx context.Context, oldKEK string, fn func(a AttachedKey) ([]byte, string, error)) (int, error) {
	if err := ctxErr(ctx); err != nil {
		return 0, err
	}
	s.mu.Lock()
	var todo []AttachedKey
	for _, m := range s.byID {
		for _, a := range m.attached {
			if a.KEKID == oldKEK {
				todo = append(todo, a)
			}
		}
	}
	s.mu.Unlock()
	slices.SortFunc(todo, func(a, b AttachedKey) int { return cmp.Compare(a.ID, b.ID) })
	type result struct {
		sealed []byte
		kek    string
	}
	results := make([]result, len(todo))
	for i, a := range todo {
		if err := ctxErr(ctx); err != nil {
			return 0, err
		}
		a.Sealed = bytes.Clone(a.Sealed)
		sealed, kek, err := fn(a)
		if err != nil {
			return 0, fmt.Errorf("keys: rewrap %s: %w", a.ID, err)
		}
		if len(sealed) == 0 || !validKEKID(kek) {
			return 0, fmt.Errorf("keys: rewrap %s: %w", a.ID, &ValidationError{"kek_id", "invalid_rewrap", "fn returned no sealed key or an invalid KEK ID"})
		}
		results[i] = result{bytes.Clone(sealed), kek}
	}
	n := 0
	var hashes [][32]byte
	s.mu.Lock()
	for i, a := range todo {
		m := s.byID[a.KeyID]
		if m == nil {
			continue
		}
		for j := range m.attached {
			b := &m.attached[j]
			if b.ID == a.ID && b.KEKID == oldKEK && bytes.Equal(b.Sealed, a.Sealed) {
				b.Sealed, b.KEKID = results[i].sealed, results[i].kek
				n++
				hashes = append(hashes, m.k.Hash)
			}
		}
	}
	s.mu.Unlock()
	s.notify(hashes...)
	return n, nil
}

// Watch implements Watcher: it calls changed, in the goroutine making the
// change and after it is made, with the hash of each key updated, deleted,
// attached to, detached from or rewrapped, until ctx ends; then it returns
// ctx's error. changed must not block for long.
func (s *MemoryStore) Watch(ctx context.Context, changed func(hash [32]byte)) error {
	s.mu.Lock()
	s.init()
	id := s.nextW
	s.nextW++
	s.watchers[id] = changed
	s.mu.Unlock()
	<-ctx.Done()
	s.mu.Lock()
	delete(s.watchers, id)
	s.mu.Unlock()
	return ctx.Err()
}
