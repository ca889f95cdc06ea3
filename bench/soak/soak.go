package main

import (
	"context"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	gateway "github.com/llmgate/gateway"
	"github.com/llmgate/gateway/providers"
)

// config is a soak run's configuration.
type config struct {
	duration        time.Duration // how long clients start new requests
	clients         int           // concurrent clients
	seed            uint64        // determines every request's shape and every upstream request's fault
	faultRate       float64       // probability that an upstream request gets a fault
	attemptTimeout  time.Duration // gateway.WithTimeouts per attempt (also the stream idle timeout)
	totalTimeout    time.Duration // gateway.WithTimeouts total
	keysPerProvider int
	settle          time.Duration // how long to wait for goroutines and descriptors to go
	goroutineSlack  int           // goroutines allowed above the start level after the run
	rssSlackMiB     int           // RSS allowed above the start level after the run
	examples        int           // examples printed per kind of violation
	doomedPerMille  int           // requests in 1000 whose every upstream request hangs
	weights         faultWeights
	// wrap, when set, wraps the gateway's handler (tests use it to break
	// the gateway on purpose and see the soak notice).
	wrap func(http.Handler) http.Handler
}

func defaultConfig() config {
	return config{
		duration:        2 * time.Minute,
		clients:         64,
		seed:            1,
		faultRate:       0.45,
		attemptTimeout:  500 * time.Millisecond,
		totalTimeout:    2 * time.Second,
		keysPerProvider: 4,
		settle:          10 * time.Second,
		rssSlackMiB:     20,
		examples:        3,
		doomedPerMille:  5,
		weights:         defaultFaultWeights(),
	}
}

func (c *config) validate() error {
	var errs []error
	if c.duration <= 0 {
		errs = append(errs, errors.New("-duration must be positive"))
	}
	if c.clients < 1 {
		errs = append(errs, errors.New("-clients must be at least 1"))
	}
	if c.faultRate < 0 || c.faultRate > 1 {
		errs = append(errs, errors.New("-fault-rate must be in [0, 1]"))
	}
	if c.attemptTimeout <= 0 || c.totalTimeout < c.attemptTimeout {
		errs = append(errs, errors.New("-attempt-timeout must be positive and at most -total-timeout"))
	}
	if c.keysPerProvider < 1 {
		errs = append(errs, errors.New("-keys must be at least 1"))
	}
	if c.doomedPerMille < 0 || c.doomedPerMille > 1000 {
		errs = append(errs, errors.New("-doomed must be in [0, 1000]"))
	}
	if c.examples < 1 {
		errs = append(errs, errors.New("-examples must be at least 1"))
	}
	return errors.Join(errs...)
}

// eventCheck is the gateway's event sink: it counts events and checks that
// every complete response reports the usage the fake upstreams send.
type eventCheck struct {
	t      *tally
	events atomic.Int64
}

// HandleEvent implements gateway.EventSink.
func (e *eventCheck) HandleEvent(_ context.Context, ev *gateway.Event) {
	e.events.Add(1)
	if ev.Status == http.StatusOK && ev.Err == nil && !ev.UsageReported {
		kind := "JSON response"
		if ev.Stream {
			kind = "stream"
		}
		e.t.violation("complete "+kind+" without usage in its event",
			fmt.Sprintf("%s %s served by %s (%s client); the fake upstreams always report usage", ev.RequestID, ev.Path, ev.ServedBy, ev.Format))
	}
}

// waitUpstreamsIdle waits up to d for the upstreams to have no request
// open and returns the ones still open.
func waitUpstreamsIdle(ups []*upstream, d time.Duration) []string {
	deadline := time.Now().Add(d)
	for {
		var open []string
		for _, u := range ups {
			open = append(open, u.openRequests()...)
		}
		if len(open) == 0 || time.Now().After(deadline) {
			return open
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// rig is the system under test: the fake upstreams and the gateway behind
// its own http.Server.
type rig struct {
	ups     []*upstream
	gw      *gateway.Gateway
	srv     *http.Server
	served  chan struct{} // closed when srv.Serve has returned
	base    string        // the gateway's URL
	handled atomic.Int64  // requests that reached the gateway's handler
	events  *eventCheck
}

// startRig starts the upstreams and the gateway. On error everything
// started is stopped again.
func startRig(cfg *config, t *tally, l *ledger) (_ *rig, err error) {
	rg := &rig{events: &eventCheck{t: t}}
	defer func() {
		if err != nil {
			for _, u := range rg.ups {
				u.close()
			}
		}
	}()
	var opts []gateway.Option
	for _, p := range []struct {
		id, keyPrefix string
		format        providers.Format
	}{{"openai", "oa", providers.FormatOpenAI}, {"anthropic", "an", providers.FormatAnthropic}} {
		keys := make([]gateway.ProviderKey, cfg.keysPerProvider)
		byValue := map[string]string{}
		for i := range keys {
			keys[i] = gateway.ProviderKey{ID: p.keyPrefix + "-" + strconv.Itoa(i+1), Value: providers.Secret(fmt.Sprintf("sk-soak-%s-%d", p.id, i+1))}
			byValue[keys[i].Value.Reveal()] = keys[i].ID
		}
		u, err := startUpstream(p.id, p.format, cfg, byValue, l, t)
		if err != nil {
			return nil, err
		}
		rg.ups = append(rg.ups, u)
		opts = append(opts, gateway.WithProvider(gateway.ProviderConfig{ID: p.id, BaseURL: u.url, Keys: keys}))
	}
	opts = append(opts,
		gateway.WithOnlyConfiguredProviders(true),
		gateway.WithTimeouts(cfg.attemptTimeout, cfg.totalTimeout),
		// Short cooldowns, so that 429s and 401s take keys out of rotation
		// for a moment (now and then all of a provider's keys) without
		// starving the run; Retry-After values are capped.
		gateway.WithKeyCooldowns(30*time.Millisecond, 20*time.Millisecond, 25*time.Millisecond),
		// Translated streams get keep-alives while a stalled upstream is
		// silent.
		gateway.WithStreamKeepAlive(cfg.attemptTimeout/3),
		gateway.WithLogger(slog.New(slogTally{t})),
		gateway.WithEventSink(rg.events),
	)
	if rg.gw, err = gateway.New(opts...); err != nil {
		return nil, err
	}
	var inner http.Handler = rg.gw
	if cfg.wrap != nil {
		inner = cfg.wrap(rg.gw)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		_ = rg.gw.Close()
		return nil, err
	}
	rg.base = "http://" + ln.Addr().String()
	rg.srv = &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			rg.handled.Add(1)
			inner.ServeHTTP(w, r)
		}),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          log.New(logWriter{t, "gateway's http.Server logged an error", true}, "", 0),
	}
	rg.served = make(chan struct{})
	go func() {
		defer close(rg.served)
		_ = rg.srv.Serve(ln)
	}()
	return rg, nil
}

