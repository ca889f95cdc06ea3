package postgres_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/llmgate/gateway/credits"
	"github.com/llmgate/gateway/keys"
	"github.com/llmgate/gateway/store/postgres"
)

// Open a store shared by gateway replicas, create a key, look it up by its
// token, and watch for changes made by any replica. (Not run by go test:
// it needs a PostgreSQL server.)
func Example() {
	ctx := context.Background()
	s, err := postgres.Open(ctx, os.Getenv("DATABASE_URL"), postgres.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()

	k, token, err := keys.NewKey("default")
	if err != nil {
		log.Fatal(err)
	}
	if _, err := s.Create(ctx, k); err != nil {
		log.Fatal(err)
	}
	got, _, err := s.Lookup(ctx, keys.Hash(token))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(got.ID == k.ID)

	// Drop cached keys as soon as any replica changes them.
	wctx, stop := context.WithTimeout(ctx, time.Minute)
	defer stop()
	go s.Watch(wctx, func(hash [32]byte) { /* cache.Drop(hash) */ })
}

// Keep prepaid credits in the database every replica shares: buy a lot,
// hold a request's worst case before it goes upstream, settle what it
// cost. (Not run by go test: it needs a PostgreSQL server.)
func Example_credits() {
	ctx := context.Background()
	s, err := postgres.Open(ctx, os.Getenv("DATABASE_URL"), postgres.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()

	if _, err := s.Purchase(ctx, credits.Purchase{ID: "order-1", Account: "acme", Amount: 10 * credits.Dollar}); err != nil {
		log.Fatal(err)
	}
	h, err := s.Reserve(ctx, credits.Reservation{ID: "req-1", Account: "acme",
		Max: 50 * credits.Cent, Min: credits.Cent, TTL: 10 * time.Minute})
	if err != nil {
		log.Fatal(err) // errors.Is(err, credits.ErrInsufficientCredits): refuse the request
	}
	st, err := s.Settle(ctx, h.ID, 12*credits.Cent, &credits.UsageRecord{ID: "req-1", Start: h.CreatedAt})
	if err != nil {
		log.Fatal(err)
	}
	b, err := s.Balance(ctx, "acme")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(st.Spent, st.Released, b.Available)

	// One replica, or all of them, releases the holds of crashed
	// requests and records expired lots now and then.
	if _, err := s.Sweep(ctx); err != nil {
		log.Fatal(err)
	}
}
