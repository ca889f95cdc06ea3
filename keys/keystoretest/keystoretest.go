// Package keystoretest is the conformance suite of keys.KeyStore: every
// store (memory, SQLite, PostgreSQL) runs it from its tests with Run.
package keystoretest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/llmgate/gateway/keys"
)

// Run runs the conformance suite against the stores newStore returns.
// newStore is called once per subtest and must return a new, empty store
// (closing it with t.Cleanup when it holds resources). Subtests run one
// after another, never in parallel. The suite asserts no wall-clock times:
// only that times are UTC and truncated to the microsecond, that
// CreatedAt ≤ UpdatedAt, that UpdatedAt never goes back, and that of two
// writes one after the other the later has a time no earlier.
//
// Rules the suite pins down beyond keys.KeyStore's documentation:
//   - empty and nil allow-lists are the same (stores may return either);
//   - ListOptions.Limit above keys.MaxListLimit or negative is ErrInvalid;
//   - the last page of a list has an empty NextCursor, even when it is
//     full;
//   - Attached of an unknown gateway key is ErrNotFound;
//   - a method called with a canceled context returns an error and
//     changes nothing;
//   - a store implementing keys.Watcher reports the token hash of keys
//     updated, deleted, attached to and detached from.
func Run(t *testing.T, newStore func(t *testing.T) keys.KeyStore) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s keys.KeyStore)
	}{
		{"CreateGetLookup", testCreateGetLookup},
		{"CreateCopies", testCreateCopies},
		{"CreateConflict", testCreateConflict},
		{"CreateInvalid", testCreateInvalid},
		{"NotFound", testNotFound},
		{"Update", testUpdate},
		{"UpdateInvalid", testUpdateInvalid},
		{"Delete", testDelete},
		{"List", testList},
		{"ListLimits", testListLimits},
		{"Touch", testTouch},
		{"Attach", testAttach},
		{"AttachInvalid", testAttachInvalid},
		{"AttachLimit", testAttachLimit},
		{"AttachLimitConcurrent", testAttachLimitConcurrent},
		{"Rewrap", testRewrap},
		{"Concurrent", testConcurrent},
		{"CanceledContext", testCanceled},
		{"Watch", testWatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.fn(t, newStore(t))
		})
	}
}

// newKey mints a key for endpoint, failing t on error.
func newKey(t testing.TB, endpoint string) keys.Key {
	t.Helper()
	k, _, err := keys.NewKey(endpoint)
	require.NoError(t, err)
	return k
}

// create stores a new key of endpoint.
func create(t testing.TB, s keys.KeyStore, endpoint string) keys.Key {
	t.Helper()
	k, err := s.Create(context.Background(), newKey(t, endpoint))
	require.NoError(t, err)
	return k
}

// fullKey is a key with every field the caller sets.
func fullKey(t testing.TB) keys.Key {
	k := newKey(t, "ep-full")
	k.Account = "acct-42"
	k.Description = "team ünicode – 鍵"
	k.Metadata = `{"owner":"alice","cost_center":7}`
	// A zone other than UTC and nanoseconds: stored as UTC microseconds.
	k.ExpiresAt = time.Date(2031, 2, 3, 4, 5, 6, 123456789, time.FixedZone("X", 5*3600))
	k.AllowedProviders = []string{"openai", "anthropic"}
	k.AllowedModels = []string{"openai:gpt-4o", "claude-sonnet-4", "Mixed-Case"}
	return k
}

// requireTime checks that tm is UTC and truncated to the microsecond.
func requireTime(t testing.TB, tm time.Time, what string) {
	t.Helper()
	require.Same(t, time.UTC, tm.Location(), "%s %v must be UTC", what, tm)
	require.True(t, tm.Equal(tm.Truncate(time.Microsecond)), "%s %v must be truncated to the microsecond", what, tm)
}

// norm returns t in UTC, truncated to the microsecond.
func norm(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return t.UTC().Truncate(time.Microsecond)
}

// requireKey checks that got is want as a store returns it: the caller's
// fields equal (times normalised, nil and empty lists alike), times UTC and
// microsecond-truncated, CreatedAt set and not after UpdatedAt. The
// store-set times are compared only when want has them.
func requireKey(t testing.TB, want, got keys.Key) {
	t.Helper()
	require.Equal(t, want.ID, got.ID)
	require.Equal(t, want.Hash, got.Hash, "hash")
	require.Equal(t, want.Redacted, got.Redacted, "redacted")
	require.Equal(t, want.Endpoint, got.Endpoint, "endpoint")
	require.Equal(t, want.Account, got.Account, "account")
	require.Equal(t, want.Description, got.Description, "description")
	require.Equal(t, want.Metadata, got.Metadata, "metadata")
	require.Equal(t, listOf(want.AllowedProviders), listOf(got.AllowedProviders), "allowed providers")
	require.Equal(t, listOf(want.AllowedModels), listOf(got.AllowedModels), "allowed models")
	for _, f := range []struct {
		name      string
		want, got time.Time
	}{{"expires_at", want.ExpiresAt, got.ExpiresAt}, {"last_used", want.LastUsed, got.LastUsed}} {
		requireTime(t, f.got, f.name)
		require.True(t, norm(f.want).Equal(f.got), "%s: want %v, got %v", f.name, norm(f.want), f.got)
		require.Equal(t, f.want.IsZero(), f.got.IsZero(), "%s zero", f.name)
	}
	require.False(t, got.CreatedAt.IsZero(), "created_at is set")
	requireTime(t, got.CreatedAt, "created_at")
	requireTime(t, got.UpdatedAt, "updated_at")
	require.False(t, got.UpdatedAt.Before(got.CreatedAt), "updated_at %v before created_at %v", got.UpdatedAt, got.CreatedAt)
	if !want.CreatedAt.IsZero() {
		require.True(t, want.CreatedAt.Equal(got.CreatedAt), "created_at: want %v, got %v", want.CreatedAt, got.CreatedAt)
	}
	if !want.UpdatedAt.IsZero() {
		require.True(t, want.UpdatedAt.Equal(got.UpdatedAt), "updated_at: want %v, got %v", want.UpdatedAt, got.UpdatedAt)
	}
}

// listOf returns l with nil for an empty list.
func listOf(l []string) []string {
	if len(l) == 0 {
		return nil
	}
	return l
}

