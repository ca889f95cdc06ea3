package sqlite

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/llmgate/gateway/keys"
)

func testAttached(n uint64, keyID, provider string) keys.AttachedKey {
	return keys.AttachedKey{
		ID: testID("pk_", n), KeyID: keyID, Provider: provider,
		Redacted: "sk-…" + fmt.Sprint(n), Sealed: []byte(fmt.Sprint("sealed-", n)), KEKID: "kek1",
	}
}

func TestCreateGetLookup(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	in := testKey(1, "prod")
	in.Account = "acct"
	in.Description = "team A"
	in.Metadata = `{"owner":"a"}`
	in.ExpiresAt = time.Date(2030, 1, 2, 3, 4, 5, 6789, time.FixedZone("x", 3600))
	in.AllowedProviders = []string{"openai"}
	in.AllowedModels = []string{"openai:gpt-4o", "claude-sonnet-4"}
	k, err := s.Create(ctx, in)
	require.NoError(t, err)
	require.False(t, k.CreatedAt.IsZero())
	require.Equal(t, k.CreatedAt, k.UpdatedAt)
	require.Equal(t, time.UTC, k.ExpiresAt.Location())
	require.True(t, k.ExpiresAt.Equal(in.ExpiresAt.Truncate(time.Microsecond)))

	got, err := s.Get(ctx, k.ID)
	require.NoError(t, err)
	require.Equal(t, k, got)
	got, att, err := s.Lookup(ctx, k.Hash)
	require.NoError(t, err)
	require.Equal(t, k, got)
	require.Empty(t, att)

	_, err = s.Get(ctx, testID("key_", 99))
	require.ErrorIs(t, err, keys.ErrNotFound)
	_, _, err = s.Lookup(ctx, [32]byte{9})
	require.ErrorIs(t, err, keys.ErrNotFound)
}

func TestCreateErrors(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	_, err := s.Create(ctx, testKey(1, "e"))
	require.NoError(t, err)

	sameHash := testKey(2, "e")
	sameHash.Hash = testKey(1, "e").Hash
	bad := testKey(3, "e")
	bad.Description = string(make([]byte, keys.MaxDescription+1))
	for _, tc := range []struct {
		name string
		k    keys.Key
		want error
	}{
		{"duplicate id", func() keys.Key { k := testKey(1, "e"); k.Hash = [32]byte{7}; return k }(), keys.ErrConflict},
		{"duplicate hash", sameHash, keys.ErrConflict},
		{"invalid", bad, keys.ErrInvalid},
		{"no endpoint", testKey(4, ""), keys.ErrInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.Create(ctx, tc.k)
			require.ErrorIs(t, err, tc.want)
			require.NotErrorIs(t, err, keys.ErrUnavailable)
		})
	}
}

func TestListPages(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	var want []string // newest first
	for i := range 25 {
		ep := "a"
		if i%5 == 0 {
			ep = "b"
		}
		k, err := s.Create(ctx, testKey(uint64(i+1), ep))
		require.NoError(t, err)
		want = append([]string{k.ID}, want...)
	}
	var got []string
	cursor := ""
	pages := 0
	for {
		p, err := s.List(ctx, keys.ListOptions{Limit: 7, Cursor: cursor})
		require.NoError(t, err)
		for _, k := range p.Keys {
			got = append(got, k.ID)
		}
		pages++
		if cursor = p.NextCursor; cursor == "" {
			break
		}
	}
	require.Equal(t, want, got)
	require.Equal(t, 4, pages)

	p, err := s.List(ctx, keys.ListOptions{Endpoint: "b"})
	require.NoError(t, err)
	require.Len(t, p.Keys, 5)
	require.Empty(t, p.NextCursor)

	for name, o := range map[string]keys.ListOptions{
		"bad cursor": {Cursor: "!!"},
		"negative":   {Limit: -1},
		"too big":    {Limit: keys.MaxListLimit + 1},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := s.List(ctx, o)
			require.ErrorIs(t, err, keys.ErrInvalid)
		})
	}
}

func TestListSameCreatedAt(t *testing.T) {
	fixed := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	s, err := Open(context.Background(), filepath.Join(t.TempDir(), "x.db"), Options{Now: func() time.Time { return fixed }})
	require.NoError(t, err)
	defer s.Close()
	ctx := context.Background()
	for i := range 5 {
		_, err := s.Create(ctx, testKey(uint64(i+1), "e"))
		require.NoError(t, err)
	}
	var got []string
	cursor := ""
	for {
		p, err := s.List(ctx, keys.ListOptions{Limit: 2, Cursor: cursor})
		require.NoError(t, err)
		for _, k := range p.Keys {
			got = append(got, k.ID)
		}
		if cursor = p.NextCursor; cursor == "" {
			break
		}
	}
	require.Equal(t, []string{testID("key_", 5), testID("key_", 4), testID("key_", 3), testID("key_", 2), testID("key_", 1)}, got)
}

