package postgres

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/llmgate/gateway/keys"
)

// keyRow receives a gateway key's columns (keyColumns).
type keyRow struct {
	k                 keys.Key
	hash              []byte
	lastUsed, expires *time.Time
}

func (r *keyRow) dest() []any {
	return []any{&r.k.ID, &r.hash, &r.k.Redacted, &r.k.Endpoint, &r.k.Account, &r.k.Description, &r.k.Metadata,
		&r.k.CreatedAt, &r.k.UpdatedAt, &r.lastUsed, &r.expires, &r.k.AllowedProviders, &r.k.AllowedModels}
}

// key returns the scanned key: times in UTC, empty allow-lists nil.
func (r *keyRow) key() keys.Key {
	k := r.k
	copy(k.Hash[:], r.hash)
	k.CreatedAt = k.CreatedAt.UTC()
	k.UpdatedAt = k.UpdatedAt.UTC()
	if r.lastUsed != nil {
		k.LastUsed = r.lastUsed.UTC()
	}
	if r.expires != nil {
		k.ExpiresAt = r.expires.UTC()
	}
	k.AllowedProviders = nilIfEmpty(k.AllowedProviders)
	k.AllowedModels = nilIfEmpty(k.AllowedModels)
	return k
}

// nilIfEmpty returns nil for an empty list: the store does not tell a nil
// allow-list from an empty one (both mean no restriction).
func nilIfEmpty(l []string) []string {
	if len(l) == 0 {
		return nil
	}
	return l
}

// nullTime is t as a nullable timestamptz: NULL for the zero time.
func nullTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// array is l as a NOT NULL text[]: pgx sends a nil slice as NULL.
func array(l []string) []string {
	if l == nil {
		return []string{}
	}
	return l
}

// Lookup returns the key whose token hashes to hash with its attached keys
// (newest first), in one query; keys.ErrNotFound when there is none.
func (s *Store) Lookup(ctx context.Context, hash [32]byte) (keys.Key, []keys.AttachedKey, error) {
	rows, err := s.pool.Query(ctx, s.q.lookup, hash[:])
	if err != nil {
		return keys.Key{}, nil, fail(ctx, "lookup", err)
	}
	defer rows.Close()
	var (
		kr    keyRow
		ar    attachedRow
		found bool
		att   []keys.AttachedKey
	)
	dest := append(kr.dest(), ar.dest()...)
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return keys.Key{}, nil, fail(ctx, "lookup", err)
		}
		found = true
		if a, ok := ar.attached(); ok {
			att = append(att, a)
		}
	}
	if err := rows.Err(); err != nil {
		return keys.Key{}, nil, fail(ctx, "lookup", err)
	}
	if !found {
		return keys.Key{}, nil, keys.ErrNotFound
	}
	return kr.key(), att, nil
}

// Create stores k and returns it as stored: CreatedAt and UpdatedAt set
// by the store's clock, ExpiresAt and LastUsed in UTC truncated to the
// microsecond, empty allow-lists nil. keys.ErrInvalid (keys.Validate),
// keys.ErrConflict when the ID or hash exists.
func (s *Store) Create(ctx context.Context, k keys.Key) (keys.Key, error) {
	if err := keys.Validate(&k); err != nil {
		return keys.Key{}, err
	}
	now := s.stamp()
	k.CreatedAt, k.UpdatedAt = now, now
	k.LastUsed, k.ExpiresAt = dbTime(k.LastUsed), dbTime(k.ExpiresAt)
	k.AllowedProviders = nilIfEmpty(slices.Clone(k.AllowedProviders))
	k.AllowedModels = nilIfEmpty(slices.Clone(k.AllowedModels))
	_, err := s.pool.Exec(ctx, s.q.create, k.ID, k.Hash[:], k.Redacted, k.Endpoint, k.Account, k.Description,
		k.Metadata, k.CreatedAt, k.UpdatedAt, nullTime(k.LastUsed), nullTime(k.ExpiresAt),
		array(k.AllowedProviders), array(k.AllowedModels))
	if err != nil {
		return keys.Key{}, fail(ctx, "create", err)
	}
	return k, nil
}

// Get returns the key with that ID, or keys.ErrNotFound.
func (s *Store) Get(ctx context.Context, id string) (keys.Key, error) {
	if !keys.ValidID(id) {
		return keys.Key{}, keys.ErrNotFound
	}
	var kr keyRow
	if err := s.pool.QueryRow(ctx, s.q.get, id).Scan(kr.dest()...); err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
			return keys.Key{}, keys.ErrNotFound
		}
		return keys.Key{}, fail(ctx, "get", err)
	}
	return kr.key(), nil
}

