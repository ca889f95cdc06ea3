package main

import (
	"context"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// shutdownSignals returns a context canceled by SIGTERM or SIGINT, which
// starts a graceful shutdown. The first signal also restores their
// default action, so that a second one kills the process at once (an
// operator who will not wait for the drain).
func shutdownSignals() (ctx context.Context, stop context.CancelFunc) {
	ctx, stop = signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	context.AfterFunc(ctx, stop)
	return ctx, stop
}

// shutdownTimeout returns the configuration's shutdown_timeout (or its
// default), as of the last reload.
func (s *server) shutdownTimeout() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.file.ShutdownTimeoutOrDefault()
}

// drain shuts the API server down gracefully: /readyz answers 503 from
// now on, the listener closes, idle connections close, and the requests
// in flight, streams included, may finish within shutdown_timeout; the
// connections of those still running then are closed, which cancels them
// (and their upstream requests). It returns once srv's Serve (errc) has.
// The admin and metrics listeners stay up meanwhile, so the drain can be
// watched.
func (s *server) drain(srv *http.Server, errc <-chan error) {
	s.draining.Store(true)
	timeout := s.shutdownTimeout()
	in := s.gw.InFlight()
	s.logger.Info("llmgate shutting down", "in_flight_requests", in.Requests, "in_flight_streams", in.Streams, "shutdown_timeout", timeout)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		in := s.gw.InFlight()
		s.logger.Warn("graceful shutdown incomplete; closing the connections of the requests still in flight",
			"in_flight_requests", in.Requests, "in_flight_streams", in.Streams, "shutdown_timeout", timeout, "err", err)
		_ = srv.Close()
	}
	<-errc // http.ErrServerClosed
	s.logger.Info("llmgate stopped")
}

// metricsAddr describes where /metrics is served, for the start log line.
func (s *server) metricsAddr(ms *metricsServer) string {
	switch {
	case ms != nil:
		return ms.addr
	case s.admin != nil:
		return s.admin.addr + " (admin)"
	}
	return "off"
}
