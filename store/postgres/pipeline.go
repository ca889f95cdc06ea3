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
// the lock being held for one of them and the commit.
//
// In a writer's batch (group is set) it is a savepoint of the writer's
// transaction instead: its first batch starts with what the batch carries
// (the previous operation's writes, or BEGIN and the locks) and SAVEPOINT;
// its last batch ends with RELEASE SAVEPOINT and is not sent but carried
// to the next operation's first batch, or to the COMMIT. It is used by
// one goroutine.
type pipeTx struct {
	ctx       context.Context
	conn      *pgxpool.Conn
	op        string
	begun     bool // a batch with BEGIN (SAVEPOINT) was made
	committed bool // COMMIT succeeded (RELEASE SAVEPOINT was queued)

	group   *groupTx
	carried []mark // the carried statements the first batch holds
	sent    bool   // a batch was sent
	sendErr error  // the first send's error, unmapped
}

// batch returns a batch for the transaction's next statements, starting
// with BEGIN (SAVEPOINT) when it is the first.
func (t *pipeTx) batch() *pgx.Batch {
	if t.begun {
		return &pgx.Batch{}
	}
	t.begun = true
	if t.group == nil {
		b := &pgx.Batch{}
		b.Queue(beginReadCommitted)
		return b
	}
	b, carried := t.group.take()
	t.carried = carried
	b.Queue(`SAVEPOINT ledger_op`)
	return b
}

// send sends b and reads every result (the statements' callbacks run
// then); errors are mapped by failCredits.
func (t *pipeTx) send(b *pgx.Batch) error {
	err := t.conn.SendBatch(t.ctx, b).Close()
	if !t.sent {
		t.sent, t.sendErr = true, err
	}
	if err != nil {
		return failCredits(t.ctx, t.op, err)
	}
	return nil
}

// commit sends b (nil for none) followed by COMMIT, in one round trip. In
// a writer's batch it queues RELEASE SAVEPOINT after b and leaves b to
// the writer: the operation's changes are durable once the writer
// committed its transaction.
func (t *pipeTx) commit(b *pgx.Batch) error {
	if b == nil {
		b = t.batch()
	}
	if t.group != nil {
		carried := t.carried
		if t.sent { // they were sent with an earlier batch
			carried = nil
		}
		t.group.carry(b, carried, b.Queue(`RELEASE SAVEPOINT ledger_op`), markWrites)
		t.committed = true
		return nil
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
