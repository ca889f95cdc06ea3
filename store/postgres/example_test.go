package postgres_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"time"

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
