package main

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// win returns a window of n requests, each costing the proxy cpu, whose
// first byte came after first and which ended after 2×first.
func win(n int, cpu, first time.Duration) *window {
	return &window{requests: n, elapsed: time.Second, latency: []time.Duration{2 * first}, first: []time.Duration{first},
		cpu: cpuSnapshot{proxy: cpu * time.Duration(n)}}
}

func TestRender(t *testing.T) {
	cfg, err := parseFlags([]string{"-rounds", "1"})
	require.NoError(t, err)
	rep := newReport(cfg, "Pinned.", true)
	rep.baselineRev = "192e4bb"
	rep.paths = append(rep.paths, pathBaseline)
	for _, m := range []map[string][]*window{rep.json, rep.single, rep.stream} {
		m[pathDirect] = []*window{win(100, 0, time.Millisecond)}
		m[pathPlain] = []*window{win(100, 100*time.Microsecond, 2*time.Millisecond)}
		m[pathLLMGate] = []*window{win(100, 150*time.Microsecond, 3*time.Millisecond)}
		m[pathBaseline] = []*window{win(100, 200*time.Microsecond, 2*time.Millisecond)}
	}
	rep.large = map[string]map[string][]*window{
		"same JSON": {
			pathPlain:    {win(10, 100*time.Microsecond, time.Millisecond)},
			pathLLMGate:  {win(10, 200*time.Microsecond, time.Millisecond)},
			pathBaseline: {win(10, 200*time.Microsecond, time.Millisecond)},
		},
		"same stream": {
			pathPlain:    {win(10, 100*time.Microsecond, time.Millisecond)},
			pathLLMGate:  {win(10, 200*time.Microsecond, time.Millisecond)},
			pathBaseline: {win(10, 200*time.Microsecond, time.Millisecond)},
		},
		// llmgate meets the targets (1.5× CPU, 1.1× first byte), the
		// baseline does not (10×).
		"cross JSON": {
			pathLLMGate:  {win(10, 300*time.Microsecond, 1100*time.Microsecond)},
			pathBaseline: {win(10, 2000*time.Microsecond, 10*time.Millisecond)},
		},
		"cross stream": {
			pathLLMGate:  {win(10, 300*time.Microsecond, 1100*time.Microsecond)},
			pathBaseline: {win(10, 2000*time.Microsecond, 10*time.Millisecond)},
		},
	}
	hw := func(n int, perStream int64, open int) []*holdWindow {
		return []*holdWindow{{streams: n, maxOpen: open, idleRSS: 10 << 20, peakRSS: 10<<20 + int64(n)*perStream}}
	}
	rep.hold = map[string][]*holdWindow{pathPlain: hw(256, 50<<10, 256), pathLLMGate: hw(256, 60<<10, 256), pathBaseline: hw(256, 70<<10, 256)}
	rep.scale = map[string][]*holdWindow{pathPlain: hw(2000, 60<<10, 2000), pathLLMGate: hw(2000, 75<<10, 1900), pathBaseline: hw(2000, 90<<10, 2000)}

	var b strings.Builder
	rep.render(&b)
	out := b.String()
	row := func(cells ...string) {
		t.Helper()
		pattern := `(?m)^\|\s*` + strings.Join(cells, `\s*\|\s*`) + `\s*\|`
		require.Regexp(t, regexp.MustCompile(pattern), out)
	}
	// JSON: CPU and throughput ÷ plain.
	row("llmgate", "6.00 ms", "6.00 ms", "100 req/s", "150 µs", `1\.50×`, `1\.00×`)
	row("llmgate @ 192e4bb", "4.00 ms", "4.00 ms", "100 req/s", "200 µs", `2\.00×`, `1\.00×`)
	// Large: ÷ plain for the same format, cross ÷ same with the verdict.
	row("OpenAI client → GPT, JSON", "llmgate", "1.00 ms", "1.00 ms", "2.00 ms", "200 µs", `2\.00×`, `1\.00×`)
	row("OpenAI client → Claude, JSON \\(translated\\)", "llmgate", "1.10 ms", "1.10 ms", "2.20 ms", "300 µs", "—", "—")
	row("llmgate", `1\.50×`, `1\.10×`, `1\.50×`, `1\.10×`, "met")
	row("llmgate @ 192e4bb", `10\.00×`, `10\.00×`, `10\.00×`, `10\.00×`, `\*\*not met\*\*`)
	// Held streams: per stream and peak ÷ plain, and the overlap warning.
	row("llmgate", "10.0 MiB", "156.5 MiB", "75.0 KiB", "1900", `1\.25×`, `1\.23×`)
	require.Contains(t, out, "**Not all streams were open at once** via llmgate (at most 1900 of 2000)")
	require.Contains(t, out, "### llmgate @ 192e4bb ÷ httputil.ReverseProxy")
	require.Contains(t, out, "No errors")
}

