// Package sqlite is llmgate's embedded default store: a keys.KeyStore and
// a credits.Store on one SQLite database file, with the pure-Go driver
// modernc.org/sqlite (no cgo). It suits one gateway process; several
// replicas share keys and credits through store/postgres instead.
//
// # DSN
//
// Open takes a file path ("/var/lib/llmgate/llmgate.db") or a SQLite URI
// ("file:/var/lib/llmgate/llmgate.db?cache=private"); the file is created
// when missing. Driver parameters of modernc.org/sqlite ("_pragma=...") may
// be appended; Open adds its own. ":memory:" (or a URI with mode=memory)
// opens a private in-memory database on a single connection, for tests.
//
// # Durability and concurrency
//
// Every connection runs with journal_mode=WAL, synchronous=NORMAL (a
// commit is durable once the WAL is synced at checkpoint; a power loss can
// lose the last transactions but never corrupts the file), foreign_keys=ON
// and busy_timeout (Options.BusyTimeout). The Store holds two pools on the
// same file: a writer of one connection whose transactions begin IMMEDIATE,
// so writes queue in Go instead of spinning on SQLite's busy handler and a
// read-then-write transaction never fails on a lock upgrade; and a reader
// pool of several connections with query_only set, which in WAL mode read a
// consistent snapshot concurrently with the writer. Lookup, Get, List and
// Attached, and the credits reads (Balance, Lots, Transactions, Accounts,
// Usage, Summary) use the readers; everything else the writer.
// busy_timeout only matters when another process writes the same file.
// Measured for the keys with four
// goroutines on 2 CPUs, against one pool of 8 connections relying on
// busy_timeout: equal at 5% writes (≈25-30µs per operation), and 51µs
// against 71µs per operation at 50% writes (650µs against 1ms under -race),
// with no lock errors either way.
//
// # Schema
//
// The schema is created and upgraded by embedded migrations
// (migrations/NNNN_name.sql) applied in order in one transaction at Open
// and recorded in the table schema_migrations; a database written by a
// newer llmgate is refused with ErrSchemaTooNew. Times are stored as
// INTEGER unix microseconds, 0 for none; money INTEGER micro-USD.
// Migration 0001 holds the keys, 0002 the credits (accounts with running
// totals, lots, holds and what each took from which lot, transactions and
// usage records), so one file and one Store serve both; 0003 lets a hold be
// a lease (credits.Leaser): open with nothing left, and numbering its
// flushes.
//
// # Credits
//
// Every ledger write runs in an IMMEDIATE transaction on the writer,
// whose statements are prepared once at Open: the check of the available
// money and the hold that takes it are one step under SQLite's write lock,
// so no interleaving of calls, in this process or in another on the same
// file, holds or spends more than an account has. Reserve, Settle, Release
// and Record, the writes of every request, and Flush, which writes back a
// lease's spends and usage records, share transactions in a group
// commit: one writer goroutine takes the writes queued when it becomes
// free (at most 64, without waiting for more), runs each inside a savepoint
// of its own, so that one that fails rolls back only itself, and commits
// them at once; each call returns once its batch has committed, with its
// own result. A write whose context ends while it is queued is withdrawn
// and never runs; once taken, it runs, and its caller gets its true result.
// Purchase and Sweep run in transactions of their own between batches.
// Balance reads the account's running totals and its lots with money
// left in one statement, so the identity Purchased = Available + Held +
// Spent + Expired holds in every answer. Sweep works in batches of
// transactions, so it can run beside the gateway (and on several
// processes) at any time. On 2 busy shared CPUs, a Reserve and a Settle
// with its usage record on a file take about 0.5ms of CPU one after the
// other, and 0.18-0.33ms from 16 to 64 goroutines whose writes share
// commits, 3,500-5,000 of them a second (BenchmarkReserveSettle; each
// its own transaction, they took 0.5ms at any concurrency, at most 2,100
// a second). A Flush of 100 usage records like the gateway's takes about
// 17µs of CPU a record (14µs in flushes of 1000), a thirtieth of a
// Reserve and Settle (BenchmarkFlush). SQLite's automatic WAL checkpoint
// would run in the commit of every 80th request or so and wait for its
// fsyncs (hundreds of milliseconds on a contended disk, measured here):
// the Store turns it off and checkpoints from a background connection
// every Options.CheckpointInterval instead.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/llmgate/gateway/keys"
)

