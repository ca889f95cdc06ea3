package postgres

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/llmgate/gateway/credits"
)

// Group commit. A transaction that moves an account's money holds the
// account's row lock until its COMMIT, whose WAL flush is most of its
// time: one transaction per call would serialize an account's calls on
// commit flushes. So Reserve, Settle, Release and Record are queued to one
// of the Store's writers, which runs what is queued when it is free (no
// waiting for more) as one transaction: BEGIN; lock the rows of every
// account the batch touches, by account ID; each operation in a savepoint
// of its own, rolled back alone when the operation fails; COMMIT. Each
// caller gets its operation's result after the COMMIT.
//
// An operation goes to the writer of its account (for Settle and Release,
// the account this Store reserved the hold for, else the hold's ID), so an
// account's calls on one replica share transactions, and different
// accounts still proceed in parallel on the writers' connections.
//
// Lock order: every transaction that moves money locks its accounts' rows
// in account ID order (Purchase and Sweep lock one), so the batches of
// many replicas cannot deadlock on them. An account created or a hold
// reserved by another replica after a batch took its locks is locked
// later, by its operation: a rare deadlock the server then breaks fails
// that operation (or the batch's lock statement, which is retried) with
// credits.ErrUnavailable. So can two batches of different replicas that
// insert the same hold or record IDs in opposite orders.
const (
	maxBatch      = 64               // operations in one transaction
	queueSize     = 4 * maxBatch     // operations waiting for one writer
	batchTimeout  = 30 * time.Second // one batch: connection, locks, operations, COMMIT
	lockAttempts  = 3                // of a batch's locks, broken by a deadlock
	maxHoldRoutes = 1 << 14          // holds whose account a Store remembers
	maxWriters    = 8
)

// errStoreClosed fails the ledger's writes once the store is closed.
var errStoreClosed = fmt.Errorf("%w: the store is closed", credits.ErrUnavailable)

// States of a ledgerOp.
const (
	opQueued    int32 = iota
	opRunning         // a writer started it: its caller no longer decides
	opAbandoned       // its caller's ctx ended first: it never runs
)

// target is what an operation locks, and which writer runs it.
type target struct {
	account string // an account whose row to lock
	hold    string // a hold whose account's row to lock
	// The writer's key when the account is not known: a Settle's
	// record's account, a Record's account or ID.
	route string
}

// ledgerOp is one call waiting for, or run by, a writer.
type ledgerOp struct {
	ctx    context.Context // the caller's: checked before the operation starts
	name   string          // "reserve", ...: for errors
	target target
	run    func(t *pipeTx) error // in a savepoint; ends with t.commit
	state  atomic.Int32
	done   chan error // the result; buffered, so the writer never waits
}

// start moves op from queued to running, and reports whether it did: an
// op whose caller gave up or whose ctx ended is not run.
func (op *ledgerOp) start() bool {
	return op.ctx.Err() == nil && op.state.CompareAndSwap(opQueued, opRunning)
}

// writer runs the operations of its queue, a batch at a time.
type writer struct {
	queue   chan *ledgerOp
	stopped chan struct{} // closed when the writer returns
}

// startWriters starts n writers, which stop on Close.
func (s *Store) startWriters(n int) {
	s.seed = maphash.MakeSeed()
	s.routes = holdRoutes{m: map[string]string{}}
	for range n {
		w := &writer{queue: make(chan *ledgerOp, queueSize), stopped: make(chan struct{})}
		s.writers = append(s.writers, w)
		go s.write(w)
	}
}

// write is a writer's loop: it takes what is queued, up to maxBatch, and
// runs it; after Close it fails what is left in its queue.
func (s *Store) write(w *writer) {
	defer close(w.stopped)
	batch := make([]*ledgerOp, 0, maxBatch)
	for {
		select {
		case op := <-w.queue:
			batch = append(batch[:0], op)
		more:
			for len(batch) < maxBatch {
				select {
				case op := <-w.queue:
					batch = append(batch, op)
				default:
					break more
				}
			}
			s.runBatch(batch)
			clear(batch) // no references to finished ops
		case <-s.done:
			for {
				select {
				case op := <-w.queue:
					op.done <- fmt.Errorf("postgres: %s: %w", op.name, errStoreClosed)
				default:
					return
				}
			}
		}
	}
}

// writerFor returns the writer of t's account: for a hold, the account
// this Store reserved it for, else t.route, else the hold's ID stands for
// it.
func (s *Store) writerFor(t target) *writer {
	key := t.account
	if key == "" && t.hold != "" {
		key = s.routes.get(t.hold)
	}
	for _, k := range [...]string{t.route, t.hold} {
		if key == "" {
			key = k
		}
	}
	return s.writers[maphash.String(s.seed, key)%uint64(len(s.writers))]
}

