package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/llmgate/gateway/credits"
	"github.com/llmgate/gateway/store/postgres"
	"github.com/llmgate/gateway/store/postgres/pgtest"
)

// TestGroupedFailuresStayAlone races calls on one account so that they
// share transactions, where some fail (insufficient money, a hold ID of
// another account, a record ID recorded with other content): each failure
// is its own, and everything else commits.
func TestGroupedFailuresStayAlone(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	ctx := context.Background()
	s, err := postgres.Open(ctx, pgtest.NewDatabase(t), postgres.Options{})
	require.NoError(t, err)
	buy(t, s, "p1", "acme", 5*dollar)
	buy(t, s, "p2", "other", 5*dollar)
	reserve(t, s, "taken", "other", dollar, dollar)
	require.NoError(t, s.Record(ctx, &credits.UsageRecord{ID: "rec-taken", Start: time.Now()}))

	const n = 60 // $5 holds $0.25 twenty times
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			switch i % 3 {
			case 0: // a hold ID that is another account's
				_, errs[i] = s.Reserve(ctx, credits.Reservation{ID: "taken", Account: "acme", Min: 1, Max: 1, TTL: time.Minute})
			case 1: // a record ID kept with other content
				errs[i] = s.Record(ctx, &credits.UsageRecord{ID: "rec-taken", Model: fmt.Sprint(i), Start: time.Now()})
			default:
				id := fmt.Sprint("h", i)
				if _, errs[i] = s.Reserve(ctx, credits.Reservation{ID: id, Account: "acme", Min: 25 * credits.Cent,
					Max: 25 * credits.Cent, TTL: time.Minute}); errs[i] == nil {
					_, errs[i] = s.Settle(ctx, id, 25*credits.Cent, &credits.UsageRecord{ID: "rec-" + id, Start: time.Now()})
				}
			}
		})
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		switch i % 3 {
		case 0, 1:
			require.ErrorIs(t, err, credits.ErrConflict, "call %d", i)
		default:
			require.NoError(t, err, "call %d", i)
		}
	}
	b := balance(t, s, "acme")
	require.Equal(t, dollar*5, b.Spent)
	u, err := s.Usage(ctx, credits.UsageQuery{Account: "acme", ListOptions: credits.ListOptions{Limit: credits.MaxListLimit}})
	require.NoError(t, err)
	require.Len(t, u.Records, 20)
	require.NoError(t, s.Close())
}

// TestGroupedClose closes a store while calls are queued: each returns
// its result or credits.ErrUnavailable, and no goroutine is left.
func TestGroupedClose(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	ctx := context.Background()
	s, err := postgres.Open(ctx, pgtest.NewDatabase(t), postgres.Options{})
	require.NoError(t, err)
	buy(t, s, "p1", "acme", 5*dollar)
	var wg sync.WaitGroup
	for i := range 40 {
		wg.Go(func() {
			_, err := s.Reserve(ctx, credits.Reservation{ID: fmt.Sprint("h", i), Account: "acme", Min: 1, Max: 1, TTL: time.Minute})
			if err != nil && !errors.Is(err, credits.ErrUnavailable) {
				t.Errorf("reserve %d: %v", i, err)
			}
		})
	}
	time.Sleep(time.Millisecond)
	require.NoError(t, s.Close())
	wg.Wait()
}
