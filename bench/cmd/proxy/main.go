// Command proxy is the process under test of the llmgate load benchmark: it
// serves HTTP on -listen in front of the fake upstream at -upstream, in one
// of two modes:
//
//   - plain: an httputil.ReverseProxy whose Rewrite sets the upstream URL and
//     whose FlushInterval is -1 (flush after every write), the floor any Go
//     proxy pays. Its transport has the same connection pool settings as the
//     one llmgate builds for itself, so that neither side churns
//     connections.
//   - llmgate: a gateway.Gateway with one provider, "openai", whose base URL
//     is the upstream URL plus "/v1/" (its query string becomes the
//     provider's QueryParams), with the default options.
//
// The upstream URL may carry a query string (for example "?events=40&
// delay=50ms"): both modes send it on every upstream request, which is how
// the benchmark shapes the fake upstream's answers without any header or
// body field having to pass through the proxy.
//
// On start it prints "LISTEN http://host:port" on stdout. SIGINT or SIGTERM
// stops it.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	gateway "github.com/llmgate/gateway"
)

func main() {
	mode := flag.String("mode", "llmgate", "proxy under test: plain or llmgate")
	upstream := flag.String("upstream", "", "fake upstream URL, for example http://127.0.0.1:8081 (required)")
	listen := flag.String("listen", "127.0.0.1:0", "listen address")
	flag.Parse()
	if err := run(*mode, *upstream, *listen); err != nil {
		log.Fatalf("proxy: %v", err)
	}
}

func run(mode, upstream, listen string) error {
	target, err := url.Parse(upstream)
	if err != nil || target.Host == "" || (target.Scheme != "http" && target.Scheme != "https") {
		return fmt.Errorf("-upstream %q: want an http(s) URL", upstream)
	}
	var handler http.Handler
	switch mode {
	case "plain":
		transport := newTransport()
		defer transport.CloseIdleConnections()
		handler = &httputil.ReverseProxy{
			Rewrite:       func(r *httputil.ProxyRequest) { r.SetURL(target) },
			Transport:     transport,
			FlushInterval: -1,
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
		gw, err := gateway.New(gateway.WithProvider(gateway.ProviderConfig{
			ID:          "openai",
			BaseURL:     base.String(),
			Keys:        []gateway.ProviderKey{{Value: "sk-bench"}},
			QueryParams: query,
		}))
		if err != nil {
			return err
		}
		defer gw.Close()
		handler = gw
	default:
		return fmt.Errorf("-mode %q: want plain or llmgate", mode)
	}

	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	fmt.Printf("LISTEN http://%s\n", ln.Addr())
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
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