func TestRenderStrategies(t *testing.T) {
	// Per-round CPU per request of llmgate+cel, in µs, over llmgate's
	// 100 µs (JSON, 1 client) and 200 µs (streaming).
	for _, tc := range []struct {
		name             string
		json, stream     []time.Duration
		ratioJSON, ratio string // the rendered ratio cells
		verdict          string
	}{
		{
			name:      "met",
			json:      []time.Duration{103, 105, 101},
			stream:    []time.Duration{210, 204, 206},
			ratioJSON: `1\.03× \(1\.01–1\.05\)`,
			ratio:     `1\.03× \(1\.02–1\.05\)`,
			verdict:   "Target (JSON and streaming, 8 clients): met.",
		},
		{
			name:      "not met on streaming",
			json:      []time.Duration{103, 105, 101},
			stream:    []time.Duration{230, 224, 250},
			ratioJSON: `1\.03× \(1\.01–1\.05\)`,
			ratio:     `1\.15× \(1\.12–1\.25\)`,
			verdict:   "Target (JSON and streaming, 8 clients): **not met**.",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := parseFlags([]string{"-quick", "-strategies", "-rounds", "3"})
			require.NoError(t, err)
			rep := newReport(cfg, "Pinned.", true)
			require.Equal(t, []string{pathDirect, pathPlain, pathLLMGate, pathCEL}, rep.paths)
			rounds := func(cpus ...time.Duration) []*window {
				var ws []*window
				for _, c := range cpus {
					ws = append(ws, win(100, c*time.Microsecond, time.Millisecond))
				}
				return ws
			}
			for _, m := range []map[string][]*window{rep.json, rep.single} {
				m[pathDirect] = rounds(0, 0, 0)
				m[pathPlain] = rounds(80, 80, 80)
				m[pathLLMGate] = rounds(100, 100, 100)
				m[pathCEL] = rounds(tc.json...)
			}
			rep.stream[pathDirect] = rounds(0, 0, 0)
			rep.stream[pathPlain] = rounds(160, 160, 160)
			rep.stream[pathLLMGate] = rounds(200, 200, 200)
			rep.stream[pathCEL] = rounds(tc.stream...)

			var b strings.Builder
			rep.render(&b)
			out := b.String()
			row := func(cells ...string) {
				t.Helper()
				pattern := `(?m)^\|\s*` + strings.Join(cells, `\s*\|\s*`) + `\s*\|`
				require.Regexp(t, regexp.MustCompile(pattern), out)
			}
			require.Contains(t, out, "\n#### Model selection strategies ÷ none (target: CPU ≤ 1.1×)\n")
			require.Contains(t, out, "- `ai.models.underCost('text.input', 3.0).sortBy(m, m.pricing.input)`\n")
			row("llmgate", "100 µs", "100 µs", "200 µs")
			row("Ratio", tc.ratioJSON, tc.ratioJSON, tc.ratio)
			require.Contains(t, out, tc.verdict)
			// The path is compared to the ReverseProxy like the others.
			require.Contains(t, out, "### llmgate + 3 CEL strategies ÷ httputil.ReverseProxy")
			row("llmgate \\+ 3 CEL strategies", "2.00 ms", "2.00 ms", "100 req/s", `10[0-9] µs`, `1\.[0-9]+×`, `1\.00×`)
		})
	}
}
