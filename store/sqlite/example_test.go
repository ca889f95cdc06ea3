package sqlite_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

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
