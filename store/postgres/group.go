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

	"github.com/llmgate/gateway/credits"
)

// Group commit. A transaction that moves an account's money holds the
// account's row lock until its COMMIT, whose WAL flush is most of its
// time: one transaction per call would serialize an account's calls on
// commit flushes. So Reserve, Settle, Release, Flush and Record are queued
// to one of the Store's lanes, by account; a lane's writer goroutine,
// started when the lane has work and ending when it has none, runs what is
// queued when it is free (no waiting for more) as one transaction: BEGIN;
// lock the rows of every account the batch touches, by account ID; each
// operation in a savepoint of its own, rolled back alone when the
// operation fails; COMMIT. Each caller gets its operation's result after
// the COMMIT. A lone operation runs in a transaction of its own, as it
// would without a lane.
//
// An operation's lane is its account's (for Settle, Release and Flush,
// the account this Store reserved the hold for, else the record's account
// or the hold's ID), so an account's calls on one replica share
// transactions, while the lanes of different accounts run in parallel,
// each on a connection of the pool.
//
// Lock order: every transaction that moves money locks its accounts' rows
// in account ID order (Purchase and Sweep lock one), so the batches of
// many replicas cannot deadlock on them. An account created or a hold
// reserved by another replica after a batch took its locks is locked
// later, by its operation: a rare deadlock the server then breaks fails
// that operation (or the batch's locks, which are tried again) with
// credits.ErrUnavailable. So can two batches of different replicas that
// insert the same hold or record IDs in opposite orders.
const (
	lanes         = 64
	maxBatch      = 64               // operations in one transaction
	queueSize     = 2 * maxBatch     // operations waiting in one lane
	batchTimeout  = 30 * time.Second // one batch: connection, locks, operations, COMMIT
	lockAttempts  = 3                // of a batch's locks, broken by a deadlock
	maxHoldRoutes = 1 << 14          // holds whose account a Store remembers
)

// errStoreClosed fails the ledger's writes once the store is closed.
var errStoreClosed = fmt.Errorf("%w: the store is closed", credits.ErrUnavailable)

// States of a ledgerOp.
const (
	opQueued    int32 = iota
	opRunning         // a writer started it: its caller no longer decides
	opAbandoned       // its caller's ctx ended first: it never runs
)

