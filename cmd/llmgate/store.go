package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/llmgate/gateway/admin"
	"github.com/llmgate/gateway/config"
	"github.com/llmgate/gateway/keys"
	"github.com/llmgate/gateway/store/postgres"
	"github.com/llmgate/gateway/store/sqlite"
)

// keyStore is a keys.KeyStore that the server or a subcommand opened, and
// must close. The SQLite and PostgreSQL stores may also keep credits
// (credits.Store); the server and the credits subcommands find out with a
// type assertion.
type keyStore interface {
	keys.KeyStore
	Close() error
}

// opener opens the store a file names: openStore, or a test's.
type opener func(ctx context.Context, f *config.File, logger *slog.Logger) (keyStore, error)

// openStore opens the key store f names (store: sqlite:PATH or a
// postgres:// URL); nil, nil when f sets none. Errors name the store as
// config.File.StoreName does, without a password.
func openStore(ctx context.Context, f *config.File, logger *slog.Logger) (keyStore, error) {
	kind, dsn := f.StoreDSN()
	var (
		st  keyStore
		err error
	)
	switch kind {
	case "":
		return nil, nil
	case config.StoreSQLite:
		st, err = sqlite.Open(ctx, dsn, sqlite.Options{})
	case config.StorePostgres:
		st, err = postgres.Open(ctx, dsn, postgres.Options{Logger: logger})
	default:
		return nil, fmt.Errorf("unknown store kind %q", kind) // unreachable: config checks the scheme
	}
	if err != nil {
		return nil, fmt.Errorf("opening the key store %s: %w", f.StoreName(), err)
	}
	return st, nil
}

// adminServer serves the admin API on a listener of its own:
// /admin/v1/keys..., and /admin/v1/credits/... and /admin/v1/usage when the
// store keeps credits (package admin, with its prefix stripped), and GET
// /healthz, /readyz and /metrics. Its handler is replaced on reload
// (token, endpoint, key encryption keys); its address and store stay.
type adminServer struct {
	api  atomic.Pointer[http.Handler]
	ops  func(w http.ResponseWriter, r *http.Request) bool // serves /healthz, /readyz and /metrics
	srv  *http.Server
	addr string
	done chan struct{} // closed when Serve returns
	err  error         // what Serve returned, once done is closed
}

// newAdminHandler builds the admin API for f, on the server's store and
// gateway.
func (s *server) newAdminHandler(f *config.File) (http.Handler, error) {
	h, err := admin.New(admin.Options{
		Store:    s.store,
		Endpoint: f.EndpointName(),
		Token:    f.Admin.Token.Reveal(),
		Sealer:   s.sealerFor(f),
		Credits:  s.creditsStore(),
		OnChange: s.gw.Forget,
		Logger:   s.logger,
	})
	if err != nil {
		return nil, err
	}
	return http.StripPrefix("/admin", h), nil
}

// startAdmin starts the admin listener when the file configures one (and
// a store is open). It logs the address, never the token.
func (s *server) startAdmin() error {
	if s.file.Admin.Listen == "" || s.store == nil {
		return nil
	}
	h, err := s.newAdminHandler(s.file)
	if err != nil {
		return fmt.Errorf("admin API: %w", err)
	}
	ln, err := net.Listen("tcp", s.file.Admin.Listen)
	if err != nil {
		return fmt.Errorf("admin listener: %w", err)
	}
	a := &adminServer{addr: ln.Addr().String(), done: make(chan struct{}),
		ops: func(w http.ResponseWriter, r *http.Request) bool { return s.serveOps(w, r, true) }}
	a.api.Store(&h)
	a.srv = &http.Server{
		Handler:           a,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       time.Minute,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.logger.Handler(), slog.LevelWarn),
	}
	go func() {
		defer close(a.done)
		a.err = a.srv.Serve(ln)
	}()
	s.admin = a
	s.logger.Info("llmgate admin API listening", "addr", ln.Addr().String(), "path", "/admin/v1/keys",
		"credits", s.creditsStore() != nil, "endpoint", s.file.EndpointName(), "store", s.file.StoreName())
	return nil
}

// ServeHTTP answers GET /healthz, /readyz and /metrics and hands
// /admin/... to the admin API.
func (a *adminServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if a.ops(w, r) {
		return
	}
	(*a.api.Load()).ServeHTTP(w, r)
}

// shutdown stops the admin listener gracefully (bounded by ctx), then
// closes what is left.
func (a *adminServer) shutdown(ctx context.Context) {
	if a == nil {
		return
	}
	if a.srv.Shutdown(ctx) != nil {
		_ = a.srv.Close()
	}
	<-a.done
}

// failed returns a channel closed when the admin listener stopped serving
// on its own (its error is a.err); nil, which blocks, without an admin
// listener.
func (a *adminServer) failed() <-chan struct{} {
	if a == nil {
		return nil
	}
	return a.done
}

// reloadAdmin replaces the admin API's handler with f's (token, endpoint,
// key-encryption keys) after a reload; on failure the handler in force
// stays.
func (s *server) reloadAdmin(f *config.File) {
	if s.admin == nil {
		return
	}
	h, err := s.newAdminHandler(f)
	if err != nil {
		s.logger.Error("admin API not reloaded; the one in force stays", "err", err)
		return
	}
	s.admin.api.Store(&h)
}
