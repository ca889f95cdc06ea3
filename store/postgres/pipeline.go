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

// Statements of an operation that runs in a savepoint of a writer's
// transaction (group.go). The name is reused: each operation's savepoint
// is released or rolled back before the next one starts.
const (
	beginSavepoint    = `SAVEPOINT ledger_op`
	releaseSavepoint  = `RELEASE SAVEPOINT ledger_op`
	rollbackSavepoint = `ROLLBACK TO SAVEPOINT ledger_op`
)

// pipeTx is a transaction on one connection whose BEGIN travels with its
// first batch and whose COMMIT with its last: a movement of money that
// reads under the account's lock and then writes costs two round trips,
// the lock being held for one of them and the commit. In a writer's
// batch it is a savepoint instead: SAVEPOINT travels with the first batch
// and RELEASE SAVEPOINT with the last. It is used by one goroutine.
type pipeTx struct {
	ctx       context.Context
	conn      *pgxpool.Conn
	op        string
	savepoint bool // a savepoint in a writer's transaction
	begun     bool // a batch with BEGIN (SAVEPOINT) was made
	committed bool // COMMIT (RELEASE SAVEPOINT) succeeded
}

// batch returns a batch for the transaction's next statements, starting
// with BEGIN (SAVEPOINT) when it is the first.
func (t *pipeTx) batch() *pgx.Batch {
	b := &pgx.Batch{}
	if !t.begun {
		if t.savepoint {
			b.Queue(beginSavepoint)
		} else {
			b.Queue(beginReadCommitted)
		}
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

// commit sends b (nil for none) followed by COMMIT (RELEASE SAVEPOINT),
// in one round trip. A savepoint's changes are durable only once its
// writer commits the transaction.
func (t *pipeTx) commit(b *pgx.Batch) error {
	if b == nil {
		b = t.batch()
	}
	end, want := `COMMIT`, "COMMIT"
	if t.savepoint {
		end, want = releaseSavepoint, "RELEASE"
	}
	b.Queue(end).Exec(func(ct pgconn.CommandTag) error {
		if ct.String() != want { // the server rolled back instead
			return fmt.Errorf("postgres: %s: %s answered %q", t.op, end, ct.String())
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
	if !t.committed && t.begun {
		rollback(ctx, conn)
	}
	if err == nil && !t.committed {
		return errNotCommitted
	}
	return err
}

// rollback ends the transaction conn is in, if any, within
// rollbackTimeout of now (ctx's end does not cut it short). A connection
// still in a transaction after it is dropped by its Release.
func rollback(ctx context.Context, conn *pgxpool.Conn) {
	if conn.Conn().IsClosed() || conn.Conn().PgConn().TxStatus() == 'I' {
		return
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), rollbackTimeout)
	defer cancel()
	_, _ = conn.Exec(rctx, `ROLLBACK`)
}
