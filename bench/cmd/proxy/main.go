// Command proxy is the process under test of the llmgate load benchmark: it
// serves HTTP on -listen in front of the fake upstream at -upstream, in one
// of two modes:
//
//   - plain: an httputil.ReverseProxy whose Rewrite sets the upstream URL and
//     whose FlushInterval is -1 (flush after every write), the floor any Go
//     proxy pays. Its transport has the same connection pool settings as the
//     one llmgate builds for itself, so that neither side churns
//     connections. It reads the request body before forwarding it, as
//     llmgate does, since forwarding it as a live stream truncates some
//     responses (golang/go#40747); -live-body forwards it live anyway.
//   - llmgate: a gateway.Gateway with two providers, "openai" and
//     "anthropic", whose base URL is the upstream URL plus "/v1/" (its query
//     string becomes the providers' QueryParams), with the default options.
//     The fake upstream speaks both formats, so an OpenAI client may ask for
//     a Claude model and an Anthropic client for a GPT model: the gateway
//     translates. With -strategies it also sets the three model selection
//     strategies of bench/internal/strategies (gateway.WithModelSelection),
//     which every request evaluates over the whole built-in catalog. With
//     -keys it requires gateway API keys (gateway.WithKeyStore over a
//     keys.MemoryStore holding the one key of bench/internal/gatewaykey,
//     endpoint "bench"): every request must carry that key's token. With
//     -credits LEDGER it requires the key as -keys does and makes every
//     request pay with credits (gateway.WithMetering, Credits on) from
//     the key's account in LEDGER: "memory" (credits.NewMemory) or
//     "sqlite:PATH" (store/sqlite on the file PATH), funded with $3M
//     (bench/internal/benchledger); GET /_bench/credits then returns what
//     the ledger charged, as JSON.
//
// The upstream URL may carry a query string (for example "?events=40&
// delay=50ms"): both modes send it on every upstream request, which is how
// the benchmark shapes the fake upstream's answers without any header or
// body field having to pass through the proxy.
//
// On start it prints "LISTEN http://host:port" on stdout. SIGINT or SIGTERM
// stops it.
//
// The benchmark's -baseline builds this same file against the library at
// an older revision, so it must only use API that revision has; when it
// cannot compile there, the benchmark says so and runs without the
// baseline. The options a baseline may lack, WithModelSelection,
// WithKeyStore (with package keys) and WithMetering (with package credits
// and store/sqlite), are confined to selection.go, keystore.go and
// credits.go, which the baseline build leaves out with the nostrategies
// build tag (selection_none.go, keystore_none.go and credits_none.go stand
// in for them).
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"strings"
	"time"

	gateway "github.com/llmgate/gateway"
	"github.com/llmgate/gateway/bench/internal/listen"
)

func main() {
	var s setup
	flag.StringVar(&s.mode, "mode", "llmgate", "proxy under test: plain or llmgate")
	flag.StringVar(&s.upstream, "upstream", "", "fake upstream URL, for example http://127.0.0.1:8081 (required)")
	listenAddr := flag.String("listen", "127.0.0.1:0", "listen address")
	flag.BoolVar(&s.liveBody, "live-body", false, "plain mode: forward the request body as a live stream instead of reading it first (golang/go#40747)")
	flag.BoolVar(&s.strategies, "strategies", false, "llmgate mode: add the benchmark's three model selection strategies (gateway.WithModelSelection)")
	flag.BoolVar(&s.keys, "keys", false, "llmgate mode: require the benchmark's gateway API key (gateway.WithKeyStore)")
	flag.StringVar(&s.ledger, "credits", "", "llmgate mode: require the gateway API key (as -keys) and make requests pay with credits "+
		"(gateway.WithMetering) from this ledger: memory or sqlite:PATH")
	flag.Parse()
	if err := run(s, *listenAddr); err != nil {
		log.Fatalf("proxy: %v", err)
	}
}

// setup is what a proxy process is, from its flags.
type setup struct {
	mode       string // "plain" or "llmgate"
	upstream   string
	liveBody   bool
	strategies bool
	keys       bool
	ledger     string // -credits, "" for none
}

// run serves the proxy s describes on addr until SIGINT or SIGTERM.
func run(s setup, addr string) error {
	ctx := context.Background()
	handler, closeAll, err := newHandler(ctx, s)
	if err != nil {
		return err
	}
	defer closeAll()
	return listen.Serve(ctx, addr, handler, os.Stdout)
}

