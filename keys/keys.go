// Package keys is the contract of llmgate's gateway API keys: the keys an
// operator hands to each client or team, which authenticate requests to the
// gateway. A key's token is shown once, when the key is created; stores keep
// only its SHA-256 hash ([Hash]), and the gateway looks keys up by that hash
// and compares in constant time.
//
// [KeyStore] is what a store implements (memory here, SQLite in store/sqlite,
// PostgreSQL in store/postgres); package keystoretest holds the one
// conformance suite every store passes. This package imports nothing of
// llmgate's, so a store depends on the contract only.
package keys

import (
	"context"
	"errors"
	"time"
)

// Limits of the free-form fields, in bytes (UTF-8).
const (
	MaxDescription = 255
	MaxMetadata    = 4096
	// MaxAllowList bounds AllowedProviders and AllowedModels.
	MaxAllowList = 256
	// MaxAttachedPerProvider bounds the provider keys attached to one
	// gateway key for one provider.
	MaxAttachedPerProvider = 15
	// MaxListLimit bounds ListOptions.Limit.
	MaxListLimit = 100
)

// Errors of stores, matched with errors.Is.
var (
	// ErrNotFound: no key (or attached key) with that ID or hash.
	ErrNotFound = errors.New("keys: not found")
	// ErrConflict: a key with that ID or hash already exists.
	ErrConflict = errors.New("keys: already exists")
	// ErrInvalid wraps a *ValidationError: a field breaks a rule.
	ErrInvalid = errors.New("keys: invalid")
	// ErrUnavailable wraps a store's failure to answer (database down,
	// timeout): the request may be retried.
	ErrUnavailable = errors.New("keys: store unavailable")
)

// Key is a gateway API key as stored: never its token. The zero Key is not
// a valid key. Key is a plain value, safe to copy; slices are owned by the
// Key (stores return copies).
type Key struct {
	// ID is the key's public identifier ("key_" and 26 base32 characters),
	// safe to log.
	ID string
	// Hash is the SHA-256 of the token (see Hash). Stores index keys by it.
	Hash [32]byte
	// Redacted is the display form of the token: its prefix and last four
	// characters ("lg-3fZ…k9Qa"), set at creation; never enough to use it.
	Redacted string
	// Endpoint names the gateway the key works on: one store can serve
	// several gateways, and a key of another endpoint is refused (403).
	Endpoint string
	// Account is whose credits the key spends (step 6); "" for none.
	Account string
	// Description (≤ MaxDescription bytes) and Metadata (≤ MaxMetadata
	// bytes) are free-form operator text.
	Description string
	Metadata    string
	// CreatedAt and UpdatedAt are set by the store (UTC, truncated to the
	// microsecond so every store returns what it was given).
	CreatedAt, UpdatedAt time.Time
	// LastUsed is when a request last authenticated with the key, written
	// in batches by Touch; zero when never.
	LastUsed time.Time
	// ExpiresAt, when not zero, is when the key stops working.
	ExpiresAt time.Time
	// AllowedProviders and AllowedModels, when not empty, restrict the
	// key to those provider IDs and model names (as clients name them,
	// "provider:model" or a bare catalog ID); matched ASCII
	// case-insensitively by the gateway.
	AllowedProviders []string
	AllowedModels    []string
}

// Expired reports whether the key has an expiry at or before now.
func (k *Key) Expired(now time.Time) bool {
	return !k.ExpiresAt.IsZero() && !now.Before(k.ExpiresAt)
}

// Update changes some fields of a key; a nil field is left as it is.
// Setting ExpiresAt to a pointer to the zero time removes the expiry; an
// empty (non-nil) allow-list removes the restriction.
type Update struct {
	Description      *string
	Metadata         *string
	ExpiresAt        *time.Time
	AllowedProviders *[]string
	AllowedModels    *[]string
}

// ListOptions selects a page of keys.
type ListOptions struct {
	// Endpoint, when not empty, lists only that endpoint's keys.
	Endpoint string
	// Limit is the page size, 1 to MaxListLimit; 0 means MaxListLimit.
	// A negative Limit or one above MaxListLimit is an error wrapping
	// ErrInvalid (field "limit"), not clamped, so a client asking for
	// more than it can get learns so (see ListLimit).
	Limit int
	// Cursor is the NextCursor of the previous page; "" starts at the
	// newest key. Pages run from newest to oldest (by CreatedAt, then ID,
	// both descending). A cursor the store did not make is an error
	// wrapping ErrInvalid (field "cursor"). Cursors are opaque; stores
	// may use EncodeCursor and DecodeCursor.
	Cursor string
}

// Page is one page of a list.
type Page struct {
	Keys []Key
	// NextCursor continues the list; "" when this is the last page.
	NextCursor string
}

// Use is one authenticated request's use of a key, for Touch.
type Use struct {
	ID string
	At time.Time
}