func TestUpdateDelete(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	in := testKey(1, "e")
	in.ExpiresAt = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	in.AllowedModels = []string{"m"}
	k, err := s.Create(ctx, in)
	require.NoError(t, err)

	d := "new"
	zero := time.Time{}
	empty := []string{}
	prov := []string{"anthropic"}
	u, err := s.Update(ctx, k.ID, keys.Update{Description: &d, ExpiresAt: &zero, AllowedModels: &empty, AllowedProviders: &prov})
	require.NoError(t, err)
	require.Equal(t, "new", u.Description)
	require.True(t, u.ExpiresAt.IsZero())
	require.Nil(t, u.AllowedModels)
	require.Equal(t, prov, u.AllowedProviders)
	require.True(t, u.UpdatedAt.After(k.UpdatedAt))
	require.Equal(t, k.CreatedAt, u.CreatedAt)
	got, err := s.Get(ctx, k.ID)
	require.NoError(t, err)
	require.Equal(t, u, got)

	long := string(make([]byte, keys.MaxMetadata+1))
	_, err = s.Update(ctx, k.ID, keys.Update{Metadata: &long})
	require.ErrorIs(t, err, keys.ErrInvalid)
	_, err = s.Update(ctx, testID("key_", 2), keys.Update{Description: &d})
	require.ErrorIs(t, err, keys.ErrNotFound)

	_, err = s.Attach(ctx, testAttached(1, k.ID, "openai"))
	require.NoError(t, err)
	require.NoError(t, s.Delete(ctx, k.ID))
	require.ErrorIs(t, s.Delete(ctx, k.ID), keys.ErrNotFound)
	_, _, err = s.Lookup(ctx, k.Hash)
	require.ErrorIs(t, err, keys.ErrNotFound)
	var n int
	require.NoError(t, s.r.QueryRow(`SELECT COUNT(*) FROM attached_keys`).Scan(&n))
	require.Zero(t, n, "attached keys cascade")
}

func TestTouch(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	k1, err := s.Create(ctx, testKey(1, "e"))
	require.NoError(t, err)
	k2, err := s.Create(ctx, testKey(2, "e"))
	require.NoError(t, err)
	t0 := time.Date(2025, 6, 1, 0, 0, 0, 999, time.UTC)
	uses := []keys.Use{{ID: k1.ID, At: t0}, {ID: k1.ID, At: t0.Add(time.Second)}, {ID: k1.ID, At: t0.Add(-time.Second)},
		{ID: k2.ID, At: t0}, {ID: testID("key_", 77), At: t0}}
	require.NoError(t, s.Touch(ctx, uses))
	require.NoError(t, s.Touch(ctx, []keys.Use{{ID: k1.ID, At: t0}})) // earlier: no change
	require.NoError(t, s.Touch(ctx, nil))
	g1, err := s.Get(ctx, k1.ID)
	require.NoError(t, err)
	require.Equal(t, t0.Add(time.Second).Truncate(time.Microsecond), g1.LastUsed)
	require.Equal(t, k1.UpdatedAt, g1.UpdatedAt)
	g2, err := s.Get(ctx, k2.ID)
	require.NoError(t, err)
	require.Equal(t, t0.Truncate(time.Microsecond), g2.LastUsed)

	many := make([]keys.Use, 5000)
	for i := range many {
		many[i] = keys.Use{ID: k2.ID, At: t0.Add(time.Duration(i) * time.Millisecond)}
	}
	require.NoError(t, s.Touch(ctx, many))
	g2, err = s.Get(ctx, k2.ID)
	require.NoError(t, err)
	require.Equal(t, many[len(many)-1].At.Truncate(time.Microsecond), g2.LastUsed)
}