// requireInvalid checks that err wraps ErrInvalid through a
// *ValidationError naming field.
func requireInvalid(t testing.TB, err error, field string) {
	t.Helper()
	require.ErrorIs(t, err, keys.ErrInvalid)
	var ve *keys.ValidationError
	require.ErrorAs(t, err, &ve)
	require.Equal(t, field, ve.Field, "field of %v", err)
}

func testCreateGetLookup(t *testing.T, s keys.KeyStore) {
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		key  keys.Key
	}{
		{"every field", fullKey(t)},
		{"required fields only", newKey(t, "ep-min")},
		{"longest fields", func() keys.Key {
			k := newKey(t, strings.Repeat("e", keys.MaxDescription))
			k.Account = strings.Repeat("a", keys.MaxDescription)
			k.Description = strings.Repeat("d", keys.MaxDescription)
			k.Metadata = strings.Repeat("m", keys.MaxMetadata)
			for i := range keys.MaxAllowList {
				k.AllowedProviders = append(k.AllowedProviders, fmt.Sprintf("p%d", i))
				k.AllowedModels = append(k.AllowedModels, fmt.Sprintf("m%d-%s", i, strings.Repeat("x", 200)))
			}
			return k
		}()},
		{"empty allow-lists", func() keys.Key {
			k := newKey(t, "ep-empty")
			k.AllowedProviders, k.AllowedModels = []string{}, []string{}
			return k
		}()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			created, err := s.Create(ctx, tc.key)
			require.NoError(t, err)
			requireKey(t, tc.key, created)
			require.True(t, created.LastUsed.IsZero())

			got, err := s.Get(ctx, tc.key.ID)
			require.NoError(t, err)
			requireKey(t, created, got)

			got, attached, err := s.Lookup(ctx, tc.key.Hash)
			require.NoError(t, err)
			requireKey(t, created, got)
			require.Empty(t, attached)
		})
	}
	t.Run("later key created no earlier", func(t *testing.T) {
		a := create(t, s, "ep-order")
		b := create(t, s, "ep-order")
		require.False(t, b.CreatedAt.Before(a.CreatedAt))
	})
}

func testCreateCopies(t *testing.T, s keys.KeyStore) {
	ctx := context.Background()
	k := fullKey(t)
	created, err := s.Create(ctx, k)
	require.NoError(t, err)
	// Neither the caller's slices nor the returned ones are the store's.
	k.AllowedProviders[0] = "changed"
	created.AllowedModels[0] = "changed"
	got, err := s.Get(ctx, k.ID)
	require.NoError(t, err)
	require.Equal(t, "openai", got.AllowedProviders[0])
	require.Equal(t, "openai:gpt-4o", got.AllowedModels[0])
	got.AllowedProviders[1] = "changed"
	got, _, err = s.Lookup(ctx, k.Hash)
	require.NoError(t, err)
	require.Equal(t, "anthropic", got.AllowedProviders[1])
}

func testCreateConflict(t *testing.T, s keys.KeyStore) {
	ctx := context.Background()
	orig := fullKey(t)
	stored, err := s.Create(ctx, orig)
	require.NoError(t, err)

	t.Run("same ID", func(t *testing.T) {
		k := newKey(t, "ep-other")
		k.ID = orig.ID
		_, err := s.Create(ctx, k)
		require.ErrorIs(t, err, keys.ErrConflict)
		_, _, err = s.Lookup(ctx, k.Hash)
		require.ErrorIs(t, err, keys.ErrNotFound)
	})
	t.Run("same hash", func(t *testing.T) {
		k := newKey(t, "ep-other")
		k.Hash = orig.Hash
		_, err := s.Create(ctx, k)
		require.ErrorIs(t, err, keys.ErrConflict)
		_, err = s.Get(ctx, k.ID)
		require.ErrorIs(t, err, keys.ErrNotFound)
	})
	got, err := s.Get(ctx, orig.ID)
	require.NoError(t, err)
	requireKey(t, stored, got)
}

func testCreateInvalid(t *testing.T, s keys.KeyStore) {
	ctx := context.Background()
	long := strings.Repeat("x", keys.MaxDescription+1)
	for _, tc := range []struct {
		name   string
		change func(k *keys.Key)
		field  string
	}{
		{"no ID", func(k *keys.Key) { k.ID = "" }, "id"},
		{"bad ID", func(k *keys.Key) { k.ID = "key_" + strings.Repeat("A", 26) }, "id"},
		{"no hash", func(k *keys.Key) { k.Hash = [32]byte{} }, "hash"},
		{"no redacted", func(k *keys.Key) { k.Redacted = "" }, "redacted"},
		{"no endpoint", func(k *keys.Key) { k.Endpoint = "" }, "endpoint"},
		{"long endpoint", func(k *keys.Key) { k.Endpoint = long }, "endpoint"},
		{"long account", func(k *keys.Key) { k.Account = long }, "account"},
		{"bad UTF-8 account", func(k *keys.Key) { k.Account = "a\xff" }, "account"},
		{"long description", func(k *keys.Key) { k.Description = long }, "description"},
		{"bad UTF-8 description", func(k *keys.Key) { k.Description = "\xc3" }, "description"},
		{"long metadata", func(k *keys.Key) { k.Metadata = strings.Repeat("m", keys.MaxMetadata+1) }, "metadata"},
		{"bad UTF-8 metadata", func(k *keys.Key) { k.Metadata = "\xff" }, "metadata"},
		{"long provider list", func(k *keys.Key) { k.AllowedProviders = make([]string, keys.MaxAllowList+1) }, "allowed_providers"},
		{"long model list", func(k *keys.Key) { k.AllowedModels = make([]string, keys.MaxAllowList+1) }, "allowed_models"},
		{"empty provider", func(k *keys.Key) { k.AllowedProviders = []string{"openai", ""} }, "allowed_providers[1]"},
		{"spaced model", func(k *keys.Key) { k.AllowedModels = []string{" gpt-4o"} }, "allowed_models[0]"},
		{"long model", func(k *keys.Key) { k.AllowedModels = []string{"a", "b", long} }, "allowed_models[2]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := fullKey(t)
			tc.change(&k)
			_, err := s.Create(ctx, k)
			requireInvalid(t, err, tc.field)
			if keys.ValidID(k.ID) {
				_, err = s.Get(ctx, k.ID)
				require.ErrorIs(t, err, keys.ErrNotFound)
			}
			_, _, err = s.Lookup(ctx, k.Hash)
			require.ErrorIs(t, err, keys.ErrNotFound)
		})
	}
}

