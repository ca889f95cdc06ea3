package config

import (
	"net"
	"strings"
	"time"
)

// DefaultShutdownTimeout is the default of shutdown_timeout.
const DefaultShutdownTimeout = 30 * time.Second

// Metrics is metrics: the Prometheus metrics listener. Server setting:
// Options ignores it.
type Metrics struct {
	// Listen is the address (host:port) of a listener serving GET
	// /metrics, /healthz and /readyz only. Without it the server serves
	// them on the admin listener, if there is one.
	Listen string `yaml:"listen"`
}

// ShutdownTimeoutOrDefault returns shutdown_timeout, or
// DefaultShutdownTimeout when the file sets none.
func (f *File) ShutdownTimeoutOrDefault() time.Duration {
	if f.ShutdownTimeout != nil && *f.ShutdownTimeout > 0 {
		return *f.ShutdownTimeout
	}
	return DefaultShutdownTimeout
}

// checkServer applies the rules of the server's own fields beside listen
// and max_connections: metrics and shutdown_timeout.
func (d *decoder) checkServer(f *File) {
	if l := f.Metrics.Listen; l != "" && !d.bad["metrics.listen"] {
		_, port, err := net.SplitHostPort(l)
		switch {
		case err != nil || !validPort(port):
			d.failAt("metrics.listen", "%s is not a host:port address", d.show("metrics.listen", l))
		case port != "0" && strings.EqualFold(l, f.Listen):
			d.failAt("metrics.listen", "%s is also listen: the metrics need a listener of their own", d.show("metrics.listen", l))
		case port != "0" && strings.EqualFold(l, f.Admin.Listen):
			d.failAt("metrics.listen", "%s is also admin.listen, which serves the metrics anyway: leave metrics.listen out", d.show("metrics.listen", l))
		}
	}
	if t := f.ShutdownTimeout; t != nil && *t <= 0 && !d.bad["shutdown_timeout"] {
		d.failAt("shutdown_timeout", "must be positive, got %v", *t)
		f.ShutdownTimeout = nil
	}
}
