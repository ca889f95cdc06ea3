package prommetrics_test

import (
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	gateway "github.com/llmgate/gateway"
	"github.com/llmgate/gateway/metrics/prommetrics"
)

// An exporter is the gateway's event sink, bound to the gateway, and a
// collector registered with a registry that promhttp serves.
func Example() {
	exp, err := prommetrics.New(prommetrics.Options{})
	if err != nil {
		log.Fatal(err)
	}
	gw, err := gateway.New(
		gateway.WithProvider(gateway.ProviderConfig{ID: "openai", Keys: []gateway.ProviderKey{{Value: "sk-..."}}}),
		gateway.WithEventSink(exp),
	)
	if err != nil {
		log.Fatal(err)
	}
	defer gw.Close()
	exp.Bind(gw)
	reg := prometheus.NewRegistry()
	reg.MustRegister(exp)

	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.Handle("/", gw)
	srv := httptest.NewServer(mux)
	defer srv.Close()

	// A request the gateway refuses before calling any provider.
	resp, err := http.Post(srv.URL+"/v1/chat/completions", "application/json", strings.NewReader(`{"model": 42}`))
	if err != nil {
		log.Fatal(err)
	}
	resp.Body.Close()

	resp, err = http.Get(srv.URL + "/metrics")
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(body), "\n") {
		if strings.HasPrefix(line, "llmgate_requests_total") || strings.HasPrefix(line, "llmgate_provider_keys") {
			fmt.Println(line)
		}
	}
	// Output:
	// llmgate_provider_keys{provider="openai"} 1
	// llmgate_requests_total{code="invalid_request",status="400"} 1
}
