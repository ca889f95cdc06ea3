package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	gateway "github.com/llmgate/gateway"
	"github.com/llmgate/gateway/config"
	"github.com/llmgate/gateway/credits"
	"github.com/llmgate/gateway/keys"
)

// Modes of operation.
const (
	modeConfig = "config"
	modeEnv    = "env"
	modeDemo   = "demo"
)

// server is what setup assembles: the configuration, the gateway built
// from it, the logger, and whatever must be closed after the HTTP server
// has shut down.
type server struct {
	mode    string
	path    string              // the configuration file; "" in env and demo modes
	env     func(string) string // resolves ${env:NAME} on reload
	logger  *slog.Logger
	level   *slog.LevelVar // the logger's level, which a reload may change
	hosts   []string       // Host names allowed unless the file lists some; nil: every Host
	explain bool           // serve POST /v1/explain (-explain)
	closes  []func()

	// ops holds the metrics exporter, fed by the gateway's events, and
	// their registry; draining is set when a shutdown begins, which makes
	// /readyz answer 503.
	ops      *ops
	draining atomic.Bool

	// open opens the store (openStore, or a test's).
	open opener
	// The key store opened at start (store:), kept across reloads, and
	// the admin listener serving it (admin:). When the store also keeps
	// credits (credits.Store), every request is metered into it.
	store keyStore
	admin *adminServer
	// leasing holds credit-paid requests in memory from leases of the
	// store's credits (credits.lease), opened at start, kept across
	// reloads and closed (written back) after the gateway; nil when
	// requests hold in the store.
	leasing *credits.Leasing
	// sealer is the Sealer of sealerKEKs, reused while a reload keeps the
	// same key-encryption keys, so that the gateway keeps its key cache.
	sealer     *keys.Sealer
	sealerKEKs []config.KEK
	// events are the event sinks of the file's events, opened at start
	// and kept across reloads; closed after the gateway.
	events *config.EventSinks
	// tracer traces requests when the file has tracing; built at start,
	// kept across reloads, its provider flushed after the gateway.
	tracer gateway.Tracer

	mu   sync.Mutex   // serialises reloads
	file *config.File // the configuration in force
	gw   *gateway.Gateway
}

// setup picks the mode and reads its configuration: the file when one is
// given, else provider keys in the environment, else demo mode. The
// gateway is built by start.
func setup(configPath string, env func(string) string, stderr io.Writer) (*server, error) {
	if configPath != "" {
		f, err := config.ReadFile(configPath, env)
		if f == nil {
			return nil, err
		}
		// The file's own problems, if any, are reported by start with
		// those of gateway.New.
		s := newServer(modeConfig, f, stderr)
		s.path, s.env = configPath, env
		return s, nil
	}
	if found := envProviders(env); len(found) > 0 {
		return setupEnv(found, stderr), nil
	}
	return setupDemo(stderr)
}

func newServer(mode string, f *config.File, stderr io.Writer) *server {
	level := new(slog.LevelVar)
	level.Set(f.Log.SlogLevel())
	return &server{mode: mode, file: f, level: level, logger: f.Log.NewLogger(stderr, level), ops: newOps()}
}

// listenAddr returns the file's listen address or DefaultListen.
func (s *server) listenAddr() string {
	if s.file.Listen != "" {
		return s.file.Listen
	}
	return DefaultListen
}

// maxConnections returns the file's max_connections or
// DefaultMaxConnections.
func (s *server) maxConnections() int {
	if s.file.MaxConnections != nil {
		return *s.file.MaxConnections
	}
	return DefaultMaxConnections
}