// newHandler builds the proxy s describes. closeAll releases what it holds
// (the gateway, then its ledger); call it once the handler is done.
func newHandler(ctx context.Context, s setup) (handler http.Handler, closeAll func(), err error) {
	var closers []func()
	cleanup := func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
	}
	defer func() {
		if err != nil {
			cleanup()
		}
	}()
	target, err := url.Parse(s.upstream)
	if err != nil || target.Host == "" || (target.Scheme != "http" && target.Scheme != "https") {
		return nil, nil, fmt.Errorf("-upstream %q: want an http(s) URL", s.upstream)
	}
	if (s.strategies || s.keys || s.ledger != "") && s.mode != "llmgate" {
		return nil, nil, errors.New("-strategies, -keys and -credits need -mode llmgate")
	}
	switch s.mode {
	case "plain":
		transport := newTransport()
		closers = append(closers, transport.CloseIdleConnections)
		rp := &httputil.ReverseProxy{
			Rewrite:       func(r *httputil.ProxyRequest) { r.SetURL(target) },
			Transport:     transport,
			FlushInterval: -1,
		}
		handler = rp
		if !s.liveBody {
			handler = readBodyFirst(rp)
		}
	case "llmgate":
		base := *target
		base.Path = strings.TrimSuffix(base.Path, "/") + "/v1/"
		base.RawPath, base.RawQuery = "", ""
		var query map[string]string // a base URL must not have a query
		for k, v := range target.Query() {
			if query == nil {
				query = map[string]string{}
			}
			query[k] = v[len(v)-1]
		}
		var opts []gateway.Option
		for _, id := range []string{"openai", "anthropic"} {
			opts = append(opts, gateway.WithProvider(gateway.ProviderConfig{
				ID:          id,
				BaseURL:     base.String(),
				Keys:        []gateway.ProviderKey{{Value: "sk-bench"}},
				QueryParams: query,
			}))
		}
		if s.strategies {
			opt, err := modelSelection()
			if err != nil {
				return nil, nil, err
			}
			opts = append(opts, opt)
		}
		if s.keys || s.ledger != "" { // credits are paid from the key's account
			opt, err := keyStore()
			if err != nil {
				return nil, nil, err
			}
			opts = append(opts, opt)
		}
		wrap := func(h http.Handler) http.Handler { return h }
		if s.ledger != "" {
			opt, w, closeLedger, err := metering(ctx, s.ledger)
			if err != nil {
				return nil, nil, err
			}
			closers = append(closers, func() { _ = closeLedger() })
			opts, wrap = append(opts, opt), w
		}
		gw, err := gateway.New(opts...)
		if err != nil {
			return nil, nil, err
		}
		closers = append(closers, func() { _ = gw.Close() })
		handler = wrap(gw)
	default:
		return nil, nil, fmt.Errorf("-mode %q: want plain or llmgate", s.mode)
	}
	return handler, cleanup, nil
}

// readBodyFirst reads the whole request body before calling next, which
// then forwards it from memory. Forwarding the inbound body as a live
// stream races with the response: once ReverseProxy flushes the response
// header, net/http may close the inbound body while the transport is still
// reading it to EOF, and the transport then closes the upstream connection
// under the response, truncating it (golang/go#40747; 2–3% of streams in
// the benchmark with GOMAXPROCS 2). llmgate reads the body first too.
func readBodyFirst(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var buf bytes.Buffer
		if r.ContentLength > 0 {
			buf.Grow(int(min(r.ContentLength, 1<<20)))
		}
		if _, err := buf.ReadFrom(r.Body); err != nil {
			http.Error(w, "reading the request body: "+err.Error(), http.StatusBadRequest)
			return
		}
		body := buf.Bytes()
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.ContentLength = int64(len(body))
		r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
		next.ServeHTTP(w, r)
	})
}

// newTransport returns a transport with the connection pool settings of the
// one gateway.New creates when no WithHTTPClient is given (the default
// http.Transport keeps only 2 idle connections per host, which would make
// the floor pay for new connections under load).
func newTransport() *http.Transport {
	return &http.Transport{
		Proxy: http.ProxyFromEnvironment,
		DialContext: (&net.Dialer{
			Timeout:   30 * time.Second,
			KeepAlive: 30 * time.Second,
		}).DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          1024,
		MaxIdleConnsPerHost:   256,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
}