// Options configures Open. The zero value is ready to use.
type Options struct {
	// Now is the clock for the keys' CreatedAt and UpdatedAt and for
	// every time of the credits (purchases, holds and their expiry,
	// transactions); nil means time.Now. Its values are stored in UTC,
	// truncated to the microsecond. For the credits, a clock that goes
	// back is held at the latest time the Store read from it.
	Now func() time.Time
	// BusyTimeout is how long a statement waits for a lock held by another
	// process before failing with keys.ErrUnavailable (credits.ErrUnavailable
	// for the credits); 0 means 5s.
	BusyTimeout time.Duration
	// MaxReadConns bounds the reader pool; 0 means max(4, GOMAXPROCS).
	MaxReadConns int
	// CheckpointInterval is how often a background connection copies the
	// write-ahead log into the database file (a PASSIVE checkpoint, which
	// waits for no reader or writer); 0 means 1s. Writes then never run
	// SQLite's automatic checkpoint, whose fsyncs would stall the request
	// whose commit triggers it. Negative: no background checkpoint, and
	// SQLite's automatic one (every 1000 pages) instead. In-memory
	// databases have no log.
	CheckpointInterval time.Duration
}

// Store is a keys.KeyStore and a credits.Store on SQLite. Create one with
// Open and Close it when done. A Store is safe for concurrent use; its zero value is not
// usable.
type Store struct {
	w, r   *sql.DB // writer (one connection) and readers; the same DB in memory mode
	lookup *sql.Stmt
	// prepared holds the ledger's hot statements (preparedSQL), prepared
	// on the writer; read-only after Open.
	prepared map[string]*sql.Stmt
	// insertUsage holds, for each of usageChunks, the prepared insert of
	// that many usage records (insertUsageRowsSQL, insertUsageSQL for 1).
	insertUsage map[int]*sql.Stmt
	now         func() time.Time
	last        atomic.Int64 // the latest ledgerNow, unix microseconds

	// queue hands the ledger's hot writes to the writer goroutine, which
	// runs them in group commits (see group) until stopWriter is closed,
	// then closes writerDone.
	queue                  chan *op
	stopWriter, writerDone chan struct{}

	// ck is the background checkpointer's connection; nil without one.
	ck       *sql.DB
	stopCk   chan struct{}
	ckDone   chan struct{}
	closeErr error
	closed   sync.Once
}

var (
	_ keys.KeyStore = (*Store)(nil)
	_ keys.Pinger   = (*Store)(nil)
)

