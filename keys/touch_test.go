package keys

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

var errTouchDown = fmt.Errorf("db down: %w", ErrUnavailable)

// failTouches makes the store's Touch calls numbered in fail return
// errTouchDown.
func failTouches(s *fakeStore, fail ...int) {
	s.touchHook = func(_ context.Context, n int, _ []Use) error {
		if slices.Contains(fail, n) {
			return errTouchDown
		}
		return nil
	}
}

func TestToucherFlush(t *testing.T) {
	base := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		name string
		run  func(t *testing.T, tc *Toucher, s *fakeStore)
	}{{
		name: "nothing pending",
		run: func(t *testing.T, tc *Toucher, s *fakeStore) {
			require.NoError(t, tc.Flush(t.Context()))
			require.Empty(t, s.touched())
		},
	}, {
		name: "uses of one key coalesce to the latest",
		run: func(t *testing.T, tc *Toucher, s *fakeStore) {
			for _, i := range rand.Perm(100) {
				tc.Used("key_a", base.Add(time.Duration(i)*time.Second))
			}
			require.NoError(t, tc.Flush(t.Context()))
			require.Equal(t, [][]Use{{{ID: "key_a", At: base.Add(99 * time.Second)}}}, s.touched())
			require.NoError(t, tc.Flush(t.Context()))
			require.Len(t, s.touched(), 1, "nothing left to write")
		},
	}, {
		name: "batches of at most MaxTouchBatch sorted by ID",
		run: func(t *testing.T, tc *Toucher, s *fakeStore) {
			for i := range 2500 {
				tc.Used(fmt.Sprintf("key_%05d", i), base)
			}
			require.NoError(t, tc.Flush(t.Context()))
			batches := s.touched()
			require.Len(t, batches, 3)
			require.Len(t, batches[0], 1000)
			require.Len(t, batches[1], 1000)
			require.Len(t, batches[2], 500)
			all := slices.Concat(batches...)
			require.True(t, slices.IsSortedFunc(all, func(a, b Use) int { return cmpString(a.ID, b.ID) }))
			require.Equal(t, "key_00000", all[0].ID)
			require.Equal(t, "key_02499", all[2499].ID)
		},
	}, {
		name: "a zero time means now",
		run: func(t *testing.T, tc *Toucher, s *fakeStore) {
			tc.Used("key_a", time.Time{})
			require.NoError(t, tc.Flush(t.Context()))
			require.Equal(t, [][]Use{{{ID: "key_a", At: base}}}, s.touched())
		},
	}, {
		name: "a failed batch is retried once",
		run: func(t *testing.T, tc *Toucher, s *fakeStore) {
			failTouches(s, 1)
			tc.Used("key_a", base)
			err := tc.Flush(t.Context())
			require.ErrorIs(t, err, ErrUnavailable)
			require.Empty(t, s.touched())
			require.NoError(t, tc.Flush(t.Context()))
			require.Equal(t, [][]Use{{{ID: "key_a", At: base}}}, s.touched())
			require.Equal(t, TouchStats{Errors: 1}, tc.Stats())
		},
	}, {
		name: "a batch failing twice is lost",
		run: func(t *testing.T, tc *Toucher, s *fakeStore) {
			failTouches(s, 1, 2)
			tc.Used("key_a", base)
			tc.Used("key_b", base)
			require.ErrorIs(t, tc.Flush(t.Context()), ErrUnavailable)
			require.ErrorIs(t, tc.Flush(t.Context()), ErrUnavailable)
			require.NoError(t, tc.Flush(t.Context()))
			require.Empty(t, s.touched())
			require.Equal(t, TouchStats{Lost: 2, Errors: 2}, tc.Stats())
		},
	}, {
		name: "a fresh use supersedes a retry",
		run: func(t *testing.T, tc *Toucher, s *fakeStore) {
			failTouches(s, 1, 2)
			tc.Used("key_a", base)
			tc.Used("key_b", base)
			require.Error(t, tc.Flush(t.Context()))
			tc.Used("key_a", base.Add(time.Second))
			// Both fail again: key_b was on its retry and is lost; key_a's
			// use is fresh and has a retry of its own.
			require.Error(t, tc.Flush(t.Context()))
			require.Equal(t, TouchStats{Lost: 1, Errors: 2}, tc.Stats())
			require.NoError(t, tc.Flush(t.Context()))
			require.Equal(t, [][]Use{{{ID: "key_a", At: base.Add(time.Second)}}}, s.touched())
		},
	}, {
		name: "only the failed batch is retried",
		run: func(t *testing.T, tc *Toucher, s *fakeStore) {
			failTouches(s, 2)
			for i := range 1500 {
				tc.Used(fmt.Sprintf("key_%05d", i), base)
			}
			err := tc.Flush(t.Context())
			require.ErrorIs(t, err, ErrUnavailable)
			require.ErrorContains(t, err, "touching 500 keys (0 lost)")
			require.NoError(t, tc.Flush(t.Context()))
			batches := s.touched()
			require.Len(t, batches, 2)
			require.Len(t, batches[0], 1000)
			require.Len(t, batches[1], 500)
			require.Equal(t, "key_01000", batches[1][0].ID)
		},
	}, {
		name: "ctx ended",
		run: func(t *testing.T, tc *Toucher, s *fakeStore) {
			tc.Used("key_a", base)
			ctx, cancel := context.WithCancel(t.Context())
			cancel()
			require.ErrorIs(t, tc.Flush(ctx), context.Canceled)
			require.NoError(t, tc.Flush(t.Context()))
			require.Equal(t, [][]Use{{{ID: "key_a", At: base}}}, s.touched())
		},
	}, {
		name: "beyond MaxPending uses are dropped",
		run: func(t *testing.T, tc *Toucher, s *fakeStore) {
			for i := range 15 {
				tc.Used(fmt.Sprintf("key_%02d", i), base)
			}
			tc.Used("key_00", base.Add(time.Second)) // pending: still recorded
			require.Equal(t, TouchStats{Dropped: 5}, tc.Stats())
			require.NoError(t, tc.Flush(t.Context()))
			batches := s.touched()
			require.Len(t, batches, 1)
			require.Len(t, batches[0], 10)
			require.Equal(t, Use{ID: "key_00", At: base.Add(time.Second)}, batches[0][0])
			// A flush makes room again.
			tc.Used("key_14", base)
			require.NoError(t, tc.Flush(t.Context()))
			require.Equal(t, []Use{{ID: "key_14", At: base}}, s.touched()[1])
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newFakeStore()
			tc := NewToucher(s, TouchOptions{MaxPending: 10_000, Now: func() time.Time { return base }})
			if tt.name == "beyond MaxPending uses are dropped" {
				tc = NewToucher(s, TouchOptions{MaxPending: 10})
			}
			tt.run(t, tc, s)
		})
	}
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func TestToucherBackground(t *testing.T) {
	defer goleak.VerifyNone(t)
	s := newFakeStore()
	written := make(chan []Use, 10)
	var once sync.Once
	s.touchHook = func(_ context.Context, n int, uses []Use) error {
		if n == 1 {
			return errTouchDown
		}
		once.Do(func() { written <- slices.Clone(uses) })
		return nil
	}
	reported := make(chan error, 10)
	tc := NewToucher(s, TouchOptions{Interval: time.Millisecond, OnError: func(err error) { reported <- err }})
	tc.Start()
	tc.Start() // no second goroutine
	at := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	tc.Used("key_a", at)
	require.ErrorIs(t, <-reported, ErrUnavailable)
	require.Equal(t, []Use{{ID: "key_a", At: at}}, <-written, "retried at the next flush")
	require.NoError(t, tc.Close(t.Context()))
}