func testNotFound(t *testing.T, s keys.KeyStore) {
	ctx := context.Background()
	known := create(t, s, "ep")
	unknown := newKey(t, "ep")
	desc := "x"
	for _, tc := range []struct {
		name string
		call func() error
	}{
		{"get", func() error { _, err := s.Get(ctx, unknown.ID); return err }},
		{"get malformed ID", func() error { _, err := s.Get(ctx, "nope"); return err }},
		{"lookup", func() error { _, _, err := s.Lookup(ctx, unknown.Hash); return err }},
		{"lookup zero hash", func() error { _, _, err := s.Lookup(ctx, [32]byte{}); return err }},
		{"update", func() error { _, err := s.Update(ctx, unknown.ID, keys.Update{Description: &desc}); return err }},
		{"empty update", func() error { _, err := s.Update(ctx, unknown.ID, keys.Update{}); return err }},
		{"delete", func() error { return s.Delete(ctx, unknown.ID) }},
		{"attached", func() error { _, err := s.Attached(ctx, unknown.ID); return err }},
		{"attach", func() error { _, err := s.Attach(ctx, attachedFor(unknown.ID, "openai", "kek-1")); return err }},
		{"detach from unknown key", func() error { return s.Detach(ctx, unknown.ID, keys.NewAttachedID()) }},
		{"detach unknown", func() error { return s.Detach(ctx, known.ID, keys.NewAttachedID()) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.ErrorIs(t, tc.call(), keys.ErrNotFound)
		})
	}
	got, err := s.Get(ctx, known.ID)
	require.NoError(t, err)
	requireKey(t, known, got)
}

// ptr returns a pointer to v.
func ptr[T any](v T) *T { return &v }

func testUpdate(t *testing.T, s keys.KeyStore) {
	ctx := context.Background()
	newExpiry := time.Date(2040, 5, 6, 7, 8, 9, 987654321, time.FixedZone("Y", -7*3600))
	for _, tc := range []struct {
		name   string
		u      keys.Update
		change func(k *keys.Key)
	}{
		{"nothing", keys.Update{}, func(k *keys.Key) {}},
		{"description", keys.Update{Description: ptr("new – описание")}, func(k *keys.Key) { k.Description = "new – описание" }},
		{"clear description", keys.Update{Description: ptr("")}, func(k *keys.Key) { k.Description = "" }},
		{"metadata", keys.Update{Metadata: ptr(`{"v":2}`)}, func(k *keys.Key) { k.Metadata = `{"v":2}` }},
		{"expiry", keys.Update{ExpiresAt: &newExpiry}, func(k *keys.Key) { k.ExpiresAt = newExpiry }},
		{"clear expiry", keys.Update{ExpiresAt: &time.Time{}}, func(k *keys.Key) { k.ExpiresAt = time.Time{} }},
		{"providers", keys.Update{AllowedProviders: &[]string{"mistral"}}, func(k *keys.Key) { k.AllowedProviders = []string{"mistral"} }},
		{"clear providers", keys.Update{AllowedProviders: &[]string{}}, func(k *keys.Key) { k.AllowedProviders = nil }},
		{"models", keys.Update{AllowedModels: &[]string{"a", "b", "c", "d"}}, func(k *keys.Key) { k.AllowedModels = []string{"a", "b", "c", "d"} }},
		{"clear models", keys.Update{AllowedModels: &[]string{}}, func(k *keys.Key) { k.AllowedModels = nil }},
		{"everything", keys.Update{
			Description: ptr("all"), Metadata: ptr("m"), ExpiresAt: &newExpiry,
			AllowedProviders: &[]string{"x"}, AllowedModels: &[]string{"y"},
		}, func(k *keys.Key) {
			k.Description, k.Metadata, k.ExpiresAt = "all", "m", newExpiry
			k.AllowedProviders, k.AllowedModels = []string{"x"}, []string{"y"}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before, err := s.Create(ctx, fullKey(t))
			require.NoError(t, err)
			other := create(t, s, "ep-other")

			got, err := s.Update(ctx, before.ID, tc.u)
			require.NoError(t, err)
			want := before
			tc.change(&want)
			want.UpdatedAt = time.Time{}
			requireKey(t, want, got)
			require.True(t, got.CreatedAt.Equal(before.CreatedAt), "created_at unchanged")
			require.False(t, got.UpdatedAt.Before(before.UpdatedAt), "updated_at %v went back from %v", got.UpdatedAt, before.UpdatedAt)

			stored, err := s.Get(ctx, before.ID)
			require.NoError(t, err)
			requireKey(t, got, stored)
			stored, _, err = s.Lookup(ctx, before.Hash)
			require.NoError(t, err)
			requireKey(t, got, stored)

			// A second update moves UpdatedAt no earlier.
			again, err := s.Update(ctx, before.ID, keys.Update{Metadata: ptr("again")})
			require.NoError(t, err)
			require.False(t, again.UpdatedAt.Before(got.UpdatedAt))

			// Other keys are untouched.
			o, err := s.Get(ctx, other.ID)
			require.NoError(t, err)
			requireKey(t, other, o)
		})
	}
	t.Run("update slices are copied", func(t *testing.T) {
		k := create(t, s, "ep")
		models := []string{"a", "b"}
		_, err := s.Update(ctx, k.ID, keys.Update{AllowedModels: &models})
		require.NoError(t, err)
		models[0] = "changed"
		got, err := s.Get(ctx, k.ID)
		require.NoError(t, err)
		require.Equal(t, []string{"a", "b"}, got.AllowedModels)
	})
}

func testUpdateInvalid(t *testing.T, s keys.KeyStore) {
	ctx := context.Background()
	k, err := s.Create(ctx, fullKey(t))
	require.NoError(t, err)
	for _, tc := range []struct {
		name  string
		u     keys.Update
		field string
	}{
		{"long description", keys.Update{Description: ptr(strings.Repeat("d", keys.MaxDescription+1))}, "description"},
		{"bad UTF-8 description", keys.Update{Description: ptr("\xff")}, "description"},
		{"long metadata", keys.Update{Metadata: ptr(strings.Repeat("m", keys.MaxMetadata+1))}, "metadata"},
		{"long providers", keys.Update{AllowedProviders: ptr(make([]string, keys.MaxAllowList+1))}, "allowed_providers"},
		{"bad model", keys.Update{AllowedModels: &[]string{"ok", "bad "}}, "allowed_models[1]"},
		{"valid and invalid", keys.Update{Description: ptr("fine"), Metadata: ptr("\xff")}, "metadata"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.Update(ctx, k.ID, tc.u)
			requireInvalid(t, err, tc.field)
			got, err := s.Get(ctx, k.ID)
			require.NoError(t, err)
			requireKey(t, k, got)
		})
	}
}

