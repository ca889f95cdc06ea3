// Package postgres is llmgate's store on PostgreSQL, for many gateway
// replicas sharing one database: a keys.KeyStore with the keys.Watcher
// capability (LISTEN/NOTIFY), so a key updated or deleted on one replica
// leaves every replica's cache at once, and a credits.Store (the prepaid
// credits ledger and the usage records) that is also a credits.Leaser.
//
// Open connects a pool (github.com/jackc/pgx/v5), creates the schema and
// applies the embedded migrations, safely when many replicas start at once.
// Every table lives in one schema (Options.Schema, "llmgate" by default),
// so one database can host several stores.
//
// # Credits
//
// Every call that moves an account's money (Purchase, Reserve, Settle,
// Release, Flush, Sweep) runs in one READ COMMITTED transaction that first
// locks the account's row (SELECT ... FOR UPDATE): calls of one account
// serialize across every replica and pool, so no interleaving holds or
// spends more than the account has, while different accounts proceed in
// parallel. The transaction is pipelined: BEGIN, the lock and the reads go
// in one round trip, the writes and COMMIT in another. Times come from
// Options.Now, not the database's clock.
//
// Group commit: while a call of an account runs, the account's next
// Reserve, Settle, Release, Flush and Record calls on this Store queue,
// and then run together in one transaction (each in a savepoint, so a
// failure is its own; the accounts' rows locked in ID order first),
// sharing one COMMIT's WAL flush. Every call is committed when it returns
// nil. A call whose ctx ends while queued does not run; one whose ctx ends
// while its batch runs returns ctx's error, and may have committed:
// calling it again with the same hold or record ID (and Seq, for Flush)
// is safe.
//
// Errors: keys.ErrNotFound, keys.ErrConflict (a unique violation),
// keys.ErrInvalid (a *keys.ValidationError), and keys.ErrUnavailable for a
// database that cannot answer (connection refused or lost, timeout, closed
// store, serialization failure): those may be retried. The credits
// methods return the credits package's errors instead (credits.ErrConflict,
// credits.ErrUnavailable, ...). A canceled ctx returns an error wrapping
// ctx.Err().
package postgres

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/llmgate/gateway/credits"
	"github.com/llmgate/gateway/keys"
)

// DefaultSchema is the schema of a store whose Options.Schema is empty.
const DefaultSchema = "llmgate"

// Options configures a Store. The zero Options is valid: the system clock
// DefaultSchema and no logging.
type Options struct {
	// Now is the clock of CreatedAt and UpdatedAt, and of the credits
	// ledger (purchases, holds, expiries, transactions); nil means
	// time.Now.
	// The store keeps its readings in UTC, truncated to the microsecond
	// (PostgreSQL's timestamptz precision).
	Now func() time.Time
	// Schema is the PostgreSQL schema every table lives in, created if
	// missing: a lower-case letter or underscore, then up to 39 lower-case
	// letters, digits or underscores. "" means DefaultSchema.
	Schema string
	// Logger receives Watch's reconnections; nil discards them.
	Logger *slog.Logger
}

