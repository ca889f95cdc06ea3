package postgres

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/llmgate/gateway/keys"
)

// Watch timing. The listener's connection idles between notifications, so
// it is pinged every watchPing: a peer that vanished without closing the
// connection is found within watchPing+watchPingTimeout, not at the
// operating system's keepalive.
const (
	watchPing        = 30 * time.Second
	watchPingTimeout = 10 * time.Second
	watchMinBackoff  = 50 * time.Millisecond
	watchMaxBackoff  = 5 * time.Second
)

// WatchApplicationName is the application_name of Watch's connection, as
// pg_stat_activity shows it.
const WatchApplicationName = "llmgate-keys-watch"

// errClosed ends a Watch when the store is closed.
var errClosed = errors.New("postgres: store closed")

// Watch calls changed with the token hash of each gateway key that is
// updated or deleted, or whose attached keys change, through any Store on
// this database and schema (this one included), until ctx ends: it
// returns ctx.Err() then, or an error wrapping keys.ErrUnavailable when
// the store is closed. Calls to changed come from one goroutine, one at a
// time; changed should be quick (drop a cache entry).
//
// Watch holds one dedicated connection (not from the pool) that LISTENs
// on the schema's channel; the writes send pg_notify in the statement or
// transaction that makes the change, so a notification is sent exactly
// when the change commits. When the connection is lost, Watch reconnects
// with exponential backoff (50 ms to 5 s, jittered) until ctx ends.
//
// The bound this gives a cache of Lookup answers: a change on one replica
// reaches the others within the notification latency (milliseconds)
// while the listener is connected. Notifications sent while it is
// disconnected are lost (PostgreSQL does not queue them for a listener
// that is gone), so then only the cache's TTL bounds how long a revoked
// key keeps working.
func (s *Store) Watch(ctx context.Context, changed func(hash [32]byte)) error {
	parent := ctx
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	go func() { // ends when Watch returns
		select {
		case <-s.done:
			cancel(errClosed)
		case <-ctx.Done():
		}
	}()
	delay := watchMinBackoff
	for {
		connected, err := s.listen(ctx, changed)
		if ctx.Err() != nil {
			if perr := parent.Err(); perr != nil {
				return perr
			}
			return fmt.Errorf("postgres: watch: %w: %w", keys.ErrUnavailable, context.Cause(ctx))
		}
		if connected {
			delay = watchMinBackoff
		}
		s.log.Warn("postgres: keys watch: connection lost, reconnecting", "error", err, "after", delay)
		t := time.NewTimer(delay/2 + rand.N(delay/2+1))
		delay = min(2*delay, watchMaxBackoff)
		select {
		case <-ctx.Done():
			t.Stop()
		case <-t.C:
		}
	}
}

// listen connects, LISTENs and calls changed for each notification until
// the connection fails or ctx ends. connected reports whether LISTEN
// succeeded (the backoff starts over).
func (s *Store) listen(ctx context.Context, changed func(hash [32]byte)) (connected bool, err error) {
	cfg := s.conn.Copy()
	if cfg.RuntimeParams == nil {
		cfg.RuntimeParams = map[string]string{}
	}
	cfg.RuntimeParams["application_name"] = WatchApplicationName
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return false, err
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
		defer cancel()
		_ = conn.Close(cctx)
	}()
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{s.channel}.Sanitize()); err != nil {
		return false, err
	}
	for {
		wctx, cancel := context.WithTimeout(ctx, watchPing)
		n, err := conn.WaitForNotification(wctx)
		cancel()
		switch {
		case ctx.Err() != nil:
			return true, ctx.Err()
		case err != nil && errors.Is(err, context.DeadlineExceeded) && !conn.IsClosed():
			// Idle for watchPing: check the connection is alive.
			pctx, cancel := context.WithTimeout(ctx, watchPingTimeout)
			err = conn.Ping(pctx)
			cancel()
			if err != nil {
				return true, err
			}
			continue
		case err != nil:
			return true, err
		}
		var hash [32]byte
		if len(n.Payload) == 2*len(hash) {
			if _, err := hex.Decode(hash[:], []byte(n.Payload)); err == nil {
				changed(hash)
			}
		}
	}
}