func TestToucherClose(t *testing.T) {
	at := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		name  string
		start bool
	}{{"started", true}, {"never started", false}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer goleak.VerifyNone(t)
			s := newFakeStore()
			tc := NewToucher(s, TouchOptions{Interval: time.Hour})
			if tt.start {
				tc.Start()
			}
			tc.Used("key_a", at)
			require.NoError(t, tc.Close(t.Context()))
			require.Equal(t, [][]Use{{{ID: "key_a", At: at}}}, s.touched(), "Close flushes")

			tc.Used("key_b", at)
			require.Equal(t, TouchStats{Dropped: 1}, tc.Stats())
			require.ErrorIs(t, tc.Flush(t.Context()), ErrClosed)
			require.NoError(t, tc.Close(t.Context()))
			tc.Start() // after Close: nothing starts
			require.Len(t, s.touched(), 1)
		})
	}
}

func TestToucherCloseCancelsStuckFlush(t *testing.T) {
	// A background flush stuck in the store is cancelled when Close's ctx
	// ends, and no goroutine outlives Close.
	defer goleak.VerifyNone(t)
	s := newFakeStore()
	entered := make(chan struct{})
	s.touchHook = func(ctx context.Context, n int, _ []Use) error {
		if n == 1 {
			close(entered)
		}
		<-ctx.Done()
		return ctx.Err()
	}
	tc := NewToucher(s, TouchOptions{Interval: time.Millisecond})
	tc.Start()
	tc.Used("key_a", time.Time{})
	<-entered
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	err := tc.Close(ctx)
	require.ErrorIs(t, err, context.Canceled)
	require.Empty(t, s.touched())
}