// Open opens (creating it when missing) the SQLite database at dsn, applies
// the embedded migrations and returns the Store. It fails with
// ErrSchemaTooNew when the database was written by a newer llmgate.
func Open(ctx context.Context, dsn string, o Options) (*Store, error) {
	if dsn == "" {
		return nil, errors.New("sqlite: empty DSN")
	}
	busy := o.BusyTimeout
	if busy <= 0 {
		busy = 5 * time.Second
	}
	nread := o.MaxReadConns
	if nread <= 0 {
		nread = max(4, runtime.GOMAXPROCS(0))
	}
	s := &Store{now: o.Now}
	if s.now == nil {
		s.now = time.Now
	}
	sep := "?"
	if strings.Contains(dsn, "?") {
		sep = "&"
	}
	params := "_pragma=busy_timeout(" + strconv.FormatInt(busy.Milliseconds(), 10) + ")" +
		"&_pragma=foreign_keys(1)&_pragma=synchronous(NORMAL)"
	memory := strings.Contains(dsn, ":memory:") || strings.Contains(dsn, "mode=memory")

	var err error
	if memory {
		// One connection, kept open: each connection would be its own database.
		s.w, err = sql.Open("sqlite", dsn+sep+params+"&_txlock=immediate")
		if err != nil {
			return nil, fmt.Errorf("sqlite: open: %w", err)
		}
		s.w.SetMaxOpenConns(1)
		s.w.SetMaxIdleConns(1)
		s.w.SetConnMaxLifetime(0)
		s.w.SetConnMaxIdleTime(0)
		s.r = s.w
	} else {
		// temp_store(MEMORY) keeps the sub-journal of a group commit's
		// savepoints in memory; on a file, a page a write (measured: a
		// quarter of the CPU under load).
		wparams := params + "&_pragma=journal_mode(WAL)&_pragma=temp_store(MEMORY)&_txlock=immediate"
		if o.CheckpointInterval >= 0 {
			wparams += "&_pragma=wal_autocheckpoint(0)"
		}
		s.w, err = sql.Open("sqlite", dsn+sep+wparams)
		if err != nil {
			return nil, fmt.Errorf("sqlite: open: %w", err)
		}
		s.w.SetMaxOpenConns(1)
		s.w.SetMaxIdleConns(1)
		s.w.SetConnMaxIdleTime(0)
		s.w.SetConnMaxLifetime(0)
		s.r, err = sql.Open("sqlite", dsn+sep+params+"&_pragma=query_only(1)")
		if err != nil {
			s.w.Close()
			return nil, fmt.Errorf("sqlite: open: %w", err)
		}
		s.r.SetMaxOpenConns(nread)
		s.r.SetMaxIdleConns(nread)
		s.r.SetConnMaxIdleTime(5 * time.Minute)
	}

	ms, err := loadMigrations(migrationFiles, "migrations")
	if err == nil {
		// The writer connects first: it turns the file to WAL before a
		// reader opens it.
		err = migrate(ctx, s.w, ms, s.now().UnixMicro())
	}
	if err != nil {
		s.Close()
		if errors.Is(err, ErrSchemaTooNew) {
			return nil, err
		}
		return nil, fmt.Errorf("sqlite: open %s: %w", dsn, err)
	}
	if s.lookup, err = s.r.PrepareContext(ctx, lookupSQL); err != nil {
		s.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", dsn, err)
	}
	s.prepared = make(map[string]*sql.Stmt)
	for _, q := range preparedSQL() {
		st, err := s.w.PrepareContext(ctx, q)
		if err != nil {
			s.Close()
			return nil, fmt.Errorf("sqlite: open %s: %w", dsn, err)
		}
		s.prepared[q] = st
	}
	s.insertUsage = map[int]*sql.Stmt{1: s.prepared[insertUsageSQL]}
	for _, n := range usageChunks[:len(usageChunks)-1] {
		s.insertUsage[n] = s.prepared[insertUsageRowsSQL(n)]
	}
	if !memory {
		var mode string
		if err := s.w.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil || !strings.EqualFold(mode, "wal") {
			s.Close()
			return nil, fmt.Errorf("sqlite: open %s: journal_mode is %q, not WAL: %v", dsn, mode, err)
		}
		if o.CheckpointInterval >= 0 {
			if s.ck, err = sql.Open("sqlite", dsn+sep+params); err != nil {
				s.Close()
				return nil, fmt.Errorf("sqlite: open: %w", err)
			}
			s.ck.SetMaxOpenConns(1)
			s.ck.SetMaxIdleConns(1)
			s.ck.SetConnMaxIdleTime(0)
			s.ck.SetConnMaxLifetime(0)
			every := o.CheckpointInterval
			if every == 0 {
				every = time.Second
			}
			s.stopCk, s.ckDone = make(chan struct{}), make(chan struct{})
			go s.checkpoints(every)
		}
	}
	s.queue = make(chan *op, maxBatch)
	s.stopWriter, s.writerDone = make(chan struct{}), make(chan struct{})
	go s.writer()
	return s, nil
}

// checkpoints copies the write-ahead log into the database every interval
// until Close, without blocking readers or the writer; a failure is
// retried at the next tick (the log only grows meanwhile).
func (s *Store) checkpoints(every time.Duration) {
	defer close(s.ckDone)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-s.stopCk:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), max(every, 10*time.Second))
		_, _ = s.ck.ExecContext(ctx, "PRAGMA wal_checkpoint(PASSIVE)")
		cancel()
	}
}