func TestAttach(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	k, err := s.Create(ctx, testKey(1, "e"))
	require.NoError(t, err)

	var ids []string
	for i := range keys.MaxAttachedPerProvider {
		a, err := s.Attach(ctx, testAttached(uint64(i+1), k.ID, "openai"))
		require.NoError(t, err)
		require.False(t, a.CreatedAt.IsZero())
		ids = append([]string{a.ID}, ids...)
	}
	_, err = s.Attach(ctx, testAttached(100, k.ID, "openai"))
	require.ErrorIs(t, err, keys.ErrInvalid)
	_, err = s.Attach(ctx, testAttached(100, k.ID, "anthropic"))
	require.NoError(t, err)
	ids = append([]string{testID("pk_", 100)}, ids...)
	_, err = s.Attach(ctx, testAttached(100, k.ID, "anthropic"))
	require.ErrorIs(t, err, keys.ErrConflict)
	_, err = s.Attach(ctx, testAttached(101, testID("key_", 9), "openai"))
	require.ErrorIs(t, err, keys.ErrNotFound)
	bad := testAttached(102, k.ID, "openai")
	bad.Sealed = nil
	_, err = s.Attach(ctx, bad)
	require.ErrorIs(t, err, keys.ErrInvalid)

	list, err := s.Attached(ctx, k.ID)
	require.NoError(t, err)
	var got []string
	for _, a := range list {
		got = append(got, a.ID)
	}
	require.Equal(t, ids, got)
	_, att, err := s.Lookup(ctx, k.Hash)
	require.NoError(t, err)
	require.Equal(t, list, att)
	_, err = s.Attached(ctx, testID("key_", 9))
	require.ErrorIs(t, err, keys.ErrNotFound)

	require.NoError(t, s.Detach(ctx, k.ID, ids[0]))
	require.ErrorIs(t, s.Detach(ctx, k.ID, ids[0]), keys.ErrNotFound)
	require.ErrorIs(t, s.Detach(ctx, testID("key_", 9), ids[1]), keys.ErrNotFound)
	list, err = s.Attached(ctx, k.ID)
	require.NoError(t, err)
	require.Len(t, list, keys.MaxAttachedPerProvider)
}

func TestRewrap(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	k, err := s.Create(ctx, testKey(1, "e"))
	require.NoError(t, err)
	for i := range 3 {
		_, err := s.Attach(ctx, testAttached(uint64(i+1), k.ID, "openai"))
		require.NoError(t, err)
	}
	other := testAttached(9, k.ID, "anthropic")
	other.KEKID = "kek0"
	_, err = s.Attach(ctx, other)
	require.NoError(t, err)

	boom := errors.New("boom")
	calls := 0
	_, err = s.Rewrap(ctx, "kek1", func(a keys.AttachedKey) ([]byte, string, error) {
		if calls++; calls == 2 {
			return nil, "", boom
		}
		return append([]byte("re-"), a.Sealed...), "kek2", nil
	})
	require.ErrorIs(t, err, boom)
	list, err := s.Attached(ctx, k.ID)
	require.NoError(t, err)
	for _, a := range list {
		require.NotEqual(t, "kek2", a.KEKID, "a failed rewrap changes nothing")
	}

	n, err := s.Rewrap(ctx, "kek1", func(a keys.AttachedKey) ([]byte, string, error) {
		require.Equal(t, k.ID, a.KeyID)
		require.Equal(t, "openai", a.Provider)
		return append([]byte("re-"), a.Sealed...), "kek2", nil
	})
	require.NoError(t, err)
	require.Equal(t, 3, n)
	list, err = s.Attached(ctx, k.ID)
	require.NoError(t, err)
	for _, a := range list {
		if a.Provider == "openai" {
			require.Equal(t, "kek2", a.KEKID)
			require.Equal(t, "re-sealed-", string(a.Sealed[:10]))
		} else {
			require.Equal(t, "kek0", a.KEKID)
		}
	}
	n, err = s.Rewrap(ctx, "kek1", nil)
	require.NoError(t, err)
	require.Zero(t, n)
}

// TestConcurrent runs readers and writers at once (for -race and for
// lock errors: none may surface as ErrUnavailable).
func TestConcurrent(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	base := make([]keys.Key, 20)
	for i := range base {
		k, err := s.Create(ctx, testKey(uint64(i+1), "e"))
		require.NoError(t, err)
		base[i] = k
	}
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 50 {
				k := base[(g+i)%len(base)]
				var err error
				switch i % 5 {
				case 0:
					_, err = s.Create(ctx, testKey(uint64(1000+g*100+i), "e"))
				case 1:
					err = s.Touch(ctx, []keys.Use{{ID: k.ID, At: time.Now()}})
				case 2:
					d := fmt.Sprint(g, i)
					_, err = s.Update(ctx, k.ID, keys.Update{Description: &d})
				case 3:
					_, err = s.List(ctx, keys.ListOptions{Limit: 10})
				default:
					_, _, err = s.Lookup(ctx, k.Hash)
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
}

func BenchmarkLookup(b *testing.B) {
	s := openTest(b)
	ctx := context.Background()
	in := testKey(1, "e")
	in.AllowedModels = []string{"openai:gpt-4o"}
	k, err := s.Create(ctx, in)
	require.NoError(b, err)
	for i := range 200 {
		_, err := s.Create(ctx, testKey(uint64(i+2), "e"))
		require.NoError(b, err)
	}
	for _, n := range []int{0, 2} {
		for i := range n {
			_, err := s.Attach(ctx, testAttached(uint64(i+1), k.ID, "openai"))
			require.NoError(b, err)
		}
		b.Run(fmt.Sprintf("attached=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, _, err := s.Lookup(ctx, k.Hash); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("attached=%d/parallel", n), func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, _, err := s.Lookup(ctx, k.Hash); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}
