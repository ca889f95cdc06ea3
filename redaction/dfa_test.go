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
			id, mask := r.fwd.scan(startState, []byte(tc.text))
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
	// With a cache of two states (dead and start) every transition gives
	// up; streams then hold the whole window and run every rule, and
	// still produce the whole text's redaction.
	r := allPresets(t)
	r.fwd.limit, r.rev.limit = 2, 2
	for _, s := range presetSamples {
		whole, _ := r.Text(s)
		for i := 0; i <= len(s); i++ {
			got, _ := streamed(r, AcrossChunks, s, []int{i})
			require.Equal(t, whole, got, "cut at %d", i)
		}
	}
	require.Equal(t, int32(2), r.fwd.n)
	h := r.holdStart([]byte(strings.Repeat("x", 3000)), 0)
	require.Equal(t, 3000-r.window, h)
}

func TestDFAConcurrentUse(t *testing.T) {
	r := allPresets(t)
	text := strings.Join(presetSamples, " é ü 東京 ")
	want, _ := r.Text(text)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := g; i < len(text); i += 8 {
				got, _ := streamed(r, AcrossChunks, text, []int{i})
				if got != want {
					t.Errorf("cut at %d: %q", i, got)
					return
				}
			}
		}()
	}
	wg.Wait()
}
