package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync/atomic"
)

// maxBatch bounds the ledger writes one group commit runs.
const maxBatch = 64

// errClosed is the cause of a ledger write that the writer goroutine did
// not run because the Store was closed.
var errClosed = errors.New("sqlite: store closed")

// The states of an op: queued until the writer takes it into a batch or
// its caller withdraws it, whichever comes first.
const (
	opQueued int32 = iota
	opTaken
	opWithdrawn
)

// op is one ledger write handed to the writer goroutine.
type op struct {
	name  string // for errors: "reserve h1"
	fn    func(t *wtx) error
	state atomic.Int32
	err   error         // the result; written before done is closed
	done  chan struct{} // closed when err is final
}

func (o *op) finish(err error) {
	o.err = err
	close(o.done)
}

// The savepoint around each op of a batch, prepared at Open.
const (
	savepointSQL = `SAVEPOINT op`
	releaseSQL   = `RELEASE op`
	rollbackSQL  = `ROLLBACK TO op`
)

// group runs fn as one ledger write in a group commit: the writer
// goroutine takes the writes queued when it becomes free (at most
// maxBatch, without waiting for more) into one IMMEDIATE transaction,
// runs each inside its own savepoint, in the order taken, and commits them
// together. A write that fails rolls back to its savepoint and changes
// nothing; the others go on. A lone write runs without a savepoint, as a
// transaction of its own. What fn sees and does is what it would see and
// do in a transaction of its own beginning where its savepoint begins:
// the writes before it in the batch are visible to it, and t.now is taken
// when it starts. group returns once the batch's COMMIT did: fn's result
// (contract errors unwrapped, others credits.ErrUnavailable), or, when
// the COMMIT or the transaction failed, that error for every write of the
// batch; nothing of a batch is half-applied.
//
// When ctx ends while the write is still queued, it is withdrawn and never
// runs, and group returns ctx.Err() (wrapped, credits.ErrUnavailable).
// Once the writer has taken it, it runs with a context of its own (a
// caller's cancellation must not interrupt the transaction the others
// share), and group waits for its batch to end, at most maxBatch short
// writes and one COMMIT, and returns its true result, nil included. So an
// error means that the write did not happen, as with a transaction of its
// own, and a retry with the same hold or record ID is safe either way. After
// Close, group fails with credits.ErrUnavailable; the writes the writer
// took before run and commit.
func (s *Store) group(ctx context.Context, name string, fn func(t *wtx) error) error {
	if err := ctx.Err(); err != nil {
		return ledgerError(name, err)
	}
	o := &op{name: name, fn: fn, done: make(chan struct{})}
	select {
	case s.queue <- o: // the channel holds up to maxBatch; beyond, wait
	case <-ctx.Done():
		return ledgerError(name, ctx.Err())
	case <-s.writerDone:
		return ledgerError(name, errClosed)
	}
	var err error
	select {
	case <-o.done:
		return o.err
	case <-ctx.Done():
		err = ctx.Err()
	case <-s.writerDone:
		err = errClosed
	}
	if o.state.CompareAndSwap(opQueued, opWithdrawn) {
		return ledgerError(name, err)
	}
	<-o.done // taken: the writer finishes it
	return o.err
}

// writer runs the queued ledger writes in batches until Close. It waits
// for one write, begins the transaction (waiting, when need be, for the
// writer connection and SQLite's write lock) and then takes whatever else
// is queued by then, up to maxBatch. Writes that a failed transaction left
// unrun stay first in line for the next batch.
func (s *Store) writer() {
	defer close(s.writerDone)
	ctx := context.Background()
	batch := make([]*op, 0, maxBatch)
	for {
		select {
		case <-s.stopWriter:
			return
		default:
		}
		if len(batch) == 0 {
			select {
			case <-s.stopWriter:
				return
			case o := <-s.queue:
				batch = append(batch, o)
			}
		}
		tx, err := s.w.BeginTx(ctx, nil)
		if err != nil {
			for _, o := range batch {
				if o.state.CompareAndSwap(opQueued, opTaken) {
					o.finish(ledgerError(o.name, err))
				}
			}
			clear(batch)
			batch = batch[:0]
			continue
		}
	fill:
		for len(batch) < maxBatch {
			select {
			case o := <-s.queue:
				batch = append(batch, o)
			default:
				break fill
			}
		}
		rest := s.runBatch(ctx, tx, batch)
		n := copy(batch, rest)
		clear(batch[n:])
		batch = batch[:n]
	}
}

// runBatch runs the ops in tx, commits it and finishes each op it took
// (the withdrawn ones it skips). When the transaction fails before their
// turn, it rolls back and returns the ops it did not take.
func (s *Store) runBatch(ctx context.Context, tx *sql.Tx, ops []*op) []*op {
	ran := make([]*op, 0, len(ops)) // each with its result in err, done still open
	fail := func(cause error) {
		for _, o := range ran {
			o.finish(ledgerError(o.name, cause))
		}
	}
	for i, o := range ops {
		if !o.state.CompareAndSwap(opQueued, opTaken) {
			continue // withdrawn
		}
		res, fatal := s.runOp(ctx, tx, o, len(ops) == 1)
		if fatal != nil {
			_ = tx.Rollback()
			fail(fatal)
			if res == nil {
				res = ledgerError(o.name, fatal)
			}
			o.finish(res)
			return ops[i+1:]
		}
		o.err = res
		ran = append(ran, o)
	}
	if err := tx.Commit(); err != nil {
		// (The driver rolls back what a failed COMMIT left open.)
		fail(err)
		return nil
	}
	for _, o := range ran {
		close(o.done)
	}
	return nil
}

// runOp runs o in tx, inside the savepoint "op" when alone is false: res
// is o's result, fatal an error that broke the transaction, so that
// nothing of it can commit (a panic of o's too). A lone op (the only one of its batch) runs
// without a savepoint, as a transaction of its own would: when it fails,
// fatal is its error too, and the transaction is rolled back.
func (s *Store) runOp(ctx context.Context, tx *sql.Tx, o *op, alone bool) (res, fatal error) {
	defer func() {
		// A panic would end the writer, and the process with it; the
		// transaction is left in an unknown state.
		if r := recover(); r != nil {
			res, fatal = nil, fmt.Errorf("sqlite: %s: panic: %v", o.name, r)
		}
	}()
	t := &wtx{ctx: ctx, tx: tx, s: s}
	if !alone {
		if _, err := t.exec(savepointSQL); err != nil {
			return nil, err
		}
	}
	t.now = s.ledgerNow()
	if err := o.fn(t); err != nil {
		if !isLedgerError(err) {
			err = ledgerError(o.name, err)
		}
		if alone {
			return err, err
		}
		if _, rerr := t.exec(rollbackSQL); rerr != nil {
			return err, rerr
		}
		if _, rerr := t.exec(releaseSQL); rerr != nil {
			return err, rerr
		}
		return err, nil
	}
	if !alone {
		if _, err := t.exec(releaseSQL); err != nil {
			return nil, err
		}
	}
	return nil, nil
}
