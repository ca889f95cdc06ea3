package creditstest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/llmgate/gateway/credits"
)

// LeasingStore is a store that leases: a credits.Store and a
// credits.Leaser.
type LeasingStore interface {
	credits.Store
	credits.Leaser
}

// LeasingReplicas runs one credits.Leasing per store — stores are
// replicas of one database, each with its own connections — spending one
// account down from 24 goroutines with requests that cost up to twice
// their holds and some too large for a lease (held in the store): what the
// requests were charged is what the account paid, exactly, the account is
// spent down, every request left one usage record, and nothing is held
// once the Leasings are closed. The stores may be one store given thrice.
func LeasingReplicas(t *testing.T, stores ...LeasingStore) {
	ctx := context.Background()
	_, err := stores[0].Purchase(ctx, credits.Purchase{ID: "p1", Account: "acme", Amount: 5 * credits.Dollar})
	require.NoError(t, err)
	var (
		wg                 sync.WaitGroup
		spent, uncollected atomic.Int64
		settled, held      atomic.Int64
		replicas           []*credits.Leasing
	)
	for _, s := range stores {
		replicas = append(replicas, credits.NewLeasing(s, credits.LeasingOptions{Size: 25 * credits.Cent, MinBalance: 2,
			FlushInterval: 5 * time.Millisecond}))
	}
	for i := range 24 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l := replicas[i%len(replicas)]
			refused := 0
			for j := 0; ; j++ {
				id := fmt.Sprint("r-", i, "-", j)
				hi := 3 * credits.Cent
				if j%5 == 4 {
					hi = 40 * credits.Cent
				}
				h, err := l.Reserve(ctx, credits.Reservation{ID: id, Account: "acme", Max: hi, Min: credits.Cent, TTL: time.Hour})
				if err == nil && held.Add(int64(h.Amount)) > int64(5*credits.Dollar) {
					t.Errorf("more than the account has held at once")
				}
				if err != nil {
					if refused++; !errors.Is(err, credits.ErrInsufficientCredits) || refused == 20 {
						return
					}
					time.Sleep(5 * time.Millisecond)
					continue
				}
				held.Add(-int64(h.Amount))
				cost := credits.Amount(int64(j * 7919 % int(2*h.Amount+1)))
				s, err := l.Settle(ctx, id, cost, &credits.UsageRecord{ID: id, RequestID: id, Cost: cost, Status: 200, Start: time.Now()})
				if err != nil {
					t.Errorf("settle %s: %v", id, err)
					return
				}
				spent.Add(int64(s.Spent))
				uncollected.Add(int64(s.Uncollected))
				settled.Add(1)
			}
		}()
	}
	wg.Wait()
	for _, l := range replicas {
		require.NoError(t, l.Close(ctx))
	}
	b, err := stores[0].Balance(ctx, "acme")
	require.NoError(t, err)
	require.Zero(t, b.Held)
	require.Equal(t, credits.Amount(spent.Load()), b.Spent, "what the requests were charged is what the account paid (%d uncollected)", uncollected.Load())
	require.Equal(t, 5*credits.Dollar, b.Available+b.Spent)
	require.Less(t, b.Available, credits.Cent, "the account was spent down to less than a request's minimum")
	var records int
	for p, cursor := (credits.UsagePage{}), ""; ; cursor = p.NextCursor {
		p, err = stores[0].Usage(ctx, credits.UsageQuery{ListOptions: credits.ListOptions{Limit: credits.MaxListLimit, Cursor: cursor}})
		require.NoError(t, err)
		records += len(p.Records)
		if p.NextCursor == "" {
			break
		}
	}
	require.EqualValues(t, settled.Load(), records, "one usage record per request")
	t.Logf("%d requests, spent %s, uncollected %s", settled.Load(), b.Spent, credits.Amount(uncollected.Load()))
}