// schemaName is what Options.Schema may be: a plain identifier that needs
// no quoting and leaves room in a 63-byte name for the notification
// channel's suffix.
var schemaName = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,39}$`)

// Store is a keys.KeyStore, keys.Watcher and credits.Store on PostgreSQL.
// It is safe for concurrent use by many goroutines, and by many Stores on
// one database; create it with Open and release it with Close. The zero
// Store is not usable.
type Store struct {
	pool    *pgxpool.Pool
	conn    *pgx.ConnConfig // for Watch's dedicated connection
	now     func() time.Time
	log     *slog.Logger
	schema  string
	channel string // LISTEN/NOTIFY channel of key changes
	q       queries
	cq      creditQueries

	// The ledger's lanes and their writers (group.go).
	lanes   [lanes]lane
	seed    maphash.Seed // routes accounts to lanes
	routes  holdRoutes
	writers sync.WaitGroup // the lanes' running writers

	closeOnce sync.Once
	closeMu   sync.RWMutex  // Close holds it to close done; wake to start a writer
	done      chan struct{} // closed by Close: ends every Watch and writer
}

// Open connects to the database at dsn (a PostgreSQL URL or keyword/value
// string, see pgxpool.ParseConfig: pool sizes are set there, e.g.
// pool_max_conns=20), creates the schema if missing and applies the
// migrations this version knows. It fails when the database holds a
// schema version newer than this code (a newer llmgate migrated it).
// Connection failures wrap keys.ErrUnavailable.
func Open(ctx context.Context, dsn string, o Options) (*Store, error) {
	if o.Schema == "" {
		o.Schema = DefaultSchema
	}
	if !schemaName.MatchString(o.Schema) {
		return nil, fmt.Errorf("postgres: schema %q: want a lower-case identifier of at most 40 characters", o.Schema)
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	s := &Store{
		pool:    pool,
		conn:    cfg.ConnConfig,
		now:     o.Now,
		log:     o.Logger,
		schema:  o.Schema,
		channel: o.Schema + "_gateway_keys",
		q:       newQueries(o.Schema),
		cq:      newCreditQueries(o.Schema),
		seed:    maphash.MakeSeed(),
		routes:  holdRoutes{m: map[string]string{}},
		done:    make(chan struct{}),
	}
	for i := range s.lanes {
		s.lanes[i].queue = make(chan *ledgerOp, queueSize)
	}
	if err := s.migrate(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	return s, nil
}

// Close closes the pool and ends every Watch; later calls fail with
// keys.ErrUnavailable (credits.ErrUnavailable). The ledger's writers
// finish the transactions they are running and fail the calls still
// queued. It waits for them and for connections in use to be released
// and returns nil; calling it again does nothing.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.closeMu.Lock()
		close(s.done)
		s.closeMu.Unlock()
		s.writers.Wait()
		s.pool.Close()
	})
	return nil
}

// Ping makes one round trip to the database on a pooled connection
// (keys.Pinger), for readiness probes. It fails with keys.ErrUnavailable
// after Close or when the database does not answer.
func (s *Store) Ping(ctx context.Context) error {
	select {
	case <-s.done:
		return fmt.Errorf("postgres: ping: %w: the store is closed", keys.ErrUnavailable)
	default:
	}
	if err := s.pool.Ping(ctx); err != nil {
		return fail(ctx, "ping", err)
	}
	return nil
}

// Schema returns the schema the store's tables live in.
func (s *Store) Schema() string { return s.schema }

// Compile-time checks of the capabilities Store provides.
var (
	_ keys.KeyStore = (*Store)(nil)
	_ keys.Watcher  = (*Store)(nil)
	_ keys.Closer   = (*Store)(nil)
	_ keys.Pinger   = (*Store)(nil)
)

// stamp returns the store clock's reading as stored: UTC, microseconds.
func (s *Store) stamp() time.Time { return dbTime(s.now()) }

// dbTime returns t as PostgreSQL stores it: UTC, truncated to the
// microsecond. The zero time stays zero.
func dbTime(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return t.UTC().Truncate(time.Microsecond)
}

// PostgreSQL error codes (SQLSTATE) the store reacts to.
const (
	codeUniqueViolation     = "23505"
	codeForeignKeyViolation = "23503"
)

// fail wraps err, from the key store's operation op, in the error a caller
// matches: ctx's error when ctx ended, keys.ErrConflict for a unique
// violation, keys.ErrUnavailable when the database could not answer. Other
// server errors (a bug, a broken schema) are returned wrapped as they are.
func fail(ctx context.Context, op string, err error) error {
	return wrapFailure(ctx, op, err, keys.ErrConflict, keys.ErrUnavailable)
}

// failCredits is fail for the credits ledger's operations: it wraps
// credits.ErrConflict and credits.ErrUnavailable instead.
func failCredits(ctx context.Context, op string, err error) error {
	return wrapFailure(ctx, op, err, credits.ErrConflict, credits.ErrUnavailable)
}

// wrapFailure maps err as fail describes, with the sentinels of the
// caller's contract: errConflict for a unique violation, errUnavailable
// for a database that could not answer.
func wrapFailure(ctx context.Context, op string, err, errConflict, errUnavailable error) error {
	if cerr := ctx.Err(); cerr != nil {
		if errors.Is(cerr, context.DeadlineExceeded) {
			return fmt.Errorf("postgres: %s: %w: %w", op, errUnavailable, cerr)
		}
		return fmt.Errorf("postgres: %s: %w", op, cerr)
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch {
		case pgErr.Code == codeUniqueViolation:
			return fmt.Errorf("postgres: %s: %w: %s", op, errConflict, pgErr.ConstraintName)
		case retryable(pgErr.Code):
			return fmt.Errorf("postgres: %s: %w: %w", op, errUnavailable, err)
		}
		return fmt.Errorf("postgres: %s: %w", op, err)
	}
	// Anything that is not the server's answer — a refused or lost
	// connection, a timeout, the closed pool — is a failure to answer.
	return fmt.Errorf("postgres: %s: %w: %w", op, errUnavailable, err)
}

// retryable reports whether a SQLSTATE says the database could not answer
// now but may later: connection exceptions (08), transaction rollbacks
// such as deadlocks and serialization failures (40), insufficient
// resources (53), operator intervention such as a shutdown (57) and
// system errors (58).
func retryable(code string) bool {
	for _, class := range [...]string{"08", "40", "53", "57", "58"} {
		if strings.HasPrefix(code, class) {
			return true
		}
	}
	return false
}

// inTx runs fn in a transaction and commits it when fn returns nil, or
// rolls it back. Errors of begin and commit are mapped by fail; fn maps
// its own.
func (s *Store) inTx(ctx context.Context, op string, fn func(tx pgx.Tx) error) error {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return fail(ctx, op, err)
	}
	// After Commit, a no-op; with ctx ended, pgx closes the connection,
	// which ends the transaction on the server.
	defer func() { _ = tx.Rollback(ctx) }()
	if err := fn(tx); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return fail(ctx, op, err)
	}
	return nil
}