// stop shuts the gateway's server down, closes the gateway and the
// upstreams, and records what did not end as it should: handlers still
// running, events not one per request, upstream requests left open.
func (rg *rig) stop(t *tally, settle time.Duration) {
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	if err := rg.srv.Shutdown(sctx); err != nil {
		t.violation("gateway's server did not shut down", "http.Server.Shutdown: "+err.Error()+" (handlers still running after every client finished)")
		_ = rg.srv.Close()
	}
	cancel()
	<-rg.served
	_ = rg.gw.Close()
	if n, e := rg.handled.Load(), rg.events.events.Load(); n != e {
		t.violation("not one event per request", fmt.Sprintf("%d requests handled, %d events emitted", n, e))
	}
	// Every gateway handler has returned: no upstream request may still be
	// open (the gateway cancels or finishes every one it makes).
	if open := waitUpstreamsIdle(rg.ups, settle); len(open) > 0 {
		t.violation("upstream requests still open after the gateway finished",
			fmt.Sprintf("%d open %v after every gateway handler returned and Close: %s", len(open), settle, excerpt([]byte(strings.Join(open, "; ")), 2000)))
	}
	for _, u := range rg.ups {
		u.close()
	}
}

// drive runs cfg.clients clients against the gateway at base until the
// duration is over or ctx ends, checks every request and returns how long
// it took. Requests in flight at the end are finished.
func drive(ctx context.Context, cfg *config, base string, t *tally, l *ledger, mon *stallMonitor) time.Duration {
	tr := &http.Transport{MaxIdleConns: 2 * cfg.clients, MaxIdleConnsPerHost: 2 * cfg.clients, DisableCompression: true}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr}
	silence := cfg.totalTimeout + 10*time.Second
	began := time.Now()
	stopAt := began.Add(cfg.duration)
	var seq atomic.Uint64
	var wg sync.WaitGroup
	for range cfg.clients {
		wg.Go(func() {
			for ctx.Err() == nil && time.Now().Before(stopAt) {
				p := newPlan(cfg.seed, seq.Add(1), cfg.doomedPerMille)
				r := do(hc, base, p, silence)
				r.stall = mon.during(r.began, r.ended)
				recs := l.take(p.marker)
				t.add(p, r, recs, check(p, r, recs))
			}
		})
	}
	wg.Wait()
	return time.Since(began)
}

// run starts the fake upstreams and the gateway, runs the clients for the
// configured duration, shuts everything down and checks that the
// process's resources came back to their start level.
func run(ctx context.Context, cfg config) (*summary, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	warmUp()
	start := measure()
	t := newTally(cfg.examples)
	l := newLedger()
	rg, err := startRig(&cfg, t, l)
	if err != nil {
		return nil, err
	}
	mon := startStallMonitor(5*time.Millisecond, stallTolerance)
	elapsed := drive(ctx, &cfg, rg.base, t, l, mon)
	mon.close()
	rg.stop(t, cfg.settle)

	s := &summary{cfg: cfg, elapsed: elapsed, tally: t, start: start}
	s.stalls, s.longestStall = mon.summary()
	l.mu.Lock()
	s.upstreamRequests, s.faults = l.requests, l.faults
	l.mu.Unlock()
	s.late = l.leftover()
	s.end = settle(start, cfg.goroutineSlack, cfg.settle)
	checkResources(t, start, s.end, cfg.goroutineSlack, cfg.rssSlackMiB)
	return s, nil
}