// attachedFor returns a new attached key for keyID, sealed under kek.
func attachedFor(keyID, provider, kek string) keys.AttachedKey {
	id := keys.NewAttachedID()
	return keys.AttachedKey{
		ID:       id,
		KeyID:    keyID,
		Provider: provider,
		Redacted: "sk-pro…" + id[len(id)-4:],
		Sealed:   append([]byte{1, 0, 0xff}, id...),
		KEKID:    kek,
	}
}

// attach stores a new attached key.
func attach(t testing.TB, s keys.KeyStore, keyID, provider, kek string) keys.AttachedKey {
	t.Helper()
	a, err := s.Attach(context.Background(), attachedFor(keyID, provider, kek))
	require.NoError(t, err)
	return a
}

func testDelete(t *testing.T, s keys.KeyStore) {
	ctx := context.Background()
	k := create(t, s, "ep")
	other := create(t, s, "ep")
	gone := attach(t, s, k.ID, "openai", "kek-del")
	attach(t, s, k.ID, "anthropic", "kek-del")
	kept := attach(t, s, other.ID, "openai", "kek-del")

	require.NoError(t, s.Delete(ctx, k.ID))
	_, err := s.Get(ctx, k.ID)
	require.ErrorIs(t, err, keys.ErrNotFound)
	_, _, err = s.Lookup(ctx, k.Hash)
	require.ErrorIs(t, err, keys.ErrNotFound)
	_, err = s.Attached(ctx, k.ID)
	require.ErrorIs(t, err, keys.ErrNotFound)
	require.ErrorIs(t, s.Delete(ctx, k.ID), keys.ErrNotFound)

	// The deleted key's attached keys are gone: a rotation sees only the other's.
	var seen []string
	n, err := s.Rewrap(ctx, "kek-del", func(a keys.AttachedKey) ([]byte, string, error) {
		seen = append(seen, a.ID)
		return a.Sealed, "kek-del-2", nil
	})
	require.NoError(t, err)
	require.Equal(t, 1, n)
	require.Equal(t, []string{kept.ID}, seen)

	// The other key is untouched.
	got, attached, err := s.Lookup(ctx, other.Hash)
	require.NoError(t, err)
	requireKey(t, other, got)
	require.Len(t, attached, 1)

	// The ID and hash can be used again.
	again := newKey(t, "ep")
	again.ID, again.Hash = k.ID, k.Hash
	_, err = s.Create(ctx, again)
	require.NoError(t, err)
	attached, err = s.Attached(ctx, k.ID)
	require.NoError(t, err)
	require.Empty(t, attached)
	// So can the attached keys' IDs.
	reuse := attachedFor(other.ID, "openai", "kek-del")
	reuse.ID = gone.ID
	_, err = s.Attach(ctx, reuse)
	require.NoError(t, err)
}

// listAll pages through o, checking each page, and returns the keys.
func listAll(t testing.TB, s keys.KeyStore, o keys.ListOptions, wantPages []int) []keys.Key {
	t.Helper()
	var all []keys.Key
	var sizes []int
	for {
		p, err := s.List(context.Background(), o)
		require.NoError(t, err)
		sizes = append(sizes, len(p.Keys))
		all = append(all, p.Keys...)
		if p.NextCursor == "" {
			break
		}
		require.NotEmpty(t, p.Keys, "a page with a NextCursor has keys")
		require.Less(t, len(sizes), 1000, "the list does not end")
		o.Cursor = p.NextCursor
	}
	if wantPages != nil {
		require.Equal(t, wantPages, sizes, "page sizes")
	}
	return all
}

// requireNewestFirst checks the order of a list: by CreatedAt, then ID,
// both descending, without duplicates.
func requireNewestFirst(t testing.TB, l []keys.Key) {
	t.Helper()
	for i := 1; i < len(l); i++ {
		a, b := l[i-1], l[i]
		require.True(t, a.CreatedAt.After(b.CreatedAt) || a.CreatedAt.Equal(b.CreatedAt) && a.ID > b.ID,
			"key %d (%s, %v) listed before key %d (%s, %v)", i-1, a.ID, a.CreatedAt, i, b.ID, b.CreatedAt)
	}
}

// ids returns the sorted IDs of l.
func ids(l []keys.Key) []string {
	out := make([]string, len(l))
	for i, k := range l {
		out[i] = k.ID
	}
	slices.Sort(out)
	return out
}

