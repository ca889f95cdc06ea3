package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	gateway "github.com/llmgate/gateway"
)

// version is set at build time with -ldflags "-X main.version=v1.2.3";
// otherwise the module version from the build info is used.
var version string

// Defaults of the server.
const (
	// DefaultListen is the address served when neither the configuration
	// nor -listen sets one.
	DefaultListen = "127.0.0.1:8080"
	// DefaultMaxConnections is the default of max_connections.
	DefaultMaxConnections = 4096
	// eventsCloseTimeout bounds how long the event sinks get, at
	// shutdown, to write and send the events they queued.
	eventsCloseTimeout = 10 * time.Second
	// sideShutdownTimeout bounds the graceful shutdown of the admin and
	// metrics listeners, whose requests are short.
	sideShutdownTimeout = 5 * time.Second
)

// limits are the http.Server's own bounds. ReadTimeout bounds the arrival
// of a request only: the gateway replaces the read deadline with its own
// (body_read_timeout) while it reads the body and clears it afterwards, and
// net/http clears it too once a body has been read to its end, so a
// response may stream for longer. The gateway bounds each write to the
// client itself (write_timeout), so the server sets no WriteTimeout, which
// would cut long streams.
type limits struct {
	readHeader     time.Duration // the request line and headers
	read           time.Duration // the whole request, until a handler sets its own deadline
	idle           time.Duration // a keep-alive connection between requests
	maxHeaderBytes int
}

func defaultLimits() limits {
	return limits{readHeader: 10 * time.Second, read: time.Minute, idle: 2 * time.Minute, maxHeaderBytes: 64 << 10}
}

// hooks let tests watch and tune serve.
type hooks struct {
	ready        func(addr string, s *server) // called once connections are accepted
	metricsReady func(addr string)            // called with the metrics listener's address, when there is one
	limits       *limits                      // replaces defaultLimits()
	open         opener                       // replaces openStore
}

func main() {
	ctx, stop := shutdownSignals()
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "llmgate:", err)
		os.Exit(1)
	}
}

// run runs the server until ctx is done. args are the command-line
// arguments without the program name; env looks up environment variables.
// The banner and -version go to stdout, logs to stderr. SIGHUP reloads the
// configuration file.
func run(ctx context.Context, args []string, env func(string) string, stdout, stderr io.Writer) error {
	if len(args) > 0 {
		switch args[0] {
		case "keys":
			return keysCommand(ctx, args[1:], env, stdout, stderr)
		case "credits":
			return creditsCommand(ctx, args[1:], env, stdout, stderr, openStore)
		case "usage":
			return usageCommand(ctx, args[1:], env, stdout, stderr, openStore)
		}
	}
	return serve(ctx, args, env, stdout, stderr, hooks{})
}

