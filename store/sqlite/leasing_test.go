package sqlite

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/llmgate/gateway/credits/creditstest"
)

// TestLeasingReplicas runs three credits.Leasing replicas, each on its own
// Store of one database file (creditstest.LeasingReplicas).
func TestLeasingReplicas(t *testing.T) {
	path := filepath.Join(t.TempDir(), "llmgate.db")
	var stores []creditstest.LeasingStore
	for range 3 {
		s, err := Open(context.Background(), path, Options{})
		require.NoError(t, err)
		t.Cleanup(func() { s.Close() })
		stores = append(stores, s)
	}
	creditstest.LeasingReplicas(t, stores...)
}
