package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/llmgate/gateway/keys"
	"github.com/llmgate/gateway/metrics/prommetrics"
)

// pingTimeout bounds the store's ping of a readiness probe.
const pingTimeout = 2 * time.Second

// ops is the server's operational surface: the Prometheus exporter fed by
// the gateway's events, the registry /metrics serves, and the readiness
// state.
type ops struct {
	exporter *prommetrics.Exporter
	registry *prometheus.Registry
	metrics  http.Handler
}

// newOps builds the exporter and a registry holding it and the Go
// runtime's and the process's collectors.
func newOps() *ops {
	exp, err := prommetrics.New(prommetrics.Options{})
	if err != nil {
		panic(err) // unreachable: the zero Options is valid
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(exp, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return &ops{exporter: exp, registry: reg, metrics: promhttp.HandlerFor(reg, promhttp.HandlerOpts{})}
}

// serveOps answers GET (and HEAD) /healthz, /readyz and /metrics, and
// reports whether the path was one of them. /metrics is served only when
// withMetrics: the API listener does not publish them.
func (s *server) serveOps(w http.ResponseWriter, r *http.Request, withMetrics bool) bool {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return false
	}
	switch r.URL.Path {
	case "/healthz":
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(w, "ok\n")
	case "/readyz":
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		if err := s.ready(r.Context()); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = io.WriteString(w, "not ready: "+err.Error()+"\n")
			return true
		}
		_, _ = io.WriteString(w, "ready\n")
	case "/metrics":
		if !withMetrics {
			return false
		}
		s.ops.metrics.ServeHTTP(w, r)
	default:
		return false
	}
	return true
}

// ready reports why the server should not be sent requests, or nil: it
// is shutting down, its gateway has no provider to call, or its store
// does not answer a ping.
func (s *server) ready(ctx context.Context) error {
	switch {
	case s.draining.Load():
		return errors.New("shutting down")
	case s.gw == nil:
		return errors.New("starting")
	case len(s.gw.Providers()) == 0:
		return errors.New("no provider is configured")
	}
	if p, ok := s.store.(keys.Pinger); ok {
		ctx, cancel := context.WithTimeout(ctx, pingTimeout)
		defer cancel()
		if err := p.Ping(ctx); err != nil {
			s.logger.Warn("readiness: the store does not answer", "store", s.file.StoreName(), "err", err)
			return fmt.Errorf("the store %s does not answer", s.file.StoreName())
		}
	}
	return nil
}

// metricsServer serves /metrics, /healthz and /readyz on a listener of
// its own (metrics.listen or -metrics-listen).
type metricsServer struct {
	srv  *http.Server
	addr string
	done chan struct{} // closed when Serve returns
	err  error         // what Serve returned, once done is closed
}

// startMetrics starts the metrics listener at addr; nil, nil when addr is
// empty.
func (s *server) startMetrics(addr string) (*metricsServer, error) {
	if addr == "" {
		return nil, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics listener: %w", err)
	}
	m := &metricsServer{addr: ln.Addr().String(), done: make(chan struct{})}
	m.srv = &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !s.serveOps(w, r, true) {
				http.NotFound(w, r)
			}
		}),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       time.Minute,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.logger.Handler(), slog.LevelWarn),
	}
	go func() {
		defer close(m.done)
		m.err = m.srv.Serve(ln)
	}()
	s.logger.Info("llmgate metrics listening", "addr", m.addr, "paths", "/metrics,/healthz,/readyz")
	return m, nil
}

// shutdown stops the metrics listener gracefully (bounded by ctx), then
// closes what is left.
func (m *metricsServer) shutdown(ctx context.Context) {
	if m == nil {
		return
	}
	if m.srv.Shutdown(ctx) != nil {
		_ = m.srv.Close()
	}
	<-m.done
}

// failed returns a channel closed when the metrics listener stopped
// serving on its own (its error is m.err); nil, which blocks, without one.
func (m *metricsServer) failed() <-chan struct{} {
	if m == nil {
		return nil
	}
	return m.done
}