// List returns a page of keys, newest first (by CreatedAt, then ID). The
// cursor is keys.EncodeCursor's; a malformed one is keys.ErrInvalid, as is
// a Limit outside 0 to keys.MaxListLimit (see keys.ListLimit).
func (s *Store) List(ctx context.Context, o keys.ListOptions) (keys.Page, error) {
	limit, err := keys.ListLimit(&o)
	if err != nil {
		return keys.Page{}, err
	}
	var args []any
	var byEndpoint, afterCursor int
	if o.Endpoint != "" {
		byEndpoint = 1
		args = append(args, o.Endpoint)
	}
	if o.Cursor != "" {
		at, id, err := keys.DecodeCursor(o.Cursor)
		if err != nil {
			return keys.Page{}, err
		}
		afterCursor = 1
		args = append(args, at, id)
	}
	args = append(args, limit+1) // one more tells whether a next page exists
	rows, err := s.pool.Query(ctx, s.q.list[byEndpoint][afterCursor], args...)
	if err != nil {
		return keys.Page{}, fail(ctx, "list", err)
	}
	defer rows.Close()
	var p keys.Page
	for rows.Next() {
		var kr keyRow
		if err := rows.Scan(kr.dest()...); err != nil {
			return keys.Page{}, fail(ctx, "list", err)
		}
		p.Keys = append(p.Keys, kr.key())
	}
	if err := rows.Err(); err != nil {
		return keys.Page{}, fail(ctx, "list", err)
	}
	if len(p.Keys) > limit {
		p.Keys = p.Keys[:limit]
		last := p.Keys[limit-1]
		p.NextCursor = keys.EncodeCursor(last.CreatedAt, last.ID)
	}
	return p, nil
}

// Update applies u to the key with that ID and returns it with UpdatedAt
// set; keys.ErrNotFound, keys.ErrInvalid (keys.ValidateUpdate). The
// change is notified to every Watch in the same statement.
func (s *Store) Update(ctx context.Context, id string, u keys.Update) (keys.Key, error) {
	if err := keys.ValidateUpdate(&u); err != nil {
		return keys.Key{}, err
	}
	if !keys.ValidID(id) {
		return keys.Key{}, keys.ErrNotFound
	}
	var setExpiry bool
	var expiry *time.Time
	if u.ExpiresAt != nil {
		setExpiry, expiry = true, nullTime(dbTime(*u.ExpiresAt))
	}
	var providers, models []string // nil: unchanged
	if u.AllowedProviders != nil {
		providers = array(*u.AllowedProviders)
	}
	if u.AllowedModels != nil {
		models = array(*u.AllowedModels)
	}
	var kr keyRow
	err := s.pool.QueryRow(ctx, s.q.update, id, u.Description, u.Metadata, setExpiry, expiry,
		providers, models, s.stamp(), s.channel).Scan(append(kr.dest(), nil)...)
	if err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
			return keys.Key{}, keys.ErrNotFound
		}
		return keys.Key{}, fail(ctx, "update", err)
	}
	return kr.key(), nil
}

// Delete removes the key and its attached keys; keys.ErrNotFound when
// there is none. The deletion is notified to every Watch in the same
// statement.
func (s *Store) Delete(ctx context.Context, id string) error {
	if !keys.ValidID(id) {
		return keys.ErrNotFound
	}
	tag, err := s.pool.Exec(ctx, s.q.delete, id, s.channel)
	if err != nil {
		return fail(ctx, "delete", err)
	}
	if tag.RowsAffected() == 0 {
		return keys.ErrNotFound
	}
	return nil
}

// Touch records uses of keys in one statement: each key's LastUsed becomes
// the latest At given for it (UTC, microseconds), never earlier than it
// was. Unknown IDs and zero times are ignored.
func (s *Store) Touch(ctx context.Context, uses []keys.Use) error {
	ids := make([]string, 0, len(uses))
	ats := make([]time.Time, 0, len(uses))
	for _, u := range uses {
		if u.At.IsZero() {
			continue
		}
		ids = append(ids, u.ID)
		ats = append(ats, dbTime(u.At))
	}
	if len(ids) == 0 {
		return ctx.Err()
	}
	if _, err := s.pool.Exec(ctx, s.q.touch, ids, ats); err != nil {
		return fail(ctx, "touch", err)
	}
	return nil
}
