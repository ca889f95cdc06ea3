package keys_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/llmgate/gateway/keys"
)

func ExampleNewKey() {
	k, token, err := keys.NewKey("prod")
	if err != nil {
		panic(err)
	}
	// Show token once to the operator; store k, which holds only its hash.
	fmt.Println(token[:3], len(token), keys.LooksLikeToken(token))
	fmt.Println(k.ID[:4], len(k.ID), keys.ValidID(k.ID))
	fmt.Println(k.Hash == keys.Hash(token), strings.HasPrefix(k.Redacted, token[:6]), utf8.RuneCountInString(k.Redacted))
	fmt.Println(keys.LooksLikeToken("sk-proj-0123456789"))
	// Output:
	// lg- 46 true
	// key_ 30 true
	// true true 11
	// false
}

func ExampleRedact() {
	fmt.Println(keys.Redact("sk-ant-api03-0123456789abcdefghijklmnopqrstuvwxyz"))
	fmt.Println(keys.Redact("sk-12345678"))
	// Output:
	// sk-ant…wxyz
	// …78
}

func ExampleSealer() {
	// The host supplies key-encryption keys from its secret manager.
	current := keys.KEK{ID: "2026-12", Key: [32]byte{1, 2, 3}}
	previous := keys.KEK{ID: "2026-06", Key: [32]byte{4, 5, 6}}
	sealer, err := keys.NewSealer(current, previous)
	if err != nil {
		panic(err)
	}
	fmt.Println(current) // a KEK never prints its key

	aad := keys.AttachedAAD("key_aaaaaaaaaaaaaaaaaaaaaaaaaa", "openai")
	sealed, kekID, err := sealer.Seal([]byte("sk-proj-secret"), aad)
	if err != nil {
		panic(err)
	}
	plaintext, err := sealer.Open(sealed, kekID, aad)
	fmt.Println(kekID, len(sealed), string(plaintext), err)

	// Bound to its gateway key and provider: moved elsewhere, it does not open.
	_, err = sealer.Open(sealed, kekID, keys.AttachedAAD("key_aaaaaaaaaaaaaaaaaaaaaaaaaa", "anthropic"))
	fmt.Println(errors.Is(err, keys.ErrUnseal))
	// Output:
	// keys.KEK{ID: "2026-12", Key: [redacted]}
	// 2026-12 43 sk-proj-secret <nil>
	// true
}

func ExampleMemoryStore() {
	ctx := context.Background()
	store := keys.NewMemoryStore()
	k, token, err := keys.NewKey("prod")
	if err != nil {
		panic(err)
	}
	k.Description = "team a"
	if _, err := store.Create(ctx, k); err != nil {
		panic(err)
	}

	// A request presents the token; the gateway looks up its hash.
	found, attached, err := store.Lookup(ctx, keys.Hash(token))
	fmt.Println(found.ID == k.ID, found.Description, len(attached), err)

	_, _, err = store.Lookup(ctx, keys.Hash("lg-unknown"))
	fmt.Println(errors.Is(err, keys.ErrNotFound))
	// Output:
	// true team a 0 <nil>
	// true
}