func testList(t *testing.T, s keys.KeyStore) {
	ctx := context.Background()
	var a, b []keys.Key
	for i := range 250 {
		k := newKey(t, "ep-a")
		k.Description = fmt.Sprintf("key %d", i)
		if i == 7 {
			k = fullKey(t)
			k.Endpoint = "ep-a"
		}
		k, err := s.Create(ctx, k)
		require.NoError(t, err)
		a = append(a, k)
		if i%25 == 0 {
			b = append(b, create(t, s, "ep-b"))
		}
	}
	require.Len(t, b, 10)
	byID := make(map[string]keys.Key)
	for _, k := range append(slices.Clone(a), b...) {
		byID[k.ID] = k
	}

	t.Run("endpoint, 3 pages", func(t *testing.T) {
		l := listAll(t, s, keys.ListOptions{Endpoint: "ep-a", Limit: 100}, []int{100, 100, 50})
		requireNewestFirst(t, l)
		require.Equal(t, ids(a), ids(l))
		for _, k := range l {
			requireKey(t, byID[k.ID], k)
		}
	})
	t.Run("every endpoint, default limit", func(t *testing.T) {
		l := listAll(t, s, keys.ListOptions{}, []int{100, 100, 60})
		requireNewestFirst(t, l)
		require.Equal(t, ids(append(slices.Clone(a), b...)), ids(l))
	})
	t.Run("other endpoint", func(t *testing.T) {
		l := listAll(t, s, keys.ListOptions{Endpoint: "ep-b"}, []int{10})
		requireNewestFirst(t, l)
		require.Equal(t, ids(b), ids(l))
	})
	t.Run("exact pages end without an empty page", func(t *testing.T) {
		l := listAll(t, s, keys.ListOptions{Endpoint: "ep-b", Limit: 5}, []int{5, 5})
		require.Equal(t, ids(b), ids(l))
		l = listAll(t, s, keys.ListOptions{Endpoint: "ep-b", Limit: 10}, []int{10})
		require.Equal(t, ids(b), ids(l))
	})
	t.Run("limit 1", func(t *testing.T) {
		l := listAll(t, s, keys.ListOptions{Endpoint: "ep-b", Limit: 1}, slices.Repeat([]int{1}, 10))
		requireNewestFirst(t, l)
	})
	t.Run("unknown endpoint", func(t *testing.T) {
		listAll(t, s, keys.ListOptions{Endpoint: "ep-none"}, []int{0})
	})
	t.Run("newer keys do not shift a listing", func(t *testing.T) {
		p, err := s.List(ctx, keys.ListOptions{Endpoint: "ep-b", Limit: 4})
		require.NoError(t, err)
		added := create(t, s, "ep-b")
		l := listAll(t, s, keys.ListOptions{Endpoint: "ep-b", Limit: 4, Cursor: p.NextCursor}, nil)
		// The new key sorts before the cursor unless its time ties.
		cur := p.Keys[3]
		var want []keys.Key
		for _, k := range append(slices.Clone(b), added) {
			if k.CreatedAt.Before(cur.CreatedAt) || k.CreatedAt.Equal(cur.CreatedAt) && k.ID < cur.ID {
				want = append(want, k)
			}
		}
		require.Equal(t, ids(want), ids(l))
	})
	t.Run("deleted keys are not listed", func(t *testing.T) {
		p, err := s.List(ctx, keys.ListOptions{Endpoint: "ep-a", Limit: 100})
		require.NoError(t, err)
		next, err := s.List(ctx, keys.ListOptions{Endpoint: "ep-a", Limit: 100, Cursor: p.NextCursor})
		require.NoError(t, err)
		// Delete the cursor's own key: the next page still follows it.
		require.NoError(t, s.Delete(ctx, p.Keys[99].ID))
		require.NoError(t, s.Delete(ctx, next.Keys[10].ID))
		l := listAll(t, s, keys.ListOptions{Endpoint: "ep-a", Limit: 100, Cursor: p.NextCursor}, []int{100, 49})
		requireNewestFirst(t, l)
		require.NotContains(t, ids(l), next.Keys[10].ID)
		require.NotContains(t, ids(l), p.Keys[99].ID)
		require.Len(t, ids(append(p.Keys[:99], l...)), 248)
	})
}

func testListLimits(t *testing.T, s keys.KeyStore) {
	ctx := context.Background()
	for range 3 {
		create(t, s, "ep")
	}
	for _, tc := range []struct {
		name  string
		o     keys.ListOptions
		field string
	}{
		{"limit above maximum", keys.ListOptions{Limit: keys.MaxListLimit + 1}, "limit"},
		{"negative limit", keys.ListOptions{Limit: -1}, "limit"},
		{"garbage cursor", keys.ListOptions{Cursor: "not a cursor!"}, "cursor"},
		{"base64 cursor", keys.ListOptions{Cursor: "eA"}, "cursor"},
		{"long cursor", keys.ListOptions{Cursor: strings.Repeat("A", 500)}, "cursor"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.List(ctx, tc.o)
			requireInvalid(t, err, tc.field)
		})
	}
	t.Run("maximum limit", func(t *testing.T) {
		p, err := s.List(ctx, keys.ListOptions{Limit: keys.MaxListLimit})
		require.NoError(t, err)
		require.Len(t, p.Keys, 3)
		require.Empty(t, p.NextCursor)
	})
}

func testTouch(t *testing.T, s keys.KeyStore) {
	ctx := context.Background()
	k := create(t, s, "ep")
	other := create(t, s, "ep")
	base := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(d time.Duration) time.Time { return base.Add(d) }
	lastUsed := func(id string) time.Time {
		t.Helper()
		got, err := s.Get(ctx, id)
		require.NoError(t, err)
		requireTime(t, got.LastUsed, "last_used")
		require.True(t, got.UpdatedAt.Equal(k.UpdatedAt) || id != k.ID, "touch leaves updated_at")
		return got.LastUsed
	}
	for _, tc := range []struct {
		name string
		uses []keys.Use
		want time.Time
	}{
		{"none", nil, time.Time{}},
		{"empty", []keys.Use{}, time.Time{}},
		{"first", []keys.Use{{ID: k.ID, At: at(time.Hour).In(time.FixedZone("Z", 3600)).Add(999)}}, at(time.Hour)},
		{"earlier is ignored", []keys.Use{{ID: k.ID, At: at(time.Minute)}}, at(time.Hour)},
		{"later wins", []keys.Use{{ID: k.ID, At: at(2 * time.Hour)}}, at(2 * time.Hour)},
		{"latest in a batch, in order", []keys.Use{{ID: k.ID, At: at(3 * time.Hour)}, {ID: k.ID, At: at(4 * time.Hour)}}, at(4 * time.Hour)},
		{"latest in a batch, out of order", []keys.Use{{ID: k.ID, At: at(6 * time.Hour)}, {ID: k.ID, At: at(5 * time.Hour)}}, at(6 * time.Hour)},
		{"unknown IDs are ignored", []keys.Use{{ID: newKey(t, "ep").ID, At: at(9 * time.Hour)}, {ID: "nope", At: at(9 * time.Hour)}, {ID: k.ID, At: at(7 * time.Hour)}}, at(7 * time.Hour)},
		{"microseconds", []keys.Use{{ID: k.ID, At: at(7*time.Hour + 1500*time.Nanosecond)}}, at(7*time.Hour + time.Microsecond)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.NoError(t, s.Touch(ctx, tc.uses))
			got := lastUsed(k.ID)
			require.True(t, tc.want.Equal(got), "want %v, got %v", tc.want, got)
			require.True(t, lastUsed(other.ID).IsZero(), "other key untouched")
		})
	}
	t.Run("lookup sees it", func(t *testing.T) {
		got, _, err := s.Lookup(ctx, k.Hash)
		require.NoError(t, err)
		require.True(t, at(7*time.Hour+time.Microsecond).Equal(got.LastUsed))
	})
	t.Run("batch of many", func(t *testing.T) {
		var ks []keys.Key
		for range 50 {
			ks = append(ks, create(t, s, "ep-batch"))
		}
		var uses []keys.Use
		for i := range 1000 {
			uses = append(uses, keys.Use{ID: ks[i%50].ID, At: at(time.Duration(i) * time.Second)})
		}
		slices.Reverse(uses[:500])
		require.NoError(t, s.Touch(ctx, uses))
		for i, k := range ks {
			got := lastUsed(k.ID)
			want := at(time.Duration(950+i) * time.Second)
			require.True(t, want.Equal(got), "key %d: want %v, got %v", i, want, got)
		}
	})
}

