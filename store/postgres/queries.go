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

// creditQueries holds the credits ledger's SQL with the schema filled in,
// built once by Open. Statements that read an account's lots, holds or
// allocations in order to change them run after lockAccount or
// lockHoldAccount in the same transaction: READ COMMITTED gives each
// statement a fresh snapshot, so they see what the previous holder of the
// lock committed.
type creditQueries struct {
	createAccount, lockAccount, lockHoldAccount, lockAccounts, adjustAccount          string
	getLot, insertLot, availableLots, adjustLots                                      string
	getHold, insertHold, endHold, holdAllocations, insertAllocations, dropAllocations string
	insertTransactions                                                                string
	sweepCandidates, sweepHolds, expireHolds, expiredLots                             string
	balance, accounts                                                                 string
	lots, transactions                                                                [2]string // [after cursor]
	insertUsage, insertNewUsage, usageHash                                            string
	holdLots, flushHold, shrinkAllocations, putAllocations, flushUsage                string
}

// lotColumns are a lot's columns in the order lotRow.dest scans.
const lotColumns = `id, account, amount, remaining, purchased_at, expires_at, note`

// holdColumns are a hold's columns in the order holdRow.dest scans.
const holdColumns = `id, account, amount, created_at, expires_at, state, spent, released, uncollected, flush_seq`

// balanceColumns are what balanceRow.dest scans, for the account a and
// its lots with money left l, at the instant $1: the totals kept on the
// account, the lots' remainders before and past their expiry, and the
// earliest expiry to come.
const balanceColumns = `a.id, a.purchased, a.held, a.spent, a.expired,
	coalesce(sum(l.remaining) FILTER (WHERE l.expires_at > $1), 0)::bigint,
	coalesce(sum(l.remaining) FILTER (WHERE l.expires_at <= $1), 0)::bigint,
	min(l.expires_at) FILTER (WHERE l.expires_at > $1)`

// usageColumns are a usage record's columns in the order usageRow.dest
// scans (content_hash excluded).
const usageColumns = `id, request_id, key_id, account, provider, model, key_source,
	reported_known, reported_input, reported_output, reported_cache_read, reported_cache_write,
	estimated_input, estimated_output, estimated_cache_read, estimated_cache_write,
	cost, fee, paid, uncollected, status, error, stream, start_at, end_at, attempts, attempts_dropped`

