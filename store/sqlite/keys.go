package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/llmgate/gateway/keys"
)

const keyColumns = `id, hash, redacted, endpoint, account, description, metadata,
	created_at, updated_at, last_used, expires_at, allowed_providers, allowed_models`

// lookupSQL is Lookup's query, prepared once per reader connection.
const lookupSQL = `SELECT k.id, k.hash, k.redacted, k.endpoint, k.account, k.description, k.metadata,
	k.created_at, k.updated_at, k.last_used, k.expires_at, k.allowed_providers, k.allowed_models,
	a.id, a.provider, a.redacted, a.sealed, a.kek_id, a.created_at
FROM gateway_keys k LEFT JOIN attached_keys a ON a.key_id = k.id
WHERE k.hash = ?
ORDER BY a.created_at DESC, a.id DESC`

const attachedColumns = `id, key_id, provider, redacted, sealed, kek_id, created_at`

// scanner is *sql.Row or *sql.Rows.
type scanner interface{ Scan(dest ...any) error }

// keyRow holds a gateway_keys row as scanned.
type keyRow struct {
	id, redacted, endpoint, account, description, metadata string
	hash                                                   []byte
	created, updated, lastUsed, expires                    int64
	providers, models                                      []byte
}

func (r *keyRow) dest() []any {
	return []any{&r.id, &r.hash, &r.redacted, &r.endpoint, &r.account, &r.description, &r.metadata,
		&r.created, &r.updated, &r.lastUsed, &r.expires, &r.providers, &r.models}
}

// scanKeyRow scans a row of keyColumns.
func scanKeyRow(sc scanner) (keyRow, error) {
	var kr keyRow
	err := sc.Scan(kr.dest()...)
	return kr, err
}

func (r *keyRow) key() (keys.Key, error) {
	k := keys.Key{
		ID: r.id, Redacted: r.redacted, Endpoint: r.endpoint, Account: r.account,
		Description: r.description, Metadata: r.metadata,
		CreatedAt: fromMicros(r.created), UpdatedAt: fromMicros(r.updated),
		LastUsed: fromMicros(r.lastUsed), ExpiresAt: fromMicros(r.expires),
	}
	if len(r.hash) != len(k.Hash) {
		return keys.Key{}, fmt.Errorf("sqlite: key %s: hash of %d bytes", r.id, len(r.hash))
	}
	copy(k.Hash[:], r.hash)
	var err error
	if k.AllowedProviders, err = decodeList(r.providers); err != nil {
		return keys.Key{}, fmt.Errorf("sqlite: key %s: allowed_providers: %w", r.id, err)
	}
	if k.AllowedModels, err = decodeList(r.models); err != nil {
		return keys.Key{}, fmt.Errorf("sqlite: key %s: allowed_models: %w", r.id, err)
	}
	return k, nil
}

// encodeList stores an allow-list as a JSON array; an empty list is NULL
// (no restriction), so it reads back as nil.
func encodeList(l []string) (any, error) {
	if len(l) == 0 {
		return nil, nil
	}
	b, err := json.Marshal(l)
	if err != nil {
		return nil, err
	}
	return string(b), nil
}

func decodeList(b []byte) ([]string, error) {
	if len(b) == 0 {
		return nil, nil
	}
	var l []string
	if err := json.Unmarshal(b, &l); err != nil {
		return nil, err
	}
	if len(l) == 0 {
		return nil, nil
	}
	return l, nil
}

// normalize returns k with times in UTC to the microsecond and its slices
// copied (nil when empty), as the store keeps it.
func normalize(k keys.Key) keys.Key {
	k.LastUsed = utcMicro(k.LastUsed)
	k.ExpiresAt = utcMicro(k.ExpiresAt)
	k.AllowedProviders = cloneList(k.AllowedProviders)
	k.AllowedModels = cloneList(k.AllowedModels)
	return k
}

func utcMicro(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return t.UTC().Truncate(time.Microsecond)
}

func cloneList(l []string) []string {
	if len(l) == 0 {
		return nil
	}
	return slices.Clone(l)
}

// Lookup returns the key whose token hashes to hash with its attached keys
// (newest first), or keys.ErrNotFound. It runs one query on the reader
// pool, so the key and its attached keys come from one snapshot.
func (s *Store) Lookup(ctx context.Context, hash [32]byte) (keys.Key, []keys.AttachedKey, error) {
	rows, err := s.lookup.QueryContext(ctx, hash[:])
	if err != nil {
		return keys.Key{}, nil, dbError("lookup", err)
	}
	defer rows.Close()
	var (
		kr    keyRow
		ar    attachedRow
		k     keys.Key
		found bool
		att   []keys.AttachedKey
	)
	dest := append(kr.dest(), ar.dest()...)
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return keys.Key{}, nil, dbError("lookup", err)
		}
		if !found {
			if k, err = kr.key(); err != nil {
				return keys.Key{}, nil, err
			}
			found = true
		}
		if a, ok := ar.attached(k.ID); ok {
			att = append(att, a)
		}
	}
	if err := rows.Err(); err != nil {
		return keys.Key{}, nil, dbError("lookup", err)
	}
	if !found {
		return keys.Key{}, nil, keys.ErrNotFound
	}
	return k, att, nil
}

