package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/llmgate/gateway/keys"
)

// attachedRow receives an attached key's columns (attachedColumns), each
// NULL when a LEFT JOIN found none.
type attachedRow struct {
	id, keyID, provider, redacted, kek *string
	sealed                             []byte
	createdAt                          *time.Time
}

func (r *attachedRow) dest() []any {
	return []any{&r.id, &r.keyID, &r.provider, &r.redacted, &r.sealed, &r.kek, &r.createdAt}
}

// attached returns the scanned attached key; false for a row of NULLs.
func (r *attachedRow) attached() (keys.AttachedKey, bool) {
	if r.id == nil {
		return keys.AttachedKey{}, false
	}
	return keys.AttachedKey{
		ID:        *r.id,
		KeyID:     *r.keyID,
		Provider:  *r.provider,
		Redacted:  *r.redacted,
		Sealed:    slices.Clone(r.sealed),
		KEKID:     *r.kek,
		CreatedAt: r.createdAt.UTC(),
	}, true
}

// Attach stores a (ID, KeyID, Provider, Redacted, Sealed and KEKID set by
// the caller, see keys.ValidateAttached) and returns it with CreatedAt
// set. keys.ErrInvalid for a field that breaks a rule or beyond
// keys.MaxAttachedPerProvider for its provider (keys.TooManyAttached);
// keys.ErrNotFound when the gateway key does not exist; keys.ErrConflict
// when the ID exists. The limit holds under concurrency: the transaction
// locks the gateway key's row before counting.
func (s *Store) Attach(ctx context.Context, a keys.AttachedKey) (keys.AttachedKey, error) {
	if err := keys.ValidateAttached(&a); err != nil {
		return keys.AttachedKey{}, err
	}
	a.Sealed = slices.Clone(a.Sealed)
	a.CreatedAt = s.stamp()
	err := s.inTx(ctx, "attach", func(tx pgx.Tx) error {
		var hash []byte
		if err := tx.QueryRow(ctx, s.q.lockKey, a.KeyID).Scan(&hash); err != nil {
			if errors.Is(err, pgx.ErrNoRows) {
				return keys.ErrNotFound
			}
			return fail(ctx, "attach", err)
		}
		var n int
		if err := tx.QueryRow(ctx, s.q.countAttached, a.KeyID, a.Provider).Scan(&n); err != nil {
			return fail(ctx, "attach", err)
		}
		if n >= keys.MaxAttachedPerProvider {
			return keys.TooManyAttached()
		}
		if _, err := tx.Exec(ctx, s.q.attach, a.ID, a.KeyID, a.Provider, a.Redacted, a.Sealed, a.KEKID,
			a.CreatedAt); err != nil {
			return fail(ctx, "attach", err)
		}
		if _, err := tx.Exec(ctx, `SELECT pg_notify($1::text, encode($2::bytea, 'hex'))`, s.channel, hash); err != nil {
			return fail(ctx, "attach", err)
		}
		return nil
	})
	if err != nil {
		return keys.AttachedKey{}, err
	}
	return a, nil
}

// Detach removes the attached key with that ID from the gateway key;
// keys.ErrNotFound when there is none. The change is notified to every
// Watch in the same statement.
func (s *Store) Detach(ctx context.Context, keyID, attachedID string) error {
	if !keys.ValidID(keyID) || !keys.ValidAttachedID(attachedID) {
		return keys.ErrNotFound
	}
	tag, err := s.pool.Exec(ctx, s.q.detach, keyID, attachedID, s.channel)
	if err != nil {
		return fail(ctx, "detach", err)
	}
	if tag.RowsAffected() == 0 {
		return keys.ErrNotFound
	}
	return nil
}

// Attached lists a gateway key's attached keys, newest first; nil when it
// has none, keys.ErrNotFound when the gateway key does not exist.
func (s *Store) Attached(ctx context.Context, keyID string) ([]keys.AttachedKey, error) {
	if !keys.ValidID(keyID) {
		return nil, keys.ErrNotFound
	}
	rows, err := s.pool.Query(ctx, s.q.attached, keyID)
	if err != nil {
		return nil, fail(ctx, "attached", err)
	}
	defer rows.Close()
	var (
		ar    attachedRow
		found bool
		att   []keys.AttachedKey
	)
	dest := ar.dest()
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return nil, fail(ctx, "attached", err)
		}
		found = true
		if a, ok := ar.attached(); ok {
			att = append(att, a)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fail(ctx, "attached", err)
	}
	if !found {
		return nil, keys.ErrNotFound
	}
	return att, nil
}

// Rewrap replaces, in one transaction, the Sealed and KEKID of the
// attached keys sealed under oldKEK with what fn returns for each (called
// in ID order), and returns how many it rewrapped. When fn fails, or
// returns an entry keys.ValidateAttached refuses, nothing is changed and
// the error wraps fn's. The rows stay locked while fn runs, so fn should
// be quick (a local re-encryption). The gateway keys concerned are
// notified to every Watch.
func (s *Store) Rewrap(ctx context.Context, oldKEK string, fn func(a keys.AttachedKey) (resealed []byte, kek string, err error)) (int, error) {
	var n int
	err := s.inTx(ctx, "rewrap", func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, s.q.rewrapSelect, oldKEK)
		if err != nil {
			return fail(ctx, "rewrap", err)
		}
		var todo []keys.AttachedKey
		var ar attachedRow
		dest := ar.dest()
		for rows.Next() {
			if err := rows.Scan(dest...); err != nil {
				rows.Close()
				return fail(ctx, "rewrap", err)
			}
			a, _ := ar.attached()
			todo = append(todo, a)
		}
		if err := rows.Err(); err != nil {
			return fail(ctx, "rewrap", err)
		}
		if len(todo) == 0 {
			return nil
		}
		ids := make([]string, len(todo))
		sealed := make([][]byte, len(todo))
		keks := make([]string, len(todo))
		for i, a := range todo {
			if err := ctx.Err(); err != nil {
				return fail(ctx, "rewrap", err)
			}
			resealed, kek, err := fn(a)
			if err != nil {
				return fmt.Errorf("postgres: rewrap %s: %w", a.ID, err)
			}
			a.Sealed, a.KEKID = resealed, kek
			if err := keys.ValidateAttached(&a); err != nil {
				return fmt.Errorf("postgres: rewrap %s: fn's result: %w", a.ID, err)
			}
			ids[i], sealed[i], keks[i] = a.ID, resealed, kek
		}
		if _, err := tx.Exec(ctx, s.q.rewrapUpdate, ids, sealed, keks, s.channel); err != nil {
			return fail(ctx, "rewrap", err)
		}
		n = len(ids)
		return nil
	})
	if err != nil {
		return 0, err
	}
	return n, nil
}