// serve is run with hooks.
func serve(ctx context.Context, args []string, env func(string) string, stdout, stderr io.Writer, h hooks) error {
	fs := flag.NewFlagSet("llmgate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "", "YAML configuration `file`")
	listen := fs.String("listen", "", "listen `address` (host:port), overriding the configuration (default "+DefaultListen+")")
	showVersion := fs.Bool("version", false, "print the version and exit")
	explain := fs.Bool("explain", false, "serve POST /v1/explain[?path=/v1/messages]: the plan a request body would follow, without calling a provider")
	metricsListen := fs.String("metrics-listen", "", "`address` (host:port) of a listener serving GET /metrics, /healthz and /readyz, overriding the configuration's metrics.listen")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: llmgate [-config FILE] [-listen ADDR] [-metrics-listen ADDR] [-explain] [-version]\n"+
			"       llmgate keys create|list|revoke|rewrap -config FILE ...   (llmgate keys -h)\n"+
			"       llmgate credits buy|balance|transactions -config FILE ...   (llmgate credits -h)\n"+
			"       llmgate usage -config FILE [-account A] [-group-by day,provider,model] ...   (llmgate usage -h)\n\n"+
			"Without -config, llmgate serves the providers whose API keys are set in the\n"+
			"environment (%s), or runs in demo mode when none is.\n"+
			"With store: in the file, every request needs a gateway API key (create one\n"+
			"with llmgate keys create, or through the admin API of admin:).\n"+
			"SIGHUP reloads the configuration file; SIGTERM drains the requests in flight\n"+
			"(within shutdown_timeout, default 30s) and stops.\n"+
			"Configuration reference: go doc github.com/llmgate/gateway/config\n\n", envKeyNames())
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q (see -h)", fs.Args())
	}
	if *showVersion {
		_, err := fmt.Fprintln(stdout, "llmgate", buildVersion())
		return err
	}
	lim := defaultLimits()
	if h.limits != nil {
		lim = *h.limits
	}

	s, err := setup(*configPath, env, stderr)
	if err != nil {
		return err
	}
	defer s.close()
	s.explain = *explain
	s.open = h.open
	addr := s.listenAddr()
	if *listen != "" {
		addr = *listen
	}
	tcp, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	ln := newLimitListener(tcp, s.maxConnections())
	defer ln.Close()
	s.hosts = loopbackHosts(addr, tcp.Addr())
	if err := s.start(ctx); err != nil {
		return err
	}
	if err := s.startAdmin(); err != nil {
		return err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), sideShutdownTimeout)
		defer cancel()
		s.admin.shutdown(sctx)
	}()
	maddr := s.file.Metrics.Listen
	if *metricsListen != "" {
		maddr = *metricsListen
	}
	ms, err := s.startMetrics(maddr)
	if err != nil {
		return err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), sideShutdownTimeout)
		defer cancel()
		ms.shutdown(sctx)
	}()
	base := "http://" + ln.Addr().String()
	attrs := []any{"addr", ln.Addr().String(), "mode", s.mode, "version", buildVersion(),
		"providers", strings.Join(s.gw.Providers(), ","), "pass_through", s.gw.PassThrough().String(), "gateway_keys", s.keysMode(),
		"metrics", s.metricsAddr(ms)}
	if s.store != nil {
		attrs = append(attrs, "endpoint", s.file.EndpointName(), "store", s.file.StoreName(), "metering", s.meteringMode())
	}
	if s.events != nil {
		attrs = append(attrs, "event_sinks", s.events.Len())
	}
	if s.tracer != nil {
		attrs = append(attrs, "tracing", s.file.Tracing.TracesURL())
	}
	s.logger.Info("llmgate listening", attrs...)
	if s.mode == modeDemo {
		fmt.Fprint(stdout, demoBanner(base))
	}

	srv := &http.Server{
		Handler:           s.handler(),
		ReadHeaderTimeout: lim.readHeader,
		ReadTimeout:       lim.read,
		IdleTimeout:       lim.idle,
		MaxHeaderBytes:    lim.maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(s.logger.Handler(), slog.LevelWarn),
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	// The metrics address first: a test that learns the server is ready
	// then finds it at once.
	if h.metricsReady != nil && ms != nil {
		h.metricsReady(ms.addr)
	}
	if h.ready != nil {
		h.ready(ln.Addr().String(), s)
	}

	var failure error // the admin listener's, which stops the server too
	for done := false; !done; {
		select {
		case err := <-errc:
			return err
		case <-s.admin.failed():
			failure, done = fmt.Errorf("admin listener: %w", s.admin.err), true
		case <-ms.failed():
			failure, done = fmt.Errorf("metrics listener: %w", ms.err), true
		case <-hup:
			_ = s.reload() // logged; on failure the configuration in force stays
		case <-ctx.Done():
			done = true
		}
	}
	s.drain(srv, errc)
	return failure
}

// handler answers GET /healthz and /readyz and hands every other request,
// whatever its path, to the gateway, which answers unknown and unclean
// paths ("//v1/…", "/v1/x/../…") with a 404 in the client's dialect;
// http.ServeMux would redirect them with a bare 307. /metrics is served
// on the admin or metrics listener only.
func (s *server) handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.serveOps(w, r, false) {
			return
		}
		if s.explain && r.URL.Path == "/v1/explain" {
			s.serveExplain(w, r)
			return
		}
		s.gw.ServeHTTP(w, r)
	})
}

// serveExplain answers POST /v1/explain: the body is an API request's
// body, the query parameter path its API path (default
// /v1/chat/completions), and the answer the gateway.Plan it would follow
// with, when it would fail before any upstream call, the error the client
// would get, under that error's status.
func (s *server) serveExplain(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		w.WriteHeader(http.StatusMethodNotAllowed)
		_, _ = io.WriteString(w, `{"error":{"message":"use POST /v1/explain","code":"method_not_allowed"}}`+"\n")
		return
	}
	target := r.URL.Query().Get("path")
	if target == "" {
		target = "/v1/chat/completions"
	}
	req := r.Clone(r.Context())
	req.URL = &url.URL{Path: target}
	req.RequestURI = ""
	var out struct {
		Plan  gateway.Plan   `json:"plan"`
		Error *gateway.Error `json:"error,omitempty"`
	}
	var err error
	out.Plan, err = s.gw.Explain(r.Context(), req)
	status := http.StatusOK
	if err != nil {
		if !errors.As(err, &out.Error) {
			out.Error = &gateway.Error{Kind: gateway.KindInternal, Message: err.Error()}
		}
		status = out.Error.HTTPStatus()
	}
	b, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error":{"message":"encoding the plan failed","code":"internal_error"}}`)
	}
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// loopbackHosts returns the Host names a server listening on bound (asked
// for as addr) allows by default: the loopback names and addr's host when
// it listens on a loopback address, else nil (every Host).
func loopbackHosts(addr string, bound net.Addr) []string {
	tcp, ok := bound.(*net.TCPAddr)
	if !ok || !tcp.IP.IsLoopback() {
		return nil
	}
	hosts := []string{"localhost", "127.0.0.1", "::1"}
	for _, h := range []string{hostOf(addr), tcp.IP.String()} {
		if h != "" && !containsFold(hosts, h) {
			hosts = append(hosts, h)
		}
	}
	return hosts
}

func hostOf(addr string) string {
	h, _, err := net.SplitHostPort(addr)
	if err != nil {
		return ""
	}
	return h
}

func containsFold(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}

func buildVersion() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "(devel)"
}