// Create stores k and returns it as stored, with CreatedAt and UpdatedAt
// set: keys.ErrInvalid (see keys.Validate), keys.ErrConflict when the ID or
// hash exists.
func (s *Store) Create(ctx context.Context, k keys.Key) (keys.Key, error) {
	if err := keys.Validate(&k); err != nil {
		return keys.Key{}, err
	}
	k = normalize(k)
	k.CreatedAt = s.stamp()
	k.UpdatedAt = k.CreatedAt
	prov, err := encodeList(k.AllowedProviders)
	if err != nil {
		return keys.Key{}, err
	}
	mods, err := encodeList(k.AllowedModels)
	if err != nil {
		return keys.Key{}, err
	}
	_, err = s.w.ExecContext(ctx, `INSERT INTO gateway_keys (`+keyColumns+`)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		k.ID, k.Hash[:], k.Redacted, k.Endpoint, k.Account, k.Description, k.Metadata,
		micros(k.CreatedAt), micros(k.UpdatedAt), micros(k.LastUsed), micros(k.ExpiresAt), prov, mods)
	if err != nil {
		return keys.Key{}, dbError("create "+k.ID, err)
	}
	return k, nil
}

// Get returns the key with that ID, or keys.ErrNotFound.
func (s *Store) Get(ctx context.Context, id string) (keys.Key, error) {
	return s.get(ctx, s.r, id)
}

type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func (s *Store) get(ctx context.Context, q querier, id string) (keys.Key, error) {
	var kr keyRow
	err := q.QueryRowContext(ctx, `SELECT `+keyColumns+` FROM gateway_keys WHERE id = ?`, id).Scan(kr.dest()...)
	if errors.Is(err, sql.ErrNoRows) {
		return keys.Key{}, keys.ErrNotFound
	}
	if err != nil {
		return keys.Key{}, dbError("get "+id, err)
	}
	return kr.key()
}

// List returns a page of keys, newest first (by CreatedAt, then ID). An
// invalid Limit or Cursor is keys.ErrInvalid.
func (s *Store) List(ctx context.Context, o keys.ListOptions) (keys.Page, error) {
	limit, err := keys.ListLimit(&o)
	if err != nil {
		return keys.Page{}, err
	}
	var (
		where []string
		args  []any
	)
	if o.Endpoint != "" {
		where = append(where, "endpoint = ?")
		args = append(args, o.Endpoint)
	}
	if o.Cursor != "" {
		at, id, err := keys.DecodeCursor(o.Cursor)
		if err != nil {
			return keys.Page{}, err
		}
		where = append(where, "(created_at, id) < (?, ?)")
		args = append(args, micros(at), id)
	}
	q, args := pageQuery(keyColumns, "gateway_keys", where, "created_at DESC, id DESC", args, limit)
	krs, err := queryList(ctx, s.r, func(err error) error { return dbError("list", err) }, scanKeyRow, q, args...)
	if err != nil {
		return keys.Page{}, err
	}
	// A row that does not make a key (a corrupt hash or allow-list) is
	// not a database error: its error passes through unwrapped.
	var p keys.Page
	for i := range krs {
		k, err := krs[i].key()
		if err != nil {
			return keys.Page{}, err
		}
		p.Keys = append(p.Keys, k)
	}
	var last *keys.Key
	if p.Keys, last = cutPage(p.Keys, limit); last != nil {
		p.NextCursor = keys.EncodeCursor(last.CreatedAt, last.ID)
	}
	return p, nil
}

// Update applies u to the key with that ID and returns it with UpdatedAt
// set; keys.ErrInvalid (see keys.ValidateUpdate), keys.ErrNotFound.
func (s *Store) Update(ctx context.Context, id string, u keys.Update) (keys.Key, error) {
	if err := keys.ValidateUpdate(&u); err != nil {
		return keys.Key{}, err
	}
	var (
		set  = []string{"updated_at = ?"}
		args = []any{micros(s.stamp())}
	)
	if u.Description != nil {
		set = append(set, "description = ?")
		args = append(args, *u.Description)
	}
	if u.Metadata != nil {
		set = append(set, "metadata = ?")
		args = append(args, *u.Metadata)
	}
	if u.ExpiresAt != nil {
		set = append(set, "expires_at = ?")
		args = append(args, micros(utcMicro(*u.ExpiresAt)))
	}
	for _, l := range []struct {
		col string
		v   *[]string
	}{{"allowed_providers", u.AllowedProviders}, {"allowed_models", u.AllowedModels}} {
		if l.v == nil {
			continue
		}
		v, err := encodeList(*l.v)
		if err != nil {
			return keys.Key{}, err
		}
		set = append(set, l.col+" = ?")
		args = append(args, v)
	}
	args = append(args, id)
	var kr keyRow
	err := s.w.QueryRowContext(ctx, `UPDATE gateway_keys SET `+strings.Join(set, ", ")+
		` WHERE id = ? RETURNING `+keyColumns, args...).Scan(kr.dest()...)
	if errors.Is(err, sql.ErrNoRows) {
		return keys.Key{}, keys.ErrNotFound
	}
	if err != nil {
		return keys.Key{}, dbError("update "+id, err)
	}
	return kr.key()
}

// Delete removes the key and (by cascade) its attached keys;
// keys.ErrNotFound when there is none.
func (s *Store) Delete(ctx context.Context, id string) error {
	res, err := s.w.ExecContext(ctx, `DELETE FROM gateway_keys WHERE id = ?`, id)
	if err != nil {
		return dbError("delete "+id, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return dbError("delete "+id, err)
	} else if n == 0 {
		return keys.ErrNotFound
	}
	return nil
}

// Touch records uses of keys in one transaction: each key's LastUsed
// becomes the latest At given for it (to the microsecond), never earlier
// than it was. Unknown IDs and zero times are ignored.
func (s *Store) Touch(ctx context.Context, uses []keys.Use) (err error) {
	latest := make(map[string]int64, len(uses))
	for _, u := range uses {
		if u.At.IsZero() {
			continue
		}
		if at := u.At.UnixMicro(); at > latest[u.ID] {
			latest[u.ID] = at
		}
	}
	if len(latest) == 0 {
		return nil
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return dbError("touch", err)
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	st, err := tx.PrepareContext(ctx, `UPDATE gateway_keys SET last_used = MAX(last_used, ?) WHERE id = ?`)
	if err != nil {
		return dbError("touch", err)
	}
	defer st.Close()
	for id, at := range latest {
		if _, err = st.ExecContext(ctx, at, id); err != nil {
			return dbError("touch", err)
		}
	}
	if err = tx.Commit(); err != nil {
		return dbError("touch", err)
	}
	return nil
}

// Attach stores an attached key and returns it with CreatedAt set:
// keys.ErrNotFound when the gateway key does not exist, keys.ErrInvalid for
// a bad field or beyond keys.MaxAttachedPerProvider for its provider (both
// checked in the insert's transaction), keys.ErrConflict when the ID
// exists.
func (s *Store) Attach(ctx context.Context, a keys.AttachedKey) (_ keys.AttachedKey, err error) {
	if err := keys.ValidateAttached(&a); err != nil {
		return keys.AttachedKey{}, err
	}
	a.Sealed = slices.Clone(a.Sealed)
	a.CreatedAt = s.stamp()
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return keys.AttachedKey{}, dbError("attach", err)
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	var exists, n int
	err = tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM gateway_keys WHERE id = ?),
	(SELECT COUNT(*) FROM attached_keys WHERE key_id = ? AND provider = ?)`, a.KeyID, a.KeyID, a.Provider).Scan(&exists, &n)
	switch {
	case err != nil:
		return keys.AttachedKey{}, dbError("attach", err)
	case exists == 0:
		return keys.AttachedKey{}, keys.ErrNotFound
	case n >= keys.MaxAttachedPerProvider:
		return keys.AttachedKey{}, keys.TooManyAttached()
	}
	if _, err = tx.ExecContext(ctx, `INSERT INTO attached_keys (`+attachedColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		a.ID, a.KeyID, a.Provider, a.Redacted, a.Sealed, a.KEKID, micros(a.CreatedAt)); err != nil {
		return keys.AttachedKey{}, dbError("attach "+a.ID, err)
	}
	if err = tx.Commit(); err != nil {
		return keys.AttachedKey{}, dbError("attach "+a.ID, err)
	}
	return a, nil
}

