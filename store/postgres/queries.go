package postgres

import (
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
)

// queries holds the store's SQL with the schema filled in, built once by
// Open. Statements that change what Lookup returns notify the channel
// ($N::text, the last parameter) in the same statement, so the
// notification is sent exactly when the change commits.
type queries struct {
	lookup, create, get, update, delete, touch       string
	list                                             [2][2]string // [by endpoint][after cursor]
	lockKey, countAttached, attach, detach, attached string
	rewrapSelect, rewrapUpdate                       string
}

// keyColumns are a gateway key's columns in the order keyRow.dest scans.
const keyColumns = `id, hash, redacted, endpoint, account, description, metadata,
	created_at, updated_at, last_used, expires_at, allowed_providers, allowed_models`

// attachedColumns are an attached key's columns in the order
// attachedRow.dest scans.
const attachedColumns = `id, key_id, provider, redacted, sealed, kek_id, created_at`

func newQueries(schema string) queries {
	r := strings.NewReplacer("{s}", pgx.Identifier{schema}.Sanitize())
	q := queries{
		// One round trip: the key and its attached keys, newest first
		// (one row with NULL attached columns when it has none).
		lookup: r.Replace(`SELECT k.id, k.hash, k.redacted, k.endpoint, k.account, k.description, k.metadata,
	k.created_at, k.updated_at, k.last_used, k.expires_at, k.allowed_providers, k.allowed_models,
	a.id, a.key_id, a.provider, a.redacted, a.sealed, a.kek_id, a.created_at
FROM {s}.gateway_keys k LEFT JOIN {s}.attached_keys a ON a.key_id = k.id
WHERE k.hash = $1
ORDER BY a.created_at DESC, a.id DESC`),
		create: r.Replace(`INSERT INTO {s}.gateway_keys (` + keyColumns + `)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`),
		get: r.Replace(`SELECT ` + keyColumns + ` FROM {s}.gateway_keys WHERE id = $1`),
		update: r.Replace(`WITH u AS (
	UPDATE {s}.gateway_keys SET
		description = coalesce($2::text, description),
		metadata = coalesce($3::text, metadata),
		expires_at = CASE WHEN $4::boolean THEN $5::timestamptz ELSE expires_at END,
		allowed_providers = coalesce($6::text[], allowed_providers),
		allowed_models = coalesce($7::text[], allowed_models),
		updated_at = $8
	WHERE id = $1
	RETURNING ` + keyColumns + `)
SELECT u.*, pg_notify($9::text, encode(u.hash, 'hex')) FROM u`),
		delete: r.Replace(`WITH d AS (DELETE FROM {s}.gateway_keys WHERE id = $1 RETURNING hash)
SELECT pg_notify($2::text, encode(d.hash, 'hex')) FROM d`),
		// One statement for a batch: the latest use of each key, never
		// moving last_used back; rows already as recent are not written.
		touch: r.Replace(`UPDATE {s}.gateway_keys k SET last_used = GREATEST(k.last_used, v.at)
FROM (SELECT u.id, max(u.at) AS at FROM unnest($1::text[], $2::timestamptz[]) AS u(id, at) GROUP BY u.id) v
WHERE k.id = v.id AND (k.last_used IS NULL OR k.last_used < v.at)`),

		lockKey:       r.Replace(`SELECT hash FROM {s}.gateway_keys WHERE id = $1 FOR UPDATE`),
		countAttached: r.Replace(`SELECT count(*) FROM {s}.attached_keys WHERE key_id = $1 AND provider = $2`),
		attach: r.Replace(`INSERT INTO {s}.attached_keys (` + attachedColumns + `)
VALUES ($1, $2, $3, $4, $5, $6, $7)`),
		detach: r.Replace(`WITH d AS (
	DELETE FROM {s}.attached_keys a USING {s}.gateway_keys k
	WHERE a.id = $2 AND a.key_id = $1 AND k.id = a.key_id
	RETURNING k.hash)
SELECT pg_notify($3::text, encode(d.hash, 'hex')) FROM d`),
		// One row with NULL attached columns when the key has none, none
		// when the key does not exist.
		attached: r.Replace(`SELECT a.id, a.key_id, a.provider, a.redacted, a.sealed, a.kek_id, a.created_at
FROM {s}.gateway_keys k LEFT JOIN {s}.attached_keys a ON a.key_id = k.id
WHERE k.id = $1
ORDER BY a.created_at DESC, a.id DESC`),
		rewrapSelect: r.Replace(`SELECT ` + attachedColumns + ` FROM {s}.attached_keys WHERE kek_id = $1 ORDER BY id FOR UPDATE`),
		rewrapUpdate: r.Replace(`WITH u AS (
	UPDATE {s}.attached_keys a SET sealed = v.sealed, kek_id = v.kek
	FROM unnest($1::text[], $2::bytea[], $3::text[]) AS v(id, sealed, kek)
	WHERE a.id = v.id
	RETURNING a.key_id)
SELECT pg_notify($4::text, encode(k.hash, 'hex')) FROM {s}.gateway_keys k
WHERE k.id IN (SELECT key_id FROM u)`),
	}
	for byEndpoint := range 2 {
		for afterCursor := range 2 {
			var b strings.Builder
			b.WriteString(`SELECT ` + keyColumns + ` FROM {s}.gateway_keys WHERE true`)
			n := 1
			if byEndpoint == 1 {
				b.WriteString(` AND endpoint = $1`)
				n++
			}
			if afterCursor == 1 {
				b.WriteString(` AND (created_at, id) < ($` + strconv.Itoa(n) + `::timestamptz, $` + strconv.Itoa(n+1) + `::text)`)
				n += 2
			}
			b.WriteString(` ORDER BY created_at DESC, id DESC LIMIT $` + strconv.Itoa(n))
			q.list[byEndpoint][afterCursor] = r.Replace(b.String())
		}
	}
	return q
}