// Close closes the database. Calls after Close fail with
// keys.ErrUnavailable (credits.ErrUnavailable for the credits).
func (s *Store) Close() error {
	s.closed.Do(func() { s.closeErr = s.close() })
	return s.closeErr
}

func (s *Store) close() error {
	var err error
	if s.stopWriter != nil {
		close(s.stopWriter)
		<-s.writerDone
	}
	if s.stopCk != nil {
		close(s.stopCk)
		<-s.ckDone
	}
	if s.ck != nil {
		// A last checkpoint, so that the file alone holds everything.
		_, _ = s.ck.Exec("PRAGMA wal_checkpoint(PASSIVE)")
		err = s.ck.Close()
	}
	if s.lookup != nil {
		err = s.lookup.Close()
	}
	for _, st := range s.prepared {
		err = errors.Join(err, st.Close())
	}
	err = errors.Join(err, s.w.Close())
	if s.r != s.w {
		err = errors.Join(err, s.r.Close())
	}
	return err
}

// Ping checks that the database answers a query on a reader connection
// (keys.Pinger), for readiness probes. It fails with keys.ErrUnavailable
// after Close or when the database cannot be read.
func (s *Store) Ping(ctx context.Context) error {
	var one int
	if err := s.r.QueryRowContext(ctx, "SELECT 1").Scan(&one); err != nil {
		return dbError("ping", err)
	}
	return nil
}

// stamp returns the store clock's now, in UTC to the microsecond.
func (s *Store) stamp() time.Time { return s.now().UTC().Truncate(time.Microsecond) }

// dbError turns a database error of op into the keys contract: a UNIQUE or
// PRIMARY KEY violation is keys.ErrConflict, anything else
// keys.ErrUnavailable (closed database, I/O, lock timeout, cancellation).
// The driver's error stays in the chain.
func dbError(op string, err error) error {
	if isConstraint(err, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY, sqlite3.SQLITE_CONSTRAINT_UNIQUE) {
		return fmt.Errorf("sqlite: %s: %w: %w", op, keys.ErrConflict, err)
	}
	return fmt.Errorf("sqlite: %s: %w: %w", op, keys.ErrUnavailable, err)
}

// isConstraint reports whether err is a SQLite error with one of the
// (extended) result codes.
func isConstraint(err error, codes ...int) bool {
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return false
	}
	for _, c := range codes {
		if se.Code() == c {
			return true
		}
	}
	return false
}

// micros converts a time to stored unix microseconds; the zero time is 0.
func micros(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMicro()
}

// fromMicros converts stored unix microseconds to a UTC time; 0 is the
// zero time.
func fromMicros(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.UnixMicro(v).UTC()
}

// pageQuery returns the SELECT of one page of a keyset-paged list: cols
// of table where every condition of where holds, in order, and at most
// limit+1 rows (the one more tells cutPage that a next page follows). It
// appends the limit to args, which hold the conditions' arguments.
func pageQuery(cols, table string, where []string, order string, args []any, limit int) (string, []any) {
	q := `SELECT ` + cols + ` FROM ` + table
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, " AND ")
	}
	return q + ` ORDER BY ` + order + ` LIMIT ?`, append(args, limit+1)
}

// queryList runs query on the reader pool and returns its rows as scan
// reads them, in order (nil when there are none). An error of the query,
// of scan or of the iteration is returned wrapped by fail.
func queryList[T any](ctx context.Context, db *sql.DB, fail func(error) error, scan func(scanner) (T, error), query string, args ...any) ([]T, error) {
	rows, err := db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fail(err)
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, fail(err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, fail(err)
	}
	return out, nil
}

// cutPage cuts items, read with pageQuery's limit+1, to the page of at
// most limit, and returns the page's last item when a next page follows
// (nil after the last page): the caller encodes the next cursor from it.
func cutPage[T any](items []T, limit int) ([]T, *T) {
	if len(items) <= limit {
		return items, nil
	}
	items = items[:limit]
	return items, &items[limit-1]
}
