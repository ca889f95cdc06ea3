package sqlite_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/llmgate/gateway/credits"
	"github.com/llmgate/gateway/keys"
	"github.com/llmgate/gateway/store/sqlite"
)

func Example() {
	dir, err := os.MkdirTemp("", "llmgate")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)

	ctx := context.Background()
	store, err := sqlite.Open(ctx, filepath.Join(dir, "llmgate.db"), sqlite.Options{})
	if err != nil {
		panic(err)
	}
	defer store.Close()

	k, token, err := keys.NewKey("prod")
	if err != nil {
		panic(err)
	}
	k.Description = "team A"
	if _, err := store.Create(ctx, k); err != nil {
		panic(err)
	}

	// A request presents the token; the gateway looks it up by its hash.
	got, attached, err := store.Lookup(ctx, keys.Hash(token))
	fmt.Println(got.ID == k.ID, got.Endpoint, got.Description, len(attached), err)
	// Output: true prod team A 0 <nil>
}

// The same Store keeps prepaid credits: a purchase, then one request's
// hold, settled for what the request cost.
func Example_credits() {
	dir, err := os.MkdirTemp("", "llmgate")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)

	ctx := context.Background()
	store, err := sqlite.Open(ctx, filepath.Join(dir, "llmgate.db"), sqlite.Options{})
	if err != nil {
		panic(err)
	}
	defer store.Close()

	if _, err := store.Purchase(ctx, credits.Purchase{ID: "order-1", Account: "acme", Amount: 10 * credits.Dollar}); err != nil {
		panic(err)
	}
	// Before the request goes upstream: hold its worst case.
	hold, err := store.Reserve(ctx, credits.Reservation{ID: "req-1", Account: "acme",
		Max: 2 * credits.Dollar, Min: 10 * credits.Cent, TTL: time.Minute})
	if err != nil {
		panic(err)
	}
	fmt.Println("held", hold.Amount)
	// When it ends: spend what it cost and keep its usage record.
	s, err := store.Settle(ctx, "req-1", 1_234_567, &credits.UsageRecord{ID: "req-1", Provider: "openai",
		Model: "gpt-4o", Cost: 1_200_000, Fee: 34_567, Start: time.Now()})
	if err != nil {
		panic(err)
	}
	fmt.Println("spent", s.Spent, "released", s.Released)
	b, err := store.Balance(ctx, "acme")
	if err != nil {
		panic(err)
	}
	fmt.Println("available", b.Available, "spent", b.Spent, "purchased", b.Purchased)
	usage, err := store.Usage(ctx, credits.UsageQuery{Account: "acme"})
	if err != nil {
		panic(err)
	}
	fmt.Println(len(usage.Records), usage.Records[0].Paid, usage.Records[0].Charge())
	// Output:
	// held 2.00
	// spent 1.234567 released 0.765433
	// available 8.765433 spent 1.234567 purchased 10.00
	// 1 true 1.234567
}