// AttachedKey is a provider key attached to a gateway key (BYOK): requests
// with the gateway key use it for that provider instead of the gateway's
// configured keys, newest first. Stores keep the sealed secret only (see
// Sealer); they never see the plaintext.
type AttachedKey struct {
	// ID is the attached key's identifier ("pk_" and 26 base32
	// characters), safe to log.
	ID string
	// KeyID is the gateway key it belongs to.
	KeyID string
	// Provider is the provider ID it is for.
	Provider string
	// Redacted is the display form of the provider key.
	Redacted string
	// Sealed is the provider key encrypted by a Sealer (nonce, ciphertext
	// and tag, with the key-encryption key's ID).
	Sealed []byte
	// KEKID names the key-encryption key Sealed is encrypted under, so a
	// rotation can find the entries to re-wrap.
	KEKID string
	// CreatedAt is set by the store.
	CreatedAt time.Time
}

// KeyStore stores gateway API keys. Implementations are safe for
// concurrent use. Every method honours ctx; a store that cannot answer
// returns an error wrapping ErrUnavailable.
type KeyStore interface {
	// Lookup returns the key whose token hashes to hash, with its
	// attached keys, or ErrNotFound. An expired key is returned like any
	// other (the gateway checks Expired). It is on the request path: the
	// gateway caches its answers (see Cache).
	Lookup(ctx context.Context, hash [32]byte) (Key, []AttachedKey, error)
	// Create stores k (ID, Hash and Redacted set by the caller, see
	// NewKey) and returns it as stored, with CreatedAt and UpdatedAt set;
	// ExpiresAt and LastUsed are stored in UTC, truncated to the
	// microsecond.
	// ErrConflict when the ID or hash exists; ErrInvalid when a field
	// breaks a rule (see Validate).
	Create(ctx context.Context, k Key) (Key, error)
	// Get returns the key with that ID, or ErrNotFound.
	Get(ctx context.Context, id string) (Key, error)
	// List returns a page of keys, newest first.
	List(ctx context.Context, o ListOptions) (Page, error)
	// Update applies u to the key with that ID and returns it, with
	// UpdatedAt set; ErrNotFound, ErrInvalid.
	Update(ctx context.Context, id string, u Update) (Key, error)
	// Delete removes the key and its attached keys; ErrNotFound when there
	// is none. A deleted key stops working at once on this store.
	Delete(ctx context.Context, id string) error
	// Touch records uses of keys: each key's LastUsed becomes the latest
	// At given for it (UTC, truncated to the microsecond), never earlier
	// than it was. Unknown IDs are ignored. Touch changes no other field
	// (not UpdatedAt).
	Touch(ctx context.Context, uses []Use) error
	// Attach stores an attached key (ID, KeyID, Provider, Redacted, Sealed
	// and KEKID set by the caller, see ValidateAttached) and returns it
	// with CreatedAt set; ErrInvalid when a field breaks a rule or beyond
	// MaxAttachedPerProvider for its provider (see TooManyAttached);
	// ErrNotFound when the gateway key does not exist; ErrConflict when
	// the attached ID exists.
	Attach(ctx context.Context, a AttachedKey) (AttachedKey, error)
	// Detach removes the attached key with that ID from the gateway key;
	// ErrNotFound when there is none.
	Detach(ctx context.Context, keyID, attachedID string) error
	// Attached lists a gateway key's attached keys, newest first (by
	// CreatedAt, then ID, both descending; Lookup uses the same order);
	// ErrNotFound when the gateway key does not exist.
	Attached(ctx context.Context, keyID string) ([]AttachedKey, error)
	// Rewrap replaces the Sealed and KEKID of attached keys sealed under
	// oldKEK with what fn returns for each (a key rotation); it returns
	// how many it rewrapped. fn receives the whole entry, because opening
	// it needs its KeyID and Provider (see AttachedAAD). When fn fails,
	// Rewrap returns an error wrapping fn's; entries already rewrapped
	// may stay so (each is valid either way, and a second Rewrap finishes
	// the rest).
	Rewrap(ctx context.Context, oldKEK string, fn func(a AttachedKey) (resealed []byte, kek string, err error)) (int, error)
}

// Watcher is an optional capability of a KeyStore shared by several gateway
// replicas: Watch calls changed with the token hash of each key that is
// updated or deleted, or whose attached keys are attached or detached,
// anywhere (PostgreSQL LISTEN/NOTIFY), until ctx ends,
// so that caches drop it at once instead of at the end of their TTL. It
// returns when ctx ends or the watch fails.
type Watcher interface {
	Watch(ctx context.Context, changed func(hash [32]byte)) error
}

// Pinger is an optional capability of a KeyStore backed by a database:
// Ping makes one round trip to it, so that a readiness probe can tell a
// store that answers from one that cannot. It returns an error wrapping
// ErrUnavailable when the store could not answer (or ctx's error when ctx
// ended first).
type Pinger interface {
	Ping(ctx context.Context) error
}

// Closer is implemented by stores holding resources (connections).
type Closer interface {
	Close() error
}
