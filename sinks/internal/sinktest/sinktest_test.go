package sinktest

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestEvent(t *testing.T) {
	a, b := Event(7), Event(7)
	require.Equal(t, "req-7", a.RequestID)
	require.Equal(t, a, b, "the same i makes the same event")
	a.Attempts[0].Status = 500
	a.Principal.Account = "other"
	require.Equal(t, 503, b.Attempts[0].Status, "events share no memory")
	require.Equal(t, "acct", b.Principal.Account, "events share no memory")
	require.Equal(t, "anthropic:claude-haiku", b.ServedBy)
}
