package redaction

import (
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestDFAMayMatch(t *testing.T) {
	r, err := Compile([]Rule{{From: `cat`, To: "#"}, {From: `\d{3}`, To: "#"}, {Preset: PresetEmail}})
	require.NoError(t, err)
	for _, tc := range []struct {
		text string
		mask uint64
	}{
		{"nothing here", 0},
		{"a cat", 1},
		{"concatenate", 1}, // assertions are ignored: a superset
		{"12 34", 0},
		{"123", 2},
		{"cat 123", 3},
		{"a@b.io", 4},
		{"a@b", 0},
		{"é cat ü", 1},
	} {
		t.Run(tc.text, func(t *testing.T) {
			id, mask := r.fwd.cache().scan(startState, []byte(tc.text))
			require.GreaterOrEqual(t, id, int32(0))
			require.Equal(t, tc.mask, mask)
		})
	}
}

func TestDFAHoldStart(t *testing.T) {
	r, err := Compile([]Rule{{From: `secret-\d+`, To: "#"}, {From: `\bkey\b`, To: "#"}, {From: `é{2}`, To: "#"}})
	require.NoError(t, err)
	for _, tc := range []struct {
		text string
		held string
	}{
		{"plain", ""},
		{"a sec", "sec"},
		{"a secret-", "secret-"},
		{"a secret-123", "secret-123"}, // the number may go on
		{"a ke", "ke"},
		{"a key", "key"}, // \b after it depends on what follows
		{"monkey", "key"},
		{"café", "é"},
		{"caféé", "éé"},
		{"s", "s"},
	} {
		t.Run(tc.text, func(t *testing.T) {
			h := r.holdStart([]byte(tc.text), 0)
			require.Equal(t, tc.held, tc.text[h:])
		})
	}
}

func TestDFACacheFull(t *testing.T) {
	// With caches of two states (dead and start) every transition gives
	// up; streams then hold the whole window and run every rule, and
	// still produce the whole text's redaction.
	r := allPresets(t)
	r.fwd.limit, r.rev.limit = 2, 2
	r.fwd.renew(r.fwd.cache())
	r.rev.renew(r.rev.cache())
	for _, s := range presetSamples {
		whole, _ := r.Text(s)
		for i := 0; i <= len(s); i++ {
			got, _ := streamed(r, AcrossChunks, s, []int{i})
			require.Equal(t, whole, got, "cut at %d", i)
		}
	}
	require.Equal(t, int32(2), r.fwd.cache().n)
	h := r.holdStart([]byte(strings.Repeat("x", 3000)), 0)
	require.Equal(t, 3000-r.window, h)
}

func TestDFACacheRenewed(t *testing.T) {
	// Small caches fill up and are replaced, again and again, while
	// streams keep using the caches they hold: the results do not
	// change.
	r := allPresets(t)
	r.fwd.limit, r.rev.limit = 40, 40
	r.fwd.renew(r.fwd.cache())
	r.rev.renew(r.rev.cache())
	text := strings.Join(presetSamples, " ")
	want, _ := allPresets(t).Text(text)
	for seed := range uint64(10) {
		got, _ := streamed(r, AcrossChunks, text, fuzzCuts(seed, len(text)))
		require.Equal(t, want, got)
		got, _ = r.Text(text)
		require.Equal(t, want, got)
	}
	require.Greater(t, r.fwd.renews.Load(), int64(2))
	require.Greater(t, r.rev.renews.Load(), int64(2))
	require.LessOrEqual(t, r.fwd.cache().n, int32(40))
}

func TestDFAConcurrentUse(t *testing.T) {
	for _, tc := range []struct {
		limit int32
		step  int
	}{{maxStates, 31}, {40, 97}} {
		limit := tc.limit
		r := allPresets(t)
		r.fwd.limit, r.rev.limit = limit, limit
		r.fwd.renew(r.fwd.cache())
		r.rev.renew(r.rev.cache())
		text := strings.Join(presetSamples, " é ü 東京 ")
		want, _ := allPresets(t).Text(text)
		var wg sync.WaitGroup
		for g := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := g; i < len(text); i += tc.step {
					got, _ := streamed(r, AcrossChunks, text, []int{i})
					if got != want {
						t.Errorf("limit %d, cut at %d: %q", limit, i, got)
						return
					}
					if got, _ := r.Text(text); got != want {
						t.Errorf("limit %d: Text %q", limit, got)
						return
					}
				}
			}()
		}
		wg.Wait()
	}
}
