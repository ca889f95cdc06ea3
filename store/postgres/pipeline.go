package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// beginReadCommitted starts a pipelined transaction. READ COMMITTED
// whatever the server's default: the ledger serializes on account row
// locks, and each statement after the lock must see what the previous
// holder of the lock committed, which READ COMMITTED's per-statement
// snapshots give.
const beginReadCommitted = `BEGIN ISOLATION LEVEL READ COMMITTED`

// rollbackTimeout bounds the ROLLBACK of a transaction that ended in an
// error; after it the connection is dropped, which rolls back too.
const rollbackTimeout = 5 * time.Second

// errNotCommitted is returned by pipelined when its function returned nil
// without committing: a bug.
var errNotCommitted = errors.New("postgres: transaction ended without commit")

// pipeTx is a transaction on one connection whose BEGIN travels with its
// first batch and whose COMMIT with its last: a movement of money that
// reads under the account's lock and then writes costs two round trips,
// the lock being held for one of them and the commit. It is used by one
// goroutine.
type pipeTx struct {
	ctx       context.Context
	conn      *pgxpool.Conn
	op        string
	begun     bool // a batch with BEGIN was made
	committed bool
}

// batch returns a batch for the transaction's next statements, starting
// with BEGIN when it is the first.
func (t *pipeTx) batch() *pgx.Batch {
	b := &pgx.Batch{}
	if !t.begun {
		b.Queue(beginReadCommitted)
		t.begun = true
	}
	return b
}

// send sends b and reads every result (the statements' callbacks run
// then); errors are mapped by failCredits.
func (t *pipeTx) send(b *pgx.Batch) error {
	if err := t.conn.SendBatch(t.ctx, b).Close(); err != nil {
		return failCredits(t.ctx, t.op, err)
	}
	return nil
}

// commit sends b (nil for none) followed by COMMIT, in one round trip.
func (t *pipeTx) commit(b *pgx.Batch) error {
	if b == nil {
		b = t.batch()
	}
	b.Queue(`COMMIT`).Exec(func(ct pgconn.CommandTag) error {
		if ct.String() != "COMMIT" { // the server rolled back instead
			return fmt.Errorf("postgres: %s: commit answered %q", t.op, ct.String())
		}
		return nil
	})
	if err := t.send(b); err != nil {
		return err
	}
	t.committed = true
	return nil
}

// pipelined runs fn in a pipeTx on a connection of the pool. fn must end
// with t.commit on success; when it returns an error the transaction is
// rolled back (the connection is dropped when that fails).
func (s *Store) pipelined(ctx context.Context, op string, fn func(t *pipeTx) error) error {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return failCredits(ctx, op, err)
	}
	// Release drops a connection still in a transaction, or busy.
	defer conn.Release()
	t := &pipeTx{ctx: ctx, conn: conn, op: op}
	err = fn(t)
	if !t.committed && t.begun && !conn.Conn().IsClosed() && conn.Conn().PgConn().TxStatus() != 'I' {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), rollbackTimeout)
		_, _ = conn.Exec(rctx, `ROLLBACK`)
		cancel()
	}
	if err == nil && !t.committed {
		return errNotCommitted
	}
	return err
}