// requireAttachedOrder checks that l is newest first: by CreatedAt, then
// ID, both descending.
func requireAttachedOrder(t testing.TB, l []keys.AttachedKey) {
	t.Helper()
	for i := 1; i < len(l); i++ {
		a, b := l[i-1], l[i]
		require.True(t, a.CreatedAt.After(b.CreatedAt) || a.CreatedAt.Equal(b.CreatedAt) && a.ID > b.ID,
			"attached %d (%s, %v) listed before %d (%s, %v)", i-1, a.ID, a.CreatedAt, i, b.ID, b.CreatedAt)
	}
}

// requireAttached checks that got is want as stored.
func requireAttached(t testing.TB, want, got keys.AttachedKey) {
	t.Helper()
	require.Equal(t, want.ID, got.ID)
	require.Equal(t, want.KeyID, got.KeyID)
	require.Equal(t, want.Provider, got.Provider)
	require.Equal(t, want.Redacted, got.Redacted)
	require.Equal(t, want.Sealed, got.Sealed)
	require.Equal(t, want.KEKID, got.KEKID)
	require.False(t, got.CreatedAt.IsZero())
	requireTime(t, got.CreatedAt, "created_at")
	if !want.CreatedAt.IsZero() {
		require.True(t, want.CreatedAt.Equal(got.CreatedAt))
	}
}

func testAttach(t *testing.T, s keys.KeyStore) {
	ctx := context.Background()
	k := create(t, s, "ep")
	other := create(t, s, "ep")
	var want []keys.AttachedKey
	for i, p := range []string{"openai", "anthropic", "openai", "mistral", "openai"} {
		in := attachedFor(k.ID, p, "kek-1")
		got, err := s.Attach(ctx, in)
		require.NoError(t, err)
		requireAttached(t, in, got)
		if i > 0 {
			require.False(t, got.CreatedAt.Before(want[len(want)-1].CreatedAt), "later attached no earlier")
		}
		in.Sealed[0] = 99 // the store has its own copy
		want = append(want, got)
	}
	otherA := attach(t, s, other.ID, "openai", "kek-1")

	byID := func(l []keys.AttachedKey) map[string]keys.AttachedKey {
		m := make(map[string]keys.AttachedKey)
		for _, a := range l {
			m[a.ID] = a
		}
		return m
	}
	check := func(t *testing.T, want []keys.AttachedKey) {
		t.Helper()
		got, err := s.Attached(ctx, k.ID)
		require.NoError(t, err)
		require.Len(t, got, len(want))
		requireAttachedOrder(t, got)
		w := byID(want)
		for _, a := range got {
			requireAttached(t, w[a.ID], a)
		}
		_, viaLookup, err := s.Lookup(ctx, k.Hash)
		require.NoError(t, err)
		require.Equal(t, got, viaLookup, "Lookup returns the attached keys in the same order")
		if len(got) > 0 {
			got[0].Sealed[0] = 42 // returned slices are copies
			again, err := s.Attached(ctx, k.ID)
			require.NoError(t, err)
			require.NotEqual(t, byte(42), again[0].Sealed[0])
		}
	}
	t.Run("listed", func(t *testing.T) { check(t, want) })
	t.Run("other key", func(t *testing.T) {
		got, err := s.Attached(ctx, other.ID)
		require.NoError(t, err)
		require.Len(t, got, 1)
		requireAttached(t, otherA, got[0])
	})
	t.Run("none", func(t *testing.T) {
		got, err := s.Attached(ctx, create(t, s, "ep").ID)
		require.NoError(t, err)
		require.Empty(t, got)
	})
	t.Run("duplicate ID", func(t *testing.T) {
		dup := attachedFor(other.ID, "openai", "kek-1")
		dup.ID = want[1].ID
		_, err := s.Attach(ctx, dup)
		require.ErrorIs(t, err, keys.ErrConflict)
	})
	t.Run("detach from the wrong key", func(t *testing.T) {
		require.ErrorIs(t, s.Detach(ctx, other.ID, want[0].ID), keys.ErrNotFound)
		check(t, want)
	})
	t.Run("detach", func(t *testing.T) {
		require.NoError(t, s.Detach(ctx, k.ID, want[2].ID))
		want = slices.Delete(want, 2, 3)
		check(t, want)
		require.ErrorIs(t, s.Detach(ctx, k.ID, want[2].ID+"x"), keys.ErrNotFound)
	})
	t.Run("detach twice", func(t *testing.T) {
		require.NoError(t, s.Detach(ctx, k.ID, want[0].ID))
		require.ErrorIs(t, s.Detach(ctx, k.ID, want[0].ID), keys.ErrNotFound)
		want = want[1:]
		check(t, want)
	})
	t.Run("detach all", func(t *testing.T) {
		for _, a := range want {
			require.NoError(t, s.Detach(ctx, k.ID, a.ID))
		}
		check(t, nil)
		got, err := s.Attached(ctx, other.ID)
		require.NoError(t, err)
		require.Len(t, got, 1)
	})
}

func testAttachInvalid(t *testing.T, s keys.KeyStore) {
	ctx := context.Background()
	k := create(t, s, "ep")
	for _, tc := range []struct {
		name   string
		change func(a *keys.AttachedKey)
		field  string
	}{
		{"no ID", func(a *keys.AttachedKey) { a.ID = "" }, "id"},
		{"gateway key ID", func(a *keys.AttachedKey) { a.ID = k.ID }, "id"},
		{"no provider", func(a *keys.AttachedKey) { a.Provider = "" }, "provider"},
		{"spaced provider", func(a *keys.AttachedKey) { a.Provider = "openai " }, "provider"},
		{"no redacted", func(a *keys.AttachedKey) { a.Redacted = "" }, "redacted"},
		{"nothing sealed", func(a *keys.AttachedKey) { a.Sealed = nil }, "sealed"},
		{"no KEK", func(a *keys.AttachedKey) { a.KEKID = "" }, "kek_id"},
		{"long KEK", func(a *keys.AttachedKey) { a.KEKID = strings.Repeat("k", keys.MaxKEKID+1) }, "kek_id"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := attachedFor(k.ID, "openai", "kek-1")
			tc.change(&a)
			_, err := s.Attach(ctx, a)
			requireInvalid(t, err, tc.field)
		})
	}
	got, err := s.Attached(ctx, k.ID)
	require.NoError(t, err)
	require.Empty(t, got)
}