func TestToucherConcurrent(t *testing.T) {
	defer goleak.VerifyNone(t)
	s := newFakeStore()
	tc := NewToucher(s, TouchOptions{Interval: time.Millisecond})
	tc.Start()
	base := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	const goroutines, uses, ids = 8, 2000, 50
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range uses {
				id := fmt.Sprintf("key_%02d", (g*7+i)%ids)
				tc.Used(id, base.Add(time.Duration(g*uses+i)))
				if i%500 == 0 {
					if err := tc.Flush(t.Context()); err != nil {
						t.Error(err)
					}
				}
			}
		})
	}
	wg.Wait()
	require.NoError(t, tc.Close(t.Context()))
	require.Equal(t, TouchStats{}, tc.Stats())

	want := map[string]time.Time{}
	for g := range goroutines {
		for i := range uses {
			id := fmt.Sprintf("key_%02d", (g*7+i)%ids)
			if at := base.Add(time.Duration(g*uses + i)); at.After(want[id]) {
				want[id] = at
			}
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	require.Equal(t, want, s.lastUsed)
}

func TestToucherNoAllocForPendingKey(t *testing.T) {
	tc := NewToucher(newFakeStore(), TouchOptions{})
	at := time.Now()
	tc.Used("key_a", at)
	allocs := testing.AllocsPerRun(1000, func() {
		at = at.Add(time.Nanosecond)
		tc.Used("key_a", at)
	})
	require.Zero(t, allocs)
}

func BenchmarkUsed(b *testing.B) {
	ids := make([]string, 1024)
	for i := range ids {
		ids[i] = fmt.Sprintf("key_%026d", i)
	}
	at := time.Now()
	b.Run("serial", func(b *testing.B) {
		tc := NewToucher(newFakeStore(), TouchOptions{})
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			tc.Used(ids[i&1023], at)
		}
	})
	b.Run("parallel", func(b *testing.B) {
		tc := NewToucher(newFakeStore(), TouchOptions{})
		for _, id := range ids {
			tc.Used(id, at)
		}
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for i := rand.IntN(1024); pb.Next(); i++ {
				tc.Used(ids[i&1023], at)
			}
		})
	})
	b.Run("parallel-one-key", func(b *testing.B) {
		tc := NewToucher(newFakeStore(), TouchOptions{})
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				tc.Used(ids[0], at)
			}
		})
	})
}

func ExampleToucher() {
	store := newFakeStore()
	t := NewToucher(store, TouchOptions{Interval: 10 * time.Second})
	t.Start()

	at := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	for i := range 3 { // on the request path
		t.Used("key_a", at.Add(time.Duration(i)*time.Second))
	}
	t.Used("key_b", at)

	if err := t.Close(context.Background()); err != nil { // final flush
		fmt.Println(err)
	}
	for _, batch := range store.touched() {
		fmt.Println(batch)
	}
	fmt.Println(errors.Is(t.Flush(context.Background()), ErrClosed))
	// Output:
	// [{key_a 2025-01-02 03:04:07 +0000 UTC} {key_b 2025-01-02 03:04:05 +0000 UTC}]
	// true
}
