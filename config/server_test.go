package config

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	gateway "github.com/llmgate/gateway"
)

func TestParseServerFields(t *testing.T) {
	f, err := Parse([]byte("listen: 127.0.0.1:8080\nmetrics:\n  listen: 127.0.0.1:9464\nshutdown_timeout: 2m\n"), mapEnv(nil))
	require.NoError(t, err)
	require.Equal(t, Metrics{Listen: "127.0.0.1:9464"}, f.Metrics)
	require.Equal(t, 2*time.Minute, f.ShutdownTimeoutOrDefault())

	// Server settings are not options.
	gw, err := gateway.New(f.Options()...)
	require.NoError(t, err)
	require.NoError(t, gw.Close())

	f, err = Parse([]byte("listen: 127.0.0.1:8080\n"), mapEnv(nil))
	require.NoError(t, err)
	require.Equal(t, DefaultShutdownTimeout, f.ShutdownTimeoutOrDefault())
	require.Empty(t, f.Metrics.Listen)

	// Port 0 (any free port) may be asked for twice.
	_, err = Parse([]byte("listen: 127.0.0.1:0\nmetrics: {listen: '127.0.0.1:0'}\n"), mapEnv(nil))
	require.NoError(t, err)
}

// TestParseServerFieldErrors places every problem of metrics and
// shutdown_timeout.
func TestParseServerFieldErrors(t *testing.T) {
	env := mapEnv(map[string]string{"TOKEN": adminToken})
	tests := []struct {
		name string
		yaml string
		want string
	}{
		{"metrics listen not an address", "metrics:\n  listen: '9464'", `metrics.listen: "9464" is not a host:port address (line 2)`},
		{"metrics listen bad port", "metrics: {listen: 'localhost:http2'}", `metrics.listen: "localhost:http2" is not a host:port address (line 1)`},
		{"metrics on the API listener", "listen: ':8080'\nmetrics: {listen: ':8080'}", `metrics.listen: ":8080" is also listen: the metrics need a listener of their own (line 2)`},
		{"metrics on the admin listener", "store: sqlite:x.db\nadmin: {listen: ':9090', token: '${env:TOKEN}'}\nmetrics:\n  listen: ':9090'",
			`metrics.listen: ":9090" is also admin.listen, which serves the metrics anyway: leave metrics.listen out (line 4)`},
		{"metrics a string", "metrics: ':9464'", `metrics: expected a mapping, got a scalar (line 1)`},
		{"unknown metrics field", "metrics: {listen: ':9464', path: /m}", `metrics.path: unknown field (line 1)`},
		{"zero shutdown_timeout", "\nshutdown_timeout: 0s", `shutdown_timeout: must be positive, got 0s (line 2)`},
		{"negative shutdown_timeout", "shutdown_timeout: -5s", `shutdown_timeout: must be positive, got -5s (line 1)`},
		{"shutdown_timeout not a duration", "shutdown_timeout: soon", `shutdown_timeout: `},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := Parse([]byte(tt.yaml), env)
			require.Error(t, err)
			var ce *Error
			require.ErrorAs(t, err, &ce)
			require.Len(t, ce.Problems, 1, err.Error())
			require.Contains(t, err.Error(), tt.want)
			if f != nil {
				require.Equal(t, DefaultShutdownTimeout, f.ShutdownTimeoutOrDefault(), "a faulty value is left out")
			}
		})
	}
}