func testAttachLimit(t *testing.T, s keys.KeyStore) {
	ctx := context.Background()
	k := create(t, s, "ep")
	var first keys.AttachedKey
	for i := range keys.MaxAttachedPerProvider {
		a := attach(t, s, k.ID, "openai", "kek-1")
		if i == 0 {
			first = a
		}
	}
	_, err := s.Attach(ctx, attachedFor(k.ID, "openai", "kek-1"))
	requireInvalid(t, err, "provider")

	// Another provider, and another key, have their own limits.
	attach(t, s, k.ID, "anthropic", "kek-1")
	other := create(t, s, "ep")
	attach(t, s, other.ID, "openai", "kek-1")

	got, err := s.Attached(ctx, k.ID)
	require.NoError(t, err)
	require.Len(t, got, keys.MaxAttachedPerProvider+1)

	// Detaching makes room again.
	require.NoError(t, s.Detach(ctx, k.ID, first.ID))
	attach(t, s, k.ID, "openai", "kek-1")
	_, err = s.Attach(ctx, attachedFor(k.ID, "openai", "kek-1"))
	requireInvalid(t, err, "provider")
}

func testAttachLimitConcurrent(t *testing.T, s keys.KeyStore) {
	// The limit holds when attaches race: no check-then-insert window.
	ctx := context.Background()
	k := create(t, s, "ep")
	const n = 2 * keys.MaxAttachedPerProvider
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			_, errs[i] = s.Attach(ctx, attachedFor(k.ID, "openai", "kek-1"))
		})
	}
	wg.Wait()
	ok := 0
	for _, err := range errs {
		if err == nil {
			ok++
		} else {
			requireInvalid(t, err, "provider")
		}
	}
	require.Equal(t, keys.MaxAttachedPerProvider, ok)
	got, err := s.Attached(ctx, k.ID)
	require.NoError(t, err)
	require.Len(t, got, keys.MaxAttachedPerProvider)
}

func testRewrap(t *testing.T, s keys.KeyStore) {
	ctx := context.Background()
	k1 := create(t, s, "ep")
	k2 := create(t, s, "ep")
	old := map[string]keys.AttachedKey{}
	keep := map[string]keys.AttachedKey{}
	for _, spec := range []struct {
		key, provider, kek string
	}{
		{k1.ID, "openai", "kek-old"}, {k1.ID, "anthropic", "kek-keep"}, {k1.ID, "openai", "kek-old"},
		{k2.ID, "openai", "kek-old"}, {k2.ID, "mistral", "kek-keep"},
	} {
		a := attach(t, s, spec.key, spec.provider, spec.kek)
		if spec.kek == "kek-old" {
			old[a.ID] = a
		} else {
			keep[a.ID] = a
		}
	}
	reseal := func(a keys.AttachedKey) []byte { return append([]byte("new:"), a.Sealed...) }

	t.Run("fn fails", func(t *testing.T) {
		boom := errors.New("boom")
		_, err := s.Rewrap(ctx, "kek-old", func(a keys.AttachedKey) ([]byte, string, error) { return nil, "", boom })
		require.ErrorIs(t, err, boom)
	})
	t.Run("unknown KEK", func(t *testing.T) {
		n, err := s.Rewrap(ctx, "kek-none", func(a keys.AttachedKey) ([]byte, string, error) {
			t.Errorf("fn called for %s", a.ID)
			return nil, "", errors.New("unexpected")
		})
		require.NoError(t, err)
		require.Zero(t, n)
	})
	t.Run("rewraps the old KEK's entries only", func(t *testing.T) {
		seen := map[string]bool{}
		n, err := s.Rewrap(ctx, "kek-old", func(a keys.AttachedKey) ([]byte, string, error) {
			if a.KEKID != "kek-old" {
				return nil, "", fmt.Errorf("fn given %s under %s", a.ID, a.KEKID)
			}
			w, ok := old[a.ID]
			if !ok || seen[a.ID] {
				return nil, "", fmt.Errorf("fn given %s unexpectedly", a.ID)
			}
			seen[a.ID] = true
			if a.KeyID != w.KeyID || a.Provider != w.Provider || !bytes.Equal(a.Sealed, w.Sealed) {
				return nil, "", fmt.Errorf("fn given %+v, want %+v", a, w)
			}
			return reseal(a), "kek-new", nil
		})
		require.NoError(t, err)
		require.Equal(t, 3, n)
		require.Len(t, seen, 3)
		for _, k := range []keys.Key{k1, k2} {
			l, err := s.Attached(ctx, k.ID)
			require.NoError(t, err)
			for _, a := range l {
				if w, ok := old[a.ID]; ok {
					w.Sealed, w.KEKID = reseal(w), "kek-new"
					requireAttached(t, w, a)
				} else {
					requireAttached(t, keep[a.ID], a)
				}
			}
		}
	})
	t.Run("nothing left", func(t *testing.T) {
		n, err := s.Rewrap(ctx, "kek-old", func(a keys.AttachedKey) ([]byte, string, error) {
			return nil, "", fmt.Errorf("fn called for %s", a.ID)
		})
		require.NoError(t, err)
		require.Zero(t, n)
	})
	t.Run("count", func(t *testing.T) {
		n, err := s.Rewrap(ctx, "kek-keep", func(a keys.AttachedKey) ([]byte, string, error) {
			return a.Sealed, "kek-kept", nil
		})
		require.NoError(t, err)
		require.Equal(t, 2, n)
	})
}

