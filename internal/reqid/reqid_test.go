package reqid

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestNewSortsByTime(t *testing.T) {
	seen := map[string]bool{}
	prev := ""
	for i := range 2000 {
		if i%500 == 0 {
			time.Sleep(2 * time.Millisecond) // a new millisecond
		}
		id := New()
		require.Regexp(t, `^req_[0-9a-v]{26}$`, id)
		require.False(t, seen[id], "duplicate %s", id)
		seen[id] = true
		if i%500 == 0 {
			require.Greater(t, id, prev, "an ID of a later millisecond sorts after the earlier ones")
		}
		prev = max(prev, id)
	}
}