// Detach removes the attached key with that ID from the gateway key;
// keys.ErrNotFound when there is none.
func (s *Store) Detach(ctx context.Context, keyID, attachedID string) error {
	res, err := s.w.ExecContext(ctx, `DELETE FROM attached_keys WHERE id = ? AND key_id = ?`, attachedID, keyID)
	if err != nil {
		return dbError("detach "+attachedID, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return dbError("detach "+attachedID, err)
	} else if n == 0 {
		return keys.ErrNotFound
	}
	return nil
}

// Attached lists a gateway key's attached keys, newest first (by
// CreatedAt, then ID); keys.ErrNotFound when the gateway key does not
// exist. One query answers both from one snapshot.
func (s *Store) Attached(ctx context.Context, keyID string) ([]keys.AttachedKey, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT a.id, a.provider, a.redacted, a.sealed, a.kek_id, a.created_at
FROM gateway_keys k LEFT JOIN attached_keys a ON a.key_id = k.id
WHERE k.id = ? ORDER BY a.created_at DESC, a.id DESC`, keyID)
	if err != nil {
		return nil, dbError("attached", err)
	}
	defer rows.Close()
	var (
		found bool
		out   []keys.AttachedKey
		ar    attachedRow
	)
	for rows.Next() {
		if err := rows.Scan(ar.dest()...); err != nil {
			return nil, dbError("attached", err)
		}
		found = true
		if a, ok := ar.attached(keyID); ok {
			out = append(out, a)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, dbError("attached", err)
	}
	if !found {
		return nil, keys.ErrNotFound
	}
	return out, nil
}

// attachedRow holds the attached_keys columns of a LEFT JOIN row, NULL
// when the gateway key has none.
type attachedRow struct {
	id, provider, redacted, kek sql.NullString
	sealed                      []byte
	at                          sql.NullInt64
}

func (r *attachedRow) dest() []any {
	return []any{&r.id, &r.provider, &r.redacted, &r.sealed, &r.kek, &r.at}
}

// attached returns the row's attached key of the gateway key keyID, and
// false when the row has none.
func (r *attachedRow) attached(keyID string) (keys.AttachedKey, bool) {
	if !r.id.Valid {
		return keys.AttachedKey{}, false
	}
	return keys.AttachedKey{
		ID: r.id.String, KeyID: keyID, Provider: r.provider.String, Redacted: r.redacted.String,
		Sealed: r.sealed, KEKID: r.kek.String, CreatedAt: fromMicros(r.at.Int64),
	}, true
}

// Rewrap replaces, in one transaction, the Sealed and KEKID of the attached
// keys sealed under oldKEK with what fn returns for each, and returns how
// many it rewrapped. When fn fails, nothing changes and Rewrap returns 0
// and fn's error. fn runs while the write lock is held: it should be a
// local computation (a Sealer), not a network call.
func (s *Store) Rewrap(ctx context.Context, oldKEK string, fn func(a keys.AttachedKey) (resealed []byte, kek string, err error)) (_ int, err error) {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return 0, dbError("rewrap", err)
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	rows, err := tx.QueryContext(ctx, `SELECT `+attachedColumns+` FROM attached_keys
WHERE kek_id = ? ORDER BY created_at, id`, oldKEK)
	if err != nil {
		return 0, dbError("rewrap", err)
	}
	var todo []keys.AttachedKey
	for rows.Next() {
		var (
			e  keys.AttachedKey
			at int64
		)
		if err = rows.Scan(&e.ID, &e.KeyID, &e.Provider, &e.Redacted, &e.Sealed, &e.KEKID, &at); err != nil {
			rows.Close()
			return 0, dbError("rewrap", err)
		}
		e.CreatedAt = fromMicros(at)
		todo = append(todo, e)
	}
	if err = rows.Close(); err != nil {
		return 0, dbError("rewrap", err)
	}
	if err = rows.Err(); err != nil {
		return 0, dbError("rewrap", err)
	}
	if len(todo) == 0 {
		if err = tx.Commit(); err != nil {
			return 0, dbError("rewrap", err)
		}
		return 0, nil
	}
	st, err := tx.PrepareContext(ctx, `UPDATE attached_keys SET sealed = ?, kek_id = ? WHERE id = ?`)
	if err != nil {
		return 0, dbError("rewrap", err)
	}
	defer st.Close()
	for _, e := range todo {
		resealed, kek, ferr := fn(e)
		if ferr != nil {
			err = fmt.Errorf("sqlite: rewrap %s: %w", e.ID, ferr)
			return 0, err
		}
		if len(resealed) == 0 || kek == "" {
			err = fmt.Errorf("sqlite: rewrap %s: %w", e.ID, &keys.ValidationError{Field: "sealed", Code: "missing_sealed",
				Message: "the rewrap function returned no sealed key or no KEK ID"})
			return 0, err
		}
		if _, err = st.ExecContext(ctx, resealed, kek, e.ID); err != nil {
			return 0, dbError("rewrap", err)
		}
	}
	if err = tx.Commit(); err != nil {
		return 0, dbError("rewrap", err)
	}
	return len(todo), nil
}