func newCreditQueries(schema string) creditQueries {
	r := strings.NewReplacer("{s}", pgx.Identifier{schema}.Sanitize())
	q := creditQueries{
		createAccount: r.Replace(`INSERT INTO {s}.credit_accounts (id, created_at) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING`),
		lockAccount:   r.Replace(`SELECT id FROM {s}.credit_accounts WHERE id = $1 FOR UPDATE`),
		// The hold's account never changes, so the subquery's snapshot
		// cannot be stale.
		lockHoldAccount: r.Replace(`SELECT a.id FROM {s}.credit_accounts a
WHERE a.id = (SELECT h.account FROM {s}.credit_holds h WHERE h.id = $1) FOR UPDATE`),
		// A writer's batch (group.go): the accounts $1 and those of the
		// holds $2, locked in the order of their IDs. FOR UPDATE locks
		// each row as the sorted rows come out.
		lockAccounts: r.Replace(`SELECT a.id FROM {s}.credit_accounts a
WHERE a.id = ANY($1::text[]) OR a.id IN (SELECT h.account FROM {s}.credit_holds h WHERE h.id = ANY($2::text[]))
ORDER BY a.id FOR UPDATE`),
		adjustAccount: r.Replace(`UPDATE {s}.credit_accounts SET purchased = purchased + $2, held = held + $3,
	spent = spent + $4, expired = expired + $5
WHERE id = $1`),

		getLot: r.Replace(`SELECT ` + lotColumns + ` FROM {s}.credit_lots WHERE id = $1`),
		insertLot: r.Replace(`INSERT INTO {s}.credit_lots (` + lotColumns + `)
VALUES ($1, $2, $3, $3, $4, $5, $6)`),
		availableLots: r.Replace(`SELECT id, remaining, expires_at FROM {s}.credit_lots
WHERE account = $1 AND remaining > 0 AND expires_at > $2
ORDER BY expires_at, id`),
		// One delta per lot: an UPDATE ... FROM applies one source row
		// per target row.
		adjustLots: r.Replace(`UPDATE {s}.credit_lots l SET remaining = l.remaining + v.delta
FROM unnest($1::text[], $2::bigint[]) AS v(id, delta)
WHERE l.id = v.id`),

		getHold: r.Replace(`SELECT ` + holdColumns + ` FROM {s}.credit_holds WHERE id = $1`),
		insertHold: r.Replace(`INSERT INTO {s}.credit_holds (id, account, amount, created_at, expires_at)
VALUES ($1, $2, $3, $4, $5)`),
		endHold: r.Replace(`UPDATE {s}.credit_holds SET state = $2, ended_at = $3, spent = $4, released = $5, uncollected = $6
WHERE id = $1`),
		// Earliest expiry first: the order Settle spends in.
		holdAllocations: r.Replace(`SELECT al.lot_id, al.amount, l.expires_at
FROM {s}.credit_hold_allocations al JOIN {s}.credit_lots l ON l.id = al.lot_id
WHERE al.hold_id = $1
ORDER BY l.expires_at, l.id`),
		insertAllocations: r.Replace(`INSERT INTO {s}.credit_hold_allocations (hold_id, lot_id, amount)
SELECT $1, v.lot, v.amount FROM unnest($2::text[], $3::bigint[]) AS v(lot, amount)`),
		// An ended hold's allocations are of no more use.
		dropAllocations: r.Replace(`DELETE FROM {s}.credit_hold_allocations WHERE hold_id = ANY($1::text[])`),

		// In the order given: seq (and so the order of transactions of
		// one instant) follows it.
		insertTransactions: r.Replace(`INSERT INTO {s}.credit_transactions (account, kind, amount, lot_id, hold_id, note, at)
SELECT $1, v.kind, v.amount, v.lot, v.hold, v.note, $2
FROM unnest($3::text[], $4::bigint[], $5::text[], $6::text[], $7::text[]) WITH ORDINALITY AS v(kind, amount, lot, hold, note, n)
ORDER BY v.n`),

		// Accounts with something to sweep at $1, after the account $2,
		// by ID.
		sweepCandidates: r.Replace(`SELECT account FROM {s}.credit_holds WHERE state = 'open' AND expires_at <= $1 AND account > $2
UNION
SELECT account FROM {s}.credit_lots WHERE remaining > 0 AND expires_at <= $1 AND account > $2
ORDER BY 1 LIMIT $3`),
		// A hold with no allocations (a lease spent down to nothing)
		// is one row with NULL allocation columns.
		sweepHolds: r.Replace(`SELECT h.id, h.amount, al.lot_id, al.amount, l.expires_at
FROM {s}.credit_holds h
LEFT JOIN ({s}.credit_hold_allocations al JOIN {s}.credit_lots l ON l.id = al.lot_id) ON al.hold_id = h.id
WHERE h.account = $1 AND h.state = 'open' AND h.expires_at <= $2
ORDER BY h.id, l.expires_at, l.id`),
		expireHolds: r.Replace(`UPDATE {s}.credit_holds SET state = 'expired', ended_at = $2 WHERE id = ANY($1::text[])`),
		expiredLots: r.Replace(`SELECT id, remaining FROM {s}.credit_lots
WHERE account = $1 AND remaining > 0 AND expires_at <= $2
ORDER BY expires_at, id`),

		// One statement, one snapshot: the totals and the lots agree.
		balance: r.Replace(`SELECT ` + balanceColumns + `
FROM {s}.credit_accounts a LEFT JOIN {s}.credit_lots l ON l.account = a.id AND l.remaining > 0
WHERE a.id = $2
GROUP BY a.id`),
		accounts: r.Replace(`SELECT ` + balanceColumns + `
FROM {s}.credit_accounts a LEFT JOIN {s}.credit_lots l ON l.account = a.id AND l.remaining > 0
WHERE a.id > $2
GROUP BY a.id
ORDER BY a.id
LIMIT $3`),

		insertUsage: r.Replace(`INSERT INTO {s}.usage_records (` + usageColumns + `, content_hash)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20,
	$21, $22, $23, $24, $25, $26::jsonb, $27, $28)
ON CONFLICT (id) DO NOTHING`),
		usageHash: r.Replace(`SELECT content_hash FROM {s}.usage_records WHERE id = $1`),
		insertNewUsage: r.Replace(`INSERT INTO {s}.usage_records (` + usageColumns + `, content_hash)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20,
	$21, $22, $23, $24, $25, $26::jsonb, $27, $28)`),

		// Flush (lease.go). The available lots of the hold $1's account
		// at $2, as availableLots: the hold's account never changes.
		holdLots: r.Replace(`SELECT id, remaining, expires_at FROM {s}.credit_lots
WHERE account = (SELECT h.account FROM {s}.credit_holds h WHERE h.id = $1) AND remaining > 0 AND expires_at > $2
ORDER BY expires_at, id`),
		flushHold: r.Replace(`UPDATE {s}.credit_holds SET amount = $2, expires_at = $3, flush_seq = $4 WHERE id = $1`),
		// Allocations a flush spent to nothing.
		shrinkAllocations: r.Replace(`DELETE FROM {s}.credit_hold_allocations WHERE hold_id = $1 AND lot_id = ANY($2::text[])`),
		// Allocations a flush changed, as they are now.
		putAllocations: r.Replace(`INSERT INTO {s}.credit_hold_allocations (hold_id, lot_id, amount)
SELECT $1, v.lot, v.amount FROM unnest($2::text[], $3::bigint[]) AS v(lot, amount)
ON CONFLICT (hold_id, lot_id) DO UPDATE SET amount = EXCLUDED.amount`),
		// A flush's records (distinct IDs) in one statement, by ID, and
		// the IDs kept before with other content, with the content's
		// hash. A record whose ID is kept already is not written: DO
		// UPDATE changes nothing (it sets the hash it finds) and is only
		// there to return the rows whose hash differs, from their latest
		// version, committed before the statement's snapshot or not
		// (DO NOTHING would skip a row committed meanwhile without a way
		// to compare it). Rows with the same hash are not returned, and
		// rows inserted come back with the hash they were given.
		flushUsage: r.Replace(`WITH v AS (
	SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
		$8::boolean[], $9::bigint[], $10::bigint[], $11::bigint[], $12::bigint[],
		$13::bigint[], $14::bigint[], $15::bigint[], $16::bigint[],
		$17::bigint[], $18::bigint[], $19::boolean[], $20::bigint[], $21::bigint[], $22::text[], $23::boolean[],
		$24::timestamptz[], $25::timestamptz[], $26::text[], $27::bigint[], $28::bytea[])
	AS v(` + usageColumns + `, content_hash)
), kept AS (
	INSERT INTO {s}.usage_records AS u (` + usageColumns + `, content_hash)
	SELECT id, request_id, key_id, account, provider, model, key_source,
		reported_known, reported_input, reported_output, reported_cache_read, reported_cache_write,
		estimated_input, estimated_output, estimated_cache_read, estimated_cache_write,
		cost, fee, paid, uncollected, status, error, stream, start_at, end_at, attempts::jsonb, attempts_dropped,
		content_hash
	FROM v ORDER BY id
	ON CONFLICT (id) DO UPDATE SET content_hash = u.content_hash WHERE u.content_hash <> EXCLUDED.content_hash
	RETURNING u.id, u.content_hash)
SELECT kept.id, kept.content_hash FROM kept JOIN v ON v.id = kept.id WHERE kept.content_hash <> v.content_hash`),
	}
	q.lots[0] = r.Replace(`SELECT ` + lotColumns + ` FROM {s}.credit_lots WHERE account = $1
ORDER BY purchased_at DESC, id DESC LIMIT $2`)
	q.lots[1] = r.Replace(`SELECT ` + lotColumns + ` FROM {s}.credit_lots WHERE account = $1
	AND (purchased_at, id) < ($3::timestamptz, $4::text)
ORDER BY purchased_at DESC, id DESC LIMIT $2`)
	const txColumns = `seq, kind, amount, lot_id, hold_id, note, at`
	q.transactions[0] = r.Replace(`SELECT ` + txColumns + ` FROM {s}.credit_transactions WHERE account = $1
ORDER BY at DESC, seq DESC LIMIT $2`)
	q.transactions[1] = r.Replace(`SELECT ` + txColumns + ` FROM {s}.credit_transactions WHERE account = $1
	AND (at, seq) < ($3::timestamptz, $4::bigint)
ORDER BY at DESC, seq DESC LIMIT $2`)
	return q
}