// start opens the key store, if the file names one, and builds the
// gateway; every problem of the configuration is returned at once, placed
// in the file. A file with problems of its own opens no store.
func (s *server) start(ctx context.Context) error {
	if err := s.file.Explain(nil); err != nil {
		return s.file.Check(s.extraOptions(s.file)...)
	}
	open := s.open
	if open == nil {
		open = openStore
	}
	st, err := open(ctx, s.file, s.logger)
	if err != nil {
		return err
	}
	if st != nil {
		s.store = st
		s.closes = append(s.closes, func() {
			if err := st.Close(); err != nil {
				s.logger.Warn("closing the key store", "err", err)
			}
		})
	}
	if err := s.checkCredits(s.file); err != nil {
		return err
	}
	s.openLeasing()
	if err := s.openEvents(); err != nil {
		return err
	}
	if err := s.openTracing(); err != nil {
		return err
	}
	gw, err := gateway.New(append(s.file.Options(), s.extraOptions(s.file)...)...)
	if err := s.file.Explain(err); err != nil {
		if gw != nil {
			_ = gw.Close()
		}
		return err
	}
	s.gw = gw
	s.ops.exporter.Bind(gw)
	if s.path != "" {
		s.logger.Info("llmgate configured", "config", s.path, "providers", len(s.file.Providers))
	}
	return nil
}

// openEvents opens the sinks of the file's events and its inspector; they
// are closed after
// the gateway, each sending what it queued for at most
// eventsCloseTimeout.
func (s *server) openEvents() error {
	if len(s.file.Events) == 0 && !s.file.Inspector.Enabled {
		return nil
	}
	ev, err := s.file.OpenEventSinks(s.logger)
	if err != nil {
		return err
	}
	s.events = ev
	s.closes = append(s.closes, func() {
		ctx, cancel := context.WithTimeout(context.Background(), eventsCloseTimeout)
		defer cancel()
		if err := ev.Close(ctx); err != nil {
			s.logger.Warn("closing the event sinks", "err", err)
		}
	})
	return nil
}

// extraOptions are the server's options beside the file's: its logger,
// the request log, the event sinks and the tracer opened at start, the default allowed
// hosts of a loopback listener when the file lists none, the key store,
// and metering into the store when it keeps credits.
func (s *server) extraOptions(f *config.File) []gateway.Option {
	opts := []gateway.Option{
		gateway.WithLogger(s.logger),
		gateway.WithEventSink(gateway.SlogSink{Logger: s.logger, Level: slog.LevelInfo}),
		gateway.WithEventSink(s.ops.exporter),
	}
	if s.events != nil {
		opts = append(opts, s.events.Options()...)
	}
	opts = append(opts, s.tracerOptions()...)
	if f.AllowedHosts == nil && s.hosts != nil {
		opts = append(opts, gateway.WithAllowedHosts(s.hosts...))
	}
	if s.store != nil {
		opts = append(opts, gateway.WithKeyStore(s.store, gateway.KeyStoreOptions{
			Endpoint: f.EndpointName(),
			Optional: strings.EqualFold(f.GatewayKeys, config.GatewayKeysOptional),
			Sealer:   s.sealerFor(f),
		}))
		if l := s.ledger(); l != nil {
			opts = append(opts, gateway.WithMetering(l, f.MeteringOptions()))
		}
	}
	return opts
}

// openLeasing starts leasing the store's credits when the file's credits
// lease (credits.enabled, lease not turned off) and the store can; the
// leases are written back and given back after the gateway closes.
func (s *server) openLeasing() {
	o, on := s.file.LeasingOptions()
	ls, ok := s.store.(credits.LeaseStore)
	if !on || !ok {
		return
	}
	o.Logger = s.logger
	s.leasing = credits.NewLeasing(ls, o)
	s.logger.Info("llmgate: credits held from per-replica leases of the store's credits", "size", or(o.Size, credits.DefaultLeaseSize).String(),
		"flush_interval", or(o.FlushInterval, credits.DefaultLeaseFlushInterval).String())
	s.closes = append(s.closes, func() {
		ctx, cancel := context.WithTimeout(context.Background(), leasingCloseTimeout)
		defer cancel()
		if err := s.leasing.Close(ctx); err != nil {
			s.logger.Error("llmgate: credits leases not written back", "err", err)
		}
	})
}

// leasingCloseTimeout bounds the writing back of the leases at shutdown.
const leasingCloseTimeout = 30 * time.Second

