package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
	"time"

	gateway "github.com/llmgate/gateway"
)

// version is set at build time with -ldflags "-X main.version=v1.2.3";
// otherwise the module version from the build info is used.
var version string

// shutdownTimeout bounds how long a graceful shutdown waits for in-flight
// requests (long streams included) before closing their connections.
const shutdownTimeout = 30 * time.Second

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "llmgate:", err)
		os.Exit(1)
	}
}

// run runs the server until ctx is done. args are the command-line
// arguments without the program name; env looks up environment variables.
// The banner and -version go to stdout, logs to stderr.
func run(ctx context.Context, args []string, env func(string) string, stdout, stderr io.Writer) error {
	return serve(ctx, args, env, stdout, stderr, nil)
}

// serve is run with a hook: ready, when non-nil, is called with the
// address the server listens on, once it accepts connections.
func serve(ctx context.Context, args []string, env func(string) string, stdout, stderr io.Writer, ready func(addr string)) error {
	fs := flag.NewFlagSet("llmgate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "", "YAML configuration `file`")
	listen := fs.String("listen", "", "listen `address` (host:port), overriding the configuration (default "+DefaultListen+")")
	showVersion := fs.Bool("version", false, "print the version and exit")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: llmgate [-config FILE] [-listen ADDR] [-version]\n\n"+
			"Without -config, llmgate serves the providers whose API keys are set in the\n"+
			"environment (%s), or runs in demo mode when none is.\n"+
			"Configuration reference: go doc github.com/llmgate/gateway/cmd/llmgate\n\n", envKeyNames())
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

	s, err := setup(*configPath, env, stderr)
	if err != nil {
		return err
	}
	defer s.close()
	addr := s.listen
	if *listen != "" {
		addr = *listen
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	base := "http://" + ln.Addr().String()
	s.logger.Info("llmgate listening", "addr", ln.Addr().String(), "mode", s.mode, "version", buildVersion())
	if s.mode == modeDemo {
		fmt.Fprint(stdout, demoBanner(base))
	}

	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(w, "ok\n")
	})
	mux.Handle("/", s.gw)
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(s.logger.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	if ready != nil {
		ready(ln.Addr().String())
	}

	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	s.logger.Info("llmgate shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		s.logger.Warn("graceful shutdown incomplete; closing connections", "err", err)
		_ = srv.Close()
	}
	<-errc // http.ErrServerClosed
	return nil
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

// Modes of operation.
const (
	modeConfig = "config"
	modeEnv    = "env"
	modeDemo   = "demo"
)

// server is what setup assembles: the gateway, its logger and whatever must
// be closed after the HTTP server has shut down.
type server struct {
	mode   string
	listen string
	gw     *gateway.Gateway
	logger *slog.Logger
	closes []func()
}

// close releases the gateway, then everything it depended on.
func (s *server) close() {
	_ = s.gw.Close()
	for i := len(s.closes) - 1; i >= 0; i-- {
		s.closes[i]()
	}
}

// setup picks the mode and builds the gateway: from the configuration file
// when one is given, else from provider keys in the environment, else in
// demo mode.
func setup(configPath string, env func(string) string, stderr io.Writer) (*server, error) {
	if configPath != "" {
		return setupConfig(configPath, env, stderr)
	}
	if keys := envProviders(env); len(keys) > 0 {
		return setupEnv(keys, stderr)
	}
	return setupDemo(stderr)
}

func setupConfig(path string, env func(string) string, stderr io.Writer) (*server, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	cfg, cfgErr := LoadConfig(data, env)
	var ce *ConfigError
	if errors.As(cfgErr, &ce) {
		ce.File = path
	}
	if cfg == nil {
		return nil, cfgErr
	}
	logger := cfg.NewLogger(stderr)
	gw, gwErr := newGateway(cfg.Options(), logger)
	if cfgErr != nil || gwErr != nil {
		if gw != nil {
			_ = gw.Close()
		}
		if cfgErr != nil && gwErr != nil {
			gwErr = fmt.Errorf("with the invalid fields above left out, %w", gwErr)
		}
		return nil, errors.Join(cfgErr, gwErr)
	}
	logger.Info("llmgate configured", "config", path, "providers", len(cfg.Providers))
	return &server{mode: modeConfig, listen: cfg.ListenAddr(), gw: gw, logger: logger}, nil
}

// newGateway builds the gateway with the server's logger and request log.
func newGateway(opts []gateway.Option, logger *slog.Logger) (*gateway.Gateway, error) {
	opts = append(opts,
		gateway.WithLogger(logger),
		gateway.WithEventSink(gateway.SlogSink{Logger: logger, Level: slog.LevelInfo}))
	return gateway.New(opts...)
}