func testConcurrent(t *testing.T, s keys.KeyStore) {
	ctx := context.Background()
	const workers, each = 32, 8
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	created := make([][]keys.Key, workers)
	shared := create(t, s, "ep-shared")
	for w := range workers {
		wg.Go(func() {
			errs <- func() error {
				for i := range each {
					k, _, err := keys.NewKey("ep-conc")
					if err != nil {
						return err
					}
					if k, err = s.Create(ctx, k); err != nil {
						return fmt.Errorf("create: %w", err)
					}
					created[w] = append(created[w], k)
					if _, _, err := s.Lookup(ctx, k.Hash); err != nil {
						return fmt.Errorf("lookup: %w", err)
					}
					if _, _, err := s.Lookup(ctx, shared.Hash); err != nil {
						return fmt.Errorf("lookup shared: %w", err)
					}
					at := time.Date(2030, 1, 1, 0, 0, w*each+i, 0, time.UTC)
					if err := s.Touch(ctx, []keys.Use{{ID: k.ID, At: at}, {ID: shared.ID, At: at}}); err != nil {
						return fmt.Errorf("touch: %w", err)
					}
					if _, err := s.Update(ctx, k.ID, keys.Update{Description: ptr(fmt.Sprint(w, i))}); err != nil {
						return fmt.Errorf("update: %w", err)
					}
					if i%4 == 0 {
						if _, err := s.Attach(ctx, attachedFor(shared.ID, fmt.Sprint("p", w), "kek-c")); err != nil {
							return fmt.Errorf("attach: %w", err)
						}
						if _, err := s.List(ctx, keys.ListOptions{Endpoint: "ep-conc", Limit: 10}); err != nil {
							return fmt.Errorf("list: %w", err)
						}
					}
				}
				return nil
			}()
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	for w, ks := range created {
		require.Len(t, ks, each)
		for i, k := range ks {
			got, _, err := s.Lookup(ctx, k.Hash)
			require.NoError(t, err)
			require.Equal(t, fmt.Sprint(w, i), got.Description)
			require.True(t, time.Date(2030, 1, 1, 0, 0, w*each+i, 0, time.UTC).Equal(got.LastUsed))
		}
	}
	got, attached, err := s.Lookup(ctx, shared.Hash)
	require.NoError(t, err)
	require.True(t, time.Date(2030, 1, 1, 0, 0, workers*each-1, 0, time.UTC).Equal(got.LastUsed), "latest touch wins: %v", got.LastUsed)
	require.Len(t, attached, workers*each/4)
	listAll(t, s, keys.ListOptions{Endpoint: "ep-conc"}, []int{100, 100, 56})
}

func testCanceled(t *testing.T, s keys.KeyStore) {
	k := create(t, s, "ep")
	a := attach(t, s, k.ID, "openai", "kek-1")
	fresh := newKey(t, "ep")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	bg := context.Background()

	for _, tc := range []struct {
		name string
		call func() error
	}{
		{"lookup", func() error { _, _, err := s.Lookup(ctx, k.Hash); return err }},
		{"create", func() error { _, err := s.Create(ctx, fresh); return err }},
		{"get", func() error { _, err := s.Get(ctx, k.ID); return err }},
		{"list", func() error { _, err := s.List(ctx, keys.ListOptions{}); return err }},
		{"update", func() error { _, err := s.Update(ctx, k.ID, keys.Update{Description: ptr("canceled")}); return err }},
		{"delete", func() error { return s.Delete(ctx, k.ID) }},
		{"touch", func() error { return s.Touch(ctx, []keys.Use{{ID: k.ID, At: time.Now()}}) }},
		{"attach", func() error { _, err := s.Attach(ctx, attachedFor(k.ID, "openai", "kek-1")); return err }},
		{"detach", func() error { return s.Detach(ctx, k.ID, a.ID) }},
		{"attached", func() error { _, err := s.Attached(ctx, k.ID); return err }},
		{"rewrap", func() error {
			_, err := s.Rewrap(ctx, "kek-1", func(a keys.AttachedKey) ([]byte, string, error) { return []byte("x"), "kek-2", nil })
			return err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Error(t, tc.call())
		})
	}
	// Nothing changed.
	got, attached, err := s.Lookup(bg, k.Hash)
	require.NoError(t, err)
	requireKey(t, k, got)
	require.Len(t, attached, 1)
	requireAttached(t, a, attached[0])
	_, err = s.Get(bg, fresh.ID)
	require.ErrorIs(t, err, keys.ErrNotFound)
	// And the store still works.
	_, err = s.Create(bg, fresh)
	require.NoError(t, err)
}

func testWatch(t *testing.T, s keys.KeyStore) {
	w, ok := s.(keys.Watcher)
	if !ok {
		t.Skip("the store is not a keys.Watcher")
	}
	bg := context.Background()
	// One key per kind of change, made before the watch starts, so that
	// a notification of a key can only come from the change under test.
	updated := create(t, s, "ep")
	attachedTo := create(t, s, "ep")
	detachedFrom := create(t, s, "ep")
	toDetach := attach(t, s, detachedFrom.ID, "openai", "kek-1")
	deleted := create(t, s, "ep")
	untouched := create(t, s, "ep")

	ctx, cancel := context.WithCancel(bg)
	changed := make(chan [32]byte, 1000)
	done := make(chan error, 1)
	go func() {
		done <- w.Watch(ctx, func(h [32]byte) {
			select {
			case changed <- h:
			default: // never block the store
			}
		})
	}()
	stopped := false
	t.Cleanup(func() {
		cancel()
		if !stopped {
			select {
			case <-done:
			case <-time.After(20 * time.Second):
			}
		}
	})

	// waitFor calls change, then reads notifications until hash comes,
	// within a generous deadline (a remote watch starts asynchronously).
	// When repeat is set, change is repeated until the watch is live.
	waitFor := func(t *testing.T, hash [32]byte, repeat bool, change func() error) {
		t.Helper()
		deadline := time.After(20 * time.Second)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		require.NoError(t, change())
		for {
			select {
			case h := <-changed:
				require.NotEqual(t, untouched.Hash, h, "notified of a key nothing changed")
				if h == hash {
					return
				}
			case <-tick.C:
				if repeat {
					require.NoError(t, change())
				}
			case <-deadline:
				t.Fatalf("no notification for %x", hash[:4])
			case err := <-done:
				stopped = true
				t.Fatalf("Watch returned early: %v", err)
			}
		}
	}

	t.Run("update", func(t *testing.T) {
		// Repeated until the watch is live: the first change it reports.
		waitFor(t, updated.Hash, true, func() error {
			_, err := s.Update(bg, updated.ID, keys.Update{Description: ptr("watched")})
			return err
		})
	})
	t.Run("attach", func(t *testing.T) {
		waitFor(t, attachedTo.Hash, false, func() error {
			_, err := s.Attach(bg, attachedFor(attachedTo.ID, "openai", "kek-1"))
			return err
		})
	})
	t.Run("detach", func(t *testing.T) {
		waitFor(t, detachedFrom.Hash, false, func() error { return s.Detach(bg, detachedFrom.ID, toDetach.ID) })
	})
	t.Run("delete", func(t *testing.T) {
		waitFor(t, deleted.Hash, false, func() error { return s.Delete(bg, deleted.ID) })
	})
	t.Run("ends with its context", func(t *testing.T) {
		cancel()
		select {
		case <-done:
			stopped = true
		case <-time.After(20 * time.Second):
			t.Fatal("Watch did not return after its context ended")
		}
	})
}