// grouped runs fn, as operation name on target t, in a savepoint of the
// next transaction of t's writer, and returns fn's error, or the COMMIT's
// when fn succeeded and the transaction did not commit. fn must end with
// t.commit, which releases the savepoint; its results are the caller's
// once grouped returned nil.
//
// When ctx ends while the operation is queued, it is not run and grouped
// returns ctx's error (wrapped as failCredits does). When ctx ends while
// it runs, grouped returns at once with that error too, and the operation
// may still commit with its batch: its outcome is unknown, and repeating
// the call with the same hold or record ID is safe (they are idempotent).
func (s *Store) grouped(ctx context.Context, name string, t target, fn func(t *pipeTx) error) error {
	if err := ctx.Err(); err != nil {
		return failCredits(ctx, name, err)
	}
	select {
	case <-s.done:
		return fmt.Errorf("postgres: %s: %w", name, errStoreClosed)
	default:
	}
	op := &ledgerOp{ctx: ctx, name: name, target: t, run: fn, done: make(chan error, 1)}
	w := s.writerFor(t)
	select {
	case w.queue <- op:
	case <-ctx.Done():
		return failCredits(ctx, name, ctx.Err())
	case <-s.done:
		return fmt.Errorf("postgres: %s: %w", name, errStoreClosed)
	}
	select {
	case err := <-op.done:
		return err
	case <-ctx.Done():
		op.state.CompareAndSwap(opQueued, opAbandoned) // else it is running: see above
		return failCredits(ctx, name, ctx.Err())
	case <-w.stopped:
		// Every op the writer took got its result before it stopped.
		select {
		case err := <-op.done:
			return err
		default:
			return fmt.Errorf("postgres: %s: %w", name, errStoreClosed)
		}
	}
}

// runBatch runs ops in one transaction and sends each its result. A lone
// op runs in a transaction of its own, as a call without a writer would:
// it needs no savepoint, and its single lock no ordering, so it costs
// the round trips of its own statements and none more.
func (s *Store) runBatch(ops []*ledgerOp) {
	ctx, cancel := context.WithTimeout(context.Background(), batchTimeout)
	defer cancel()
	if op := ops[0]; len(ops) == 1 {
		if !op.start() {
			op.done <- failCredits(op.ctx, op.name, op.ctx.Err())
			return
		}
		op.done <- s.pipelined(ctx, op.name, op.run)
		return
	}
	errs := make([]error, len(ops))
	s.writeBatch(ctx, ops, errs)
	for i, op := range ops {
		op.done <- errs[i]
	}
}

// writeBatch runs ops in one transaction on a connection of the pool and
// sets errs[i] to the result of ops[i]: its own error, its ctx's when it
// did not start, or, when the transaction did not commit, the error that
// prevented it (for every op that ran: what an op read may have depended
// on what an earlier one wrote).
func (s *Store) writeBatch(ctx context.Context, ops []*ledgerOp, errs []error) {
	ran := make([]bool, len(ops))
	lost := func(err error) { // the transaction will not commit
		for i, op := range ops {
			if ran[i] || errs[i] == nil {
				errs[i] = failCredits(ctx, op.name, err)
			}
		}
	}
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		lost(err)
		return
	}
	// Release drops a connection still in a transaction, or busy.
	defer conn.Release()
	for attempt := 1; ; attempt++ {
		err := s.lockTargets(ctx, conn, ops)
		if err == nil {
			break
		}
		rollback(ctx, conn)
		if attempt == lockAttempts || !deadlocked(err) {
			lost(err)
			return
		}
	}
	for i, op := range ops {
		if !op.start() {
			errs[i] = failCredits(op.ctx, op.name, op.ctx.Err())
			continue
		}
		ran[i] = true
		t := &pipeTx{ctx: ctx, conn: conn, op: op.name, savepoint: true}
		err := op.run(t)
		if err == nil && !t.committed {
			err = errNotCommitted
		}
		if err != nil && t.begun {
			// Simple protocol, one round trip.
			if _, rerr := conn.Exec(ctx, rollbackSavepoint+"; "+releaseSavepoint); rerr != nil {
				lost(rerr)
				rollback(ctx, conn)
				return
			}
		}
		errs[i] = err
	}
	if err := commit(ctx, conn); err != nil {
		lost(err)
		rollback(ctx, conn)
	}
}

// lockTargets begins the batch's transaction and locks the rows of the
// accounts its operations touch, by account ID, in one round trip.
func (s *Store) lockTargets(ctx context.Context, conn *pgxpool.Conn, ops []*ledgerOp) error {
	var accounts, holds []string
	for _, op := range ops {
		if op.target.account != "" {
			accounts = append(accounts, op.target.account)
		}
		if op.target.hold != "" {
			holds = append(holds, op.target.hold)
		}
	}
	b := &pgx.Batch{}
	b.Queue(beginReadCommitted)
	if len(accounts) > 0 || len(holds) > 0 {
		b.Queue(s.cq.lockAccounts, accounts, holds)
	}
	return conn.SendBatch(ctx, b).Close()
}

// commit commits the transaction conn is in.
func commit(ctx context.Context, conn *pgxpool.Conn) error {
	ct, err := conn.Exec(ctx, `COMMIT`)
	if err == nil && ct.String() != "COMMIT" { // the server rolled back instead
		err = fmt.Errorf("commit answered %q", ct.String())
	}
	return err
}

// deadlocked reports whether err is a deadlock the server broke, or a
// serialization failure: trying again may succeed.
func deadlocked(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && (pgErr.Code == "40P01" || pgErr.Code == "40001")
}

// holdRoutes remembers, for routing, the accounts of the holds a Store
// reserved, until they are settled or released; at most maxHoldRoutes,
// forgetting an arbitrary one to make room. It is safe for concurrent
// use.
type holdRoutes struct {
	mu sync.Mutex
	m  map[string]string // hold ID → account
}

func (r *holdRoutes) add(hold, account string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.m[hold]; !ok && len(r.m) >= maxHoldRoutes {
		for h := range r.m {
			delete(r.m, h)
			break
		}
	}
	r.m[hold] = account
}

func (r *holdRoutes) get(hold string) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.m[hold]
}

func (r *holdRoutes) forget(hold string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.m, hold)
}