// target is what an operation locks, and which lane runs it.
type target struct {
	account string // an account whose row to lock
	hold    string // a hold whose account's row to lock
	// The lane's key when the account is not known: a Settle's
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

// lane is a queue of operations and its writer. running is true while a
// caller runs its operation alone or a writer runs the queue; whoever
// clears it looks at the queue after, so a queued operation always has a
// writer.
type lane struct {
	queue   chan *ledgerOp
	running atomic.Bool
}

// laneFor returns the lane of t's account: for a hold, the account this
// Store reserved it for, else t.route, else the hold's ID stands for it.
func (s *Store) laneFor(t target) *lane {
	key := t.account
	if key == "" && t.hold != "" {
		key = s.routes.get(t.hold)
	}
	for _, k := range [...]string{t.route, t.hold} {
		if key == "" {
			key = k
		}
	}
	return &s.lanes[maphash.String(s.seed, key)%lanes]
}

// grouped runs fn, as operation name on target t, and returns its error,
// or the error that kept its transaction from committing. fn must end
// with t.commit; its results are the caller's once grouped returned nil.
//
// When t's lane is idle, fn runs at once in a transaction of its own, in
// this goroutine, as it would without a lane. Else it is queued, and runs
// in a savepoint of the next transaction of the lane's writer; fn may
// then run again when it made no change: it must start over each time.
// When ctx ends while the operation is queued, it is not run and grouped
// returns ctx's error (wrapped as failCredits does). When ctx ends while
// it runs in a writer's batch, grouped returns at once with that error
// too, and the operation may still commit with its batch: its outcome is
// unknown, and repeating the call with the same hold or record ID is safe
// (they are idempotent).
func (s *Store) grouped(ctx context.Context, name string, t target, fn func(t *pipeTx) error) error {
	if err := ctx.Err(); err != nil {
		return failCredits(ctx, name, err)
	}
	l := s.laneFor(t)
	switch alone, err := s.claim(l); {
	case err != nil:
		return fmt.Errorf("postgres: %s: %w", name, err)
	case alone:
		err := s.pipelined(ctx, name, fn)
		if s.idle(l) { // calls queued meanwhile
			go s.write(l)
		}
		return err
	}
	op := &ledgerOp{ctx: ctx, name: name, target: t, run: fn, done: make(chan error, 1)}
	select {
	case l.queue <- op:
	case <-ctx.Done():
		return failCredits(ctx, name, ctx.Err())
	}
	if start, err := s.claim(l); start {
		go s.write(l)
	} else if err != nil && op.state.CompareAndSwap(opQueued, opAbandoned) {
		// Closed, and no writer took op.
		return fmt.Errorf("postgres: %s: %w", name, err)
	}
	select {
	case err := <-op.done:
		return err
	case <-ctx.Done():
		op.state.CompareAndSwap(opQueued, opAbandoned) // else it is running: see above
		return failCredits(ctx, name, ctx.Err())
	}
}

// claim makes the caller l's writer, and reports whether it did: false
// when a writer runs. It fails with errStoreClosed after Close.
func (s *Store) claim(l *lane) (bool, error) {
	s.closeMu.RLock()
	defer s.closeMu.RUnlock()
	select {
	case <-s.done:
		return false, errStoreClosed
	default:
	}
	if !l.running.CompareAndSwap(false, true) {
		return false, nil
	}
	s.writers.Add(1)
	return true, nil
}

// idle ends the caller's turn as l's writer, and reports whether it must
// go on: when calls were queued since it last looked, and no one else
// claimed l.
func (s *Store) idle(l *lane) bool {
	l.running.Store(false)
	if len(l.queue) > 0 && l.running.CompareAndSwap(false, true) {
		return true
	}
	s.writers.Done()
	return false
}

// write is a lane's writer: it runs what is queued, up to maxBatch at a
// time, until the queue is empty; after Close it fails what is queued.
func (s *Store) write(l *lane) {
	batch := make([]*ledgerOp, 0, maxBatch)
	for {
		batch = batch[:0]
	take:
		for len(batch) < maxBatch {
			select {
			case op := <-l.queue:
				batch = append(batch, op)
			default:
				break take
			}
		}
		if len(batch) == 0 {
			if !s.idle(l) {
				return
			}
			continue
		}
		select {
		case <-s.done:
			for _, op := range batch {
				op.done <- fmt.Errorf("postgres: %s: %w", op.name, errStoreClosed)
			}
		default:
			s.runBatch(batch)
		}
		clear(batch) // no references to finished ops
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
//
// An operation's writes are carried to the next one's first batch (see
// pipeTx), so n operations cost about n+1 round trips. When carried
// writes fail, the next operation's statements were not run: the failed
// operation's savepoint is rolled back and the operations after it run
// again (their functions start over).
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

	g := s.beginGroup(ops)
	attempts := 1
	// failed handles the carried statements of marks, sent with err:
	// it reports whether they all succeeded, else where to go on from
	// (-1: nowhere, the batch is over).
	failed := func(marks []mark, err error) (next int, ok bool) {
		for _, m := range marks {
			if *m.ok {
				continue
			}
			switch m.kind {
			case markWrites:
				errs[m.op] = failCredits(ctx, ops[m.op].name, err)
				g.rollback()
				return m.op + 1, false
			case markBegin:
				rollback(ctx, conn)
				if attempts < lockAttempts && deadlocked(err) {
					attempts++
					g = s.beginGroup(ops)
					return 0, false
				}
			}
			lost(err)
			rollback(ctx, conn)
			return -1, false
		}
		return 0, true
	}
	for i := 0; ; {
		for ; i < len(ops); i++ {
			op := ops[i]
			if !ran[i] {
				if !op.start() {
					errs[i] = failCredits(op.ctx, op.name, op.ctx.Err())
					continue
				}
				ran[i] = true
			}
			t := &pipeTx{ctx: ctx, conn: conn, op: op.name, group: g}
			g.op = i
			err := op.run(t)
			if t.sent {
				if next, ok := failed(t.carried, t.sendErr); !ok {
					if next < 0 {
						return
					}
					i = next - 1
					continue
				}
			} else if t.carried != nil && !t.committed {
				lost(errCarryDropped) // a bug: fn dropped its first batch
				rollback(ctx, conn)
				return
			}
			if err == nil && !t.committed {
				err = errNotCommitted
			}
			if err != nil && t.begun {
				g.rollback()
			}
			errs[i] = err
		}
		b, marks := g.take()
		b.Queue(`COMMIT`).Exec(func(ct pgconn.CommandTag) error {
			if ct.String() != "COMMIT" { // the server rolled back instead
				return fmt.Errorf("commit answered %q", ct.String())
			}
			return nil
		})
		err := conn.SendBatch(ctx, b).Close()
		next, ok := failed(marks, err)
		switch {
		case !ok && next < 0:
			return
		case !ok:
			i = next
		case err != nil:
			lost(err)
			rollback(ctx, conn)
			return
		default:
			return
		}
	}
}

// errCarryDropped is a bug: an operation's function returned after making
// its first batch without sending or committing it.
var errCarryDropped = errors.New("postgres: an operation dropped the statements it carried")

// markKind says what a group of carried statements is.
type markKind int

const (
	markBegin    markKind = iota // BEGIN and the batch's locks
	markWrites                   // an operation's last statements and RELEASE SAVEPOINT
	markRollback                 // ROLLBACK TO SAVEPOINT and RELEASE SAVEPOINT of a failed one
)

// mark ends a group of carried statements: ok is set once its last
// statement succeeded, and so every one before it.
type mark struct {
	kind markKind
	op   int // the operation's index in the batch
	ok   *bool
}

// groupTx is a writer's transaction: the statements carried to the next
// batch sent, and the operation running.
type groupTx struct {
	op      int
	carried *pgx.Batch
	marks   []mark // of carried, in order
}

// beginGroup returns a groupTx that carries BEGIN and the locks of the
// rows of the accounts ops touch, by account ID.
func (s *Store) beginGroup(ops []*ledgerOp) *groupTx {
	var accounts, holds []string
	for _, op := range ops {
		if op.target.account != "" {
			accounts = append(accounts, op.target.account)
		}
		if op.target.hold != "" {
			holds = append(holds, op.target.hold)
		}
	}
	g := &groupTx{}
	b := &pgx.Batch{}
	last := b.Queue(beginReadCommitted)
	if len(accounts) > 0 || len(holds) > 0 {
		last = b.Queue(s.cq.lockAccounts, accounts, holds)
	}
	g.carry(b, nil, last, markBegin)
	return g
}

// take returns the carried statements (an empty batch when none) and
// their marks, and carries nothing more.
func (g *groupTx) take() (*pgx.Batch, []mark) {
	b, marks := g.carried, g.marks
	g.carried, g.marks = nil, nil
	if b == nil {
		b = &pgx.Batch{}
	}
	return b, marks
}

// carry carries b, whose first statements marks end, with last (queued
// last in b) ending the running operation's statements of kind.
func (g *groupTx) carry(b *pgx.Batch, marks []mark, last *pgx.QueuedQuery, kind markKind) {
	ok := new(bool)
	last.Exec(func(pgconn.CommandTag) error {
		*ok = true
		return nil
	})
	g.carried, g.marks = b, append(marks, mark{kind: kind, op: g.op, ok: ok})
}

// rollback carries the rollback of the running operation's savepoint,
// after what is carried already.
func (g *groupTx) rollback() {
	b, marks := g.take()
	b.Queue(`ROLLBACK TO SAVEPOINT ledger_op`)
	g.carry(b, marks, b.Queue(`RELEASE SAVEPOINT ledger_op`), markRollback)
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
