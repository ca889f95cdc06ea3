package credits_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/llmgate/gateway/credits"
	"github.com/llmgate/gateway/credits/creditstest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestMemoryConformance(t *testing.T) {
	creditstest.Run(t, func(t *testing.T, now func() time.Time) credits.Store {
		return credits.NewMemory(credits.MemoryOptions{Now: now})
	})
}

func TestMemoryZeroValue(t *testing.T) {
	ctx := t.Context()
	var m credits.Memory // the wall clock
	before := time.Now()
	lot, err := m.Purchase(ctx, credits.Purchase{ID: "order-1", Account: "acme", Amount: 5 * credits.Dollar})
	require.NoError(t, err)
	require.False(t, lot.PurchasedAt.Before(before.Truncate(time.Microsecond)))
	require.Equal(t, time.UTC, lot.PurchasedAt.Location())
	require.Equal(t, lot.PurchasedAt.Add(credits.LotLifetime), lot.ExpiresAt)
	_, err = m.Reserve(ctx, credits.Reservation{ID: "h", Account: "acme", Max: credits.Dollar, Min: credits.Dollar, TTL: time.Minute})
	require.NoError(t, err)
	s, err := m.Settle(ctx, "h", 2*credits.Dollar, nil)
	require.NoError(t, err)
	require.Equal(t, credits.Settlement{Spent: 2 * credits.Dollar}, s)
	b, err := m.Balance(ctx, "acme")
	require.NoError(t, err)
	require.Equal(t, 3*credits.Dollar, b.Available)
}

func TestMemoryClockGoingBack(t *testing.T) {
	ctx := t.Context()
	clock := creditstest.NewClock(time.Date(2030, 1, 2, 3, 4, 5, 6789, time.FixedZone("x", 3600)))
	m := credits.NewMemory(credits.MemoryOptions{Now: clock.Now})
	first, err := m.Purchase(ctx, credits.Purchase{ID: "order-1", Account: "acme", Amount: 5 * credits.Dollar})
	require.NoError(t, err)
	require.Equal(t, time.Date(2030, 1, 2, 2, 4, 5, 6000, time.UTC), first.PurchasedAt)
	// A clock going back is held at the latest time it gave, so lists
	// stay in order and nothing un-expires.
	clock.Advance(-time.Hour)
	second, err := m.Purchase(ctx, credits.Purchase{ID: "order-2", Account: "acme", Amount: 5 * credits.Dollar})
	require.NoError(t, err)
	require.Equal(t, first.PurchasedAt, second.PurchasedAt)
	p, err := m.Transactions(ctx, "acme", credits.ListOptions{})
	require.NoError(t, err)
	require.Len(t, p.Transactions, 2)
	require.Equal(t, "order-2", p.Transactions[0].LotID, "newest first")

	clock.Set(first.ExpiresAt)
	b, err := m.Balance(ctx, "acme")
	require.NoError(t, err)
	require.Equal(t, 10*credits.Dollar, b.Expired)
	clock.Advance(-credits.LotLifetime)
	b, err = m.Balance(ctx, "acme")
	require.NoError(t, err)
	require.Equal(t, 10*credits.Dollar, b.Expired, "the lots came back to life")
}

func ExampleMemory() {
	ctx := context.Background()
	m := credits.NewMemory(credits.MemoryOptions{})
	if _, err := m.Purchase(ctx, credits.Purchase{ID: "order-1", Account: "acme", Amount: 10 * credits.Dollar}); err != nil {
		panic(err)
	}
	// Before the request: hold its worst case, at least 10 cents.
	hold, err := m.Reserve(ctx, credits.Reservation{ID: "req-1", Account: "acme", Max: 2 * credits.Dollar, Min: 10 * credits.Cent, TTL: time.Minute})
	if err != nil {
		panic(err)
	}
	fmt.Println("held", hold.Amount)
	// After it: spend what it cost, give the rest back.
	s, err := m.Settle(ctx, "req-1", 1_234_567, nil)
	if err != nil {
		panic(err)
	}
	fmt.Println("spent", s.Spent, "released", s.Released)
	b, err := m.Balance(ctx, "acme")
	if err != nil {
		panic(err)
	}
	fmt.Println("available", b.Available, "held", b.Held, "spent", b.Spent, "purchased", b.Purchased)
	// Output:
	// held 2.00
	// spent 1.234567 released 0.765433
	// available 8.765433 held 0.00 spent 1.234567 purchased 10.00
}
