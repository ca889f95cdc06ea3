package credits_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/llmgate/gateway/credits"
	"github.com/llmgate/gateway/credits/creditstest"
)

func TestMemoryConformance(t *testing.T) {
	creditstest.Run(t, func(t *testing.T, now func() time.Time) credits.Store {
		return credits.NewMemory(credits.MemoryOptions{Now: now})
	})
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
