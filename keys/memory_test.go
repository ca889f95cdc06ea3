package keys_test

import (
	"testing"

	"github.com/llmgate/gateway/keys"
	"github.com/llmgate/gateway/keys/keystoretest"
)

func TestMemoryStoreConformance(t *testing.T) {
	keystoretest.Run(t, func(t *testing.T) keys.KeyStore { return keys.NewMemoryStore() })
}
