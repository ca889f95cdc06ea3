package keys_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/llmgate/gateway/keys"
)

func TestKeyExpired(t *testing.T) {
	at := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name    string
		expires time.Time
		want    bool
	}{
		{"no expiry", time.Time{}, false},
		{"later", at.Add(time.Microsecond), false},
		{"at", at, true},
		{"earlier", at.Add(-time.Hour), true},
		{"same instant, other zone", at.In(time.FixedZone("X", 3600)), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := keys.Key{ExpiresAt: tc.expires}
			require.Equal(t, tc.want, k.Expired(at))
		})
	}
}
