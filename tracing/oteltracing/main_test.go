package oteltracing_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain checks that no test leaves a goroutine behind: gateways,
// upstreams and tracer providers are all closed.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