// ledger returns what requests are metered into: the leases of the
// store's credits, else the store as a credits.Ledger, or nil when it
// keeps no credits (or there is none).
func (s *server) ledger() credits.Ledger {
	if s.leasing != nil {
		return s.leasing
	}
	l, _ := s.store.(credits.Ledger)
	return l
}

// creditsStore returns the store as a credits.Store for the admin API, or
// nil when it keeps no credits (or there is none).
func (s *server) creditsStore() credits.Store {
	c, _ := s.store.(credits.Store)
	return c
}

// checkCredits refuses a file that enables credits on a store that keeps
// none: requests would be served without paying.
func (s *server) checkCredits(f *config.File) error {
	if f.Credits.Enabled && s.store != nil && s.ledger() == nil {
		return fmt.Errorf("%s: credits.enabled: the store %s does not keep credits in this build of llmgate", s.path, f.StoreName())
	}
	return nil
}

// meteringMode describes metering for the start log line: "off" without a
// store that keeps credits, "usage" when it records usage only, "credits"
// when requests pay.
func (s *server) meteringMode() string {
	switch {
	case s.ledger() == nil:
		return "off"
	case s.file.Credits.Enabled:
		return "credits"
	}
	return "usage"
}

// sealerFor returns the Sealer of f's key-encryption keys: the one in
// force when they did not change, so that a reload keeps the gateway's
// key cache; nil without any (or when they are faulty, which Parse
// reports).
func (s *server) sealerFor(f *config.File) *keys.Sealer {
	if len(f.KeyEncryptionKeys) == 0 {
		return nil
	}
	if s.sealer != nil && reflect.DeepEqual(f.KeyEncryptionKeys, s.sealerKEKs) {
		return s.sealer
	}
	sealer, err := f.Sealer()
	if err != nil {
		return nil
	}
	s.sealer, s.sealerKEKs = sealer, slices.Clone(f.KeyEncryptionKeys)
	return sealer
}

// keysMode describes gateway API keys for the start log line: "off"
// without a store, else the file's gateway_keys.
func (s *server) keysMode() string {
	switch {
	case s.store == nil:
		return "off"
	case strings.EqualFold(s.file.GatewayKeys, config.GatewayKeysOptional):
		return config.GatewayKeysOptional
	}
	return config.GatewayKeysRequired
}

// close releases the gateway, then everything it depended on.
func (s *server) close() {
	if s.gw != nil {
		_ = s.gw.Close()
	}
	for i := len(s.closes) - 1; i >= 0; i-- {
		s.closes[i]()
	}
}

// reload re-reads the configuration file and applies it with
// Gateway.Reload, logging what changed; when the file is refused it logs
// why, with the file's lines, and the configuration in force stays.
// Requests in flight are not disturbed either way. It first reopens the
// event sinks' files, for log rotation, whatever becomes of the file.
// SIGHUP calls it.
func (s *server) reload() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.events != nil {
		if err := s.events.Reopen(); err != nil {
			s.logger.Warn("reopening the event files failed; events go on to the old files", "err", err)
		}
	}
	if s.path == "" {
		s.logger.Warn("reload requested, but there is no configuration file to reload (start llmgate with -config)", "mode", s.mode)
		return nil
	}
	f, err := config.ReadFile(s.path, s.env)
	switch {
	case f == nil:
	case err == nil && (f.Store == "") != (s.store == nil):
		// Turning gateway keys on or off is a restart: a reload must not
		// open the gateway, nor lock it, on its own.
		err = fmt.Errorf("%s: store was added or removed; that takes effect when llmgate restarts", s.path)
	case err != nil:
		// The file's own problems: report the rest too, without touching
		// the gateway.
		err = f.Check(s.extraOptions(f)...)
	default:
		if err = s.checkCredits(f); err == nil {
			err = f.Explain(s.gw.Reload(append(f.Options(), s.extraOptions(f)...)...))
		}
	}
	if err != nil {
		s.logger.Error("configuration reload refused; the configuration in force stays", "config", s.path, "err", err)
		return err
	}
	old := s.file
	s.file = f
	s.level.Set(f.Log.SlogLevel())
	s.reloadAdmin(f)
	s.logChanges(old, f)
	return nil
}

// logChanges logs what a reload changed: providers added, removed and
// changed, the number of keys of each provider, the default models, the
// other settings changed by name, and what is now reachable. It never logs
// a key.
func (s *server) logChanges(old, cur *config.File) {
	before, after := enabledProviders(old), enabledProviders(cur)
	var added, removed, changed, keys []string
	for _, p := range cur.Providers {
		id := strings.ToLower(p.ID)
		q, ok := before[id]
		switch {
		case p.Disabled:
			continue
		case !ok:
			added = append(added, p.ID)
		case !reflect.DeepEqual(p, q):
			changed = append(changed, p.ID)
		}
		keys = append(keys, p.ID+"="+strconv.Itoa(len(p.APIKeys)))
	}
	for _, p := range old.Providers {
		if _, ok := after[strings.ToLower(p.ID)]; !ok && !p.Disabled {
			removed = append(removed, p.ID)
		}
	}
	settings := changedSettings(old, cur)
	attrs := []any{"config", s.path,
		"providers_added", strings.Join(added, ","),
		"providers_removed", strings.Join(removed, ","),
		"providers_changed", strings.Join(changed, ","),
		"keys", strings.Join(keys, ","),
		"settings_changed", strings.Join(settings, ","),
	}
	if slices.Contains(settings, "default_models") {
		attrs = append(attrs, "default_models", strings.Join(cur.DefaultModels, ","))
	}
	attrs = append(attrs, "reachable", strings.Join(s.gw.Providers(), ","), "pass_through", s.gw.PassThrough().String())
	s.logger.Info("configuration reloaded", attrs...)
	for _, name := range settings {
		switch name {
		case "listen", "max_connections", "metrics":
			s.logger.Warn(fmt.Sprintf("%s changed in the configuration file; it takes effect when llmgate restarts", name), "config", s.path)
		case "credits":
			if !reflect.DeepEqual(old.Credits.Lease, cur.Credits.Lease) || old.Credits.Enabled != cur.Credits.Enabled && s.leasing == nil {
				s.logger.Warn("credits.lease changed in the configuration file; it takes effect when llmgate restarts", "config", s.path)
			}
		case "events", "inspector", "tracing":
			s.logger.Warn(name+" changed in the configuration file; it takes effect when llmgate restarts", "config", s.path)
		case "store":
			s.logger.Warn("store changed in the configuration file; it takes effect when llmgate restarts", "config", s.path,
				"store_in_use", old.StoreName(), "store_in_file", cur.StoreName())
		case "admin":
			if old.Admin.Listen != cur.Admin.Listen {
				s.logger.Warn("admin.listen changed in the configuration file; it takes effect when llmgate restarts", "config", s.path)
			}
		case "log":
			if !strings.EqualFold(old.Log.Format, cur.Log.Format) {
				s.logger.Warn("log.format changed in the configuration file; it takes effect when llmgate restarts", "config", s.path)
			}
		}
	}
}

// enabledProviders indexes the enabled entries by lower-case ID.
func enabledProviders(f *config.File) map[string]config.Provider {
	m := map[string]config.Provider{}
	for _, p := range f.Providers {
		if !p.Disabled {
			m[strings.ToLower(p.ID)] = p
		}
	}
	return m
}

// changedSettings returns the names of the top-level fields, other than
// providers, that differ between old and cur.
func changedSettings(old, cur *config.File) []string {
	var out []string
	a, b := reflect.ValueOf(old).Elem(), reflect.ValueOf(cur).Elem()
	t := a.Type()
	for i := range t.NumField() {
		field := t.Field(i)
		name, _, _ := strings.Cut(field.Tag.Get("yaml"), ",")
		if !field.IsExported() || name == "" || name == "providers" {
			continue
		}
		if !reflect.DeepEqual(a.Field(i).Interface(), b.Field(i).Interface()) {
			out = append(out, name)
		}
	}
	return out
}

// or returns v, or def when v is zero.
func or[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}
