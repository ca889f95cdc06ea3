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
			pathDirect:   {win(10, 0, 500*time.Microsecond)},
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
	row("OpenAI client → GPT, JSON", "direct \\(no proxy\\)", "0.500 ms", "0.500 ms", "—", "1.00 ms", "—", "—", "—")
	row("OpenAI client → GPT, JSON", "llmgate", "1.00 ms", "1.00 ms", `\+0\.500 ms`, "2.00 ms", "200 µs", `2\.00×`, `1\.00×`)
	row("OpenAI client → GPT, stream", "llmgate", "1.00 ms", "1.00 ms", "—", "2.00 ms", "200 µs", `2\.00×`, `1\.00×`)
	row("OpenAI client → Claude, JSON \\(translated\\)", "llmgate", "1.10 ms", "1.10 ms", "—", "2.20 ms", "300 µs", "—", "—")
	row("llmgate", `1\.50×`, `1\.10×`, `1\.50×`, `1\.10×`, "met")
	row("llmgate @ 192e4bb", `10\.00×`, `10\.00×`, `10\.00×`, `10\.00×`, `\*\*not met\*\*`)
	// Held streams: per stream and peak ÷ plain, and the overlap warning.
	row("llmgate", "10.0 MiB", "156.5 MiB", "75.0 KiB", "1900", `1\.25×`, `1\.23×`)
	require.Contains(t, out, "**Not all streams were open at once** via llmgate (at most 1900 of 2000)")
	require.Contains(t, out, "### llmgate @ 192e4bb ÷ httputil.ReverseProxy")
	require.Contains(t, out, "No errors")
}

func TestRenderVersus(t *testing.T) {
	// Per-round CPU per request of the path with an option, in µs, over
	// llmgate's 100 µs (JSON, 1 client) and 200 µs (streaming).
	type verdict struct {
		name             string
		json, stream     []time.Duration
		ratioJSON, ratio string // the rendered ratio cells
		verdict          string
	}
	verdicts := []verdict{
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
		{
			name:      "not met on JSON",
			json:      []time.Duration{111, 112, 100},
			stream:    []time.Duration{210, 204, 206},
			ratioJSON: `1\.11× \(1\.00–1\.12\)`,
			ratio:     `1\.03× \(1\.02–1\.05\)`,
			verdict:   "Target (JSON and streaming, 8 clients): **not met**.",
		},
	}
	for _, path := range []struct {
		flag, path, label string
		heading, about    string // lines the section must have
	}{
		{
			flag: "-strategies", path: pathCEL, label: `llmgate \+ 3 CEL strategies`,
			heading: "\n#### Model selection strategies ÷ none (target: CPU ≤ 1.1×)\n",
			about:   "- `ai.models.underCost('text.input', 3.0).sortBy(m, m.pricing.input)`\n",
		},
		{
			flag: "-keys", path: pathKeys, label: `llmgate \+ gateway keys`,
			heading: "\n#### Gateway keys required ÷ none (target: CPU ≤ 1.1×)\n",
			about:   "llmgate + gateway keys is llmgate with `gateway.WithKeyStore` over a `keys.MemoryStore` holding one gateway API key (endpoint \"bench\"",
		},
	} {
		for _, tc := range verdicts {
			t.Run(path.path+"/"+tc.name, func(t *testing.T) {
				cfg, err := parseFlags([]string{"-quick", path.flag, "-rounds", "3"})
				require.NoError(t, err)
				rep := newReport(cfg, "Pinned.", true)
				require.Equal(t, []string{pathDirect, pathPlain, pathLLMGate, path.path}, rep.paths)
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
					m[path.path] = rounds(tc.json...)
				}
				rep.stream[pathDirect] = rounds(0, 0, 0)
				rep.stream[pathPlain] = rounds(160, 160, 160)
				rep.stream[pathLLMGate] = rounds(200, 200, 200)
				rep.stream[path.path] = rounds(tc.stream...)

				var b strings.Builder
				rep.render(&b)
				out := b.String()
				row := func(cells ...string) {
					t.Helper()
					pattern := `(?m)^\|\s*` + strings.Join(cells, `\s*\|\s*`) + `\s*\|`
					require.Regexp(t, regexp.MustCompile(pattern), out)
				}
				require.Contains(t, out, path.heading)
				require.Contains(t, out, path.about)
				require.Equal(t, 1, strings.Count(out, "÷ none (target"), "only the section of the path measured")
				row("llmgate", "100 µs", "100 µs", "200 µs")
				row("Ratio", tc.ratioJSON, tc.ratioJSON, tc.ratio)
				require.Contains(t, out, tc.verdict)
				// The path is compared to the ReverseProxy like the others,
				// in every table of the scenarios it takes part in.
				require.Contains(t, out, "### "+strings.ReplaceAll(path.label, `\`, "")+" ÷ httputil.ReverseProxy")
				row(path.label, "2.00 ms", "2.00 ms", "100 req/s", `1[01][0-9] µs`, `1\.[0-9]+×`, `1\.00×`)
				row(path.label, "2.00 ms", "2.00 ms", "100 req/s", `1[01][0-9] µs`, `1\.00×`, `1\.[0-9]+×`)
				row(path.label, "1.00 ms", "1.00 ms", "2.00 ms", "2.00 ms", "100 streams/s", `2[0-5][0-9] µs`, `1\.[0-9]+×`, `1\.00×`)
				row("JSON", path.label, "300", "0")
			})
		}
	}

	t.Run("both", func(t *testing.T) {
		cfg, err := parseFlags([]string{"-quick", "-strategies", "-keys"})
		require.NoError(t, err)
		rep := newReport(cfg, "Pinned.", true)
		require.Equal(t, []string{pathDirect, pathPlain, pathLLMGate, pathCEL, pathKeys}, rep.paths)
		for _, m := range []map[string][]*window{rep.json, rep.single, rep.stream} {
			m[pathDirect] = []*window{win(100, 0, time.Millisecond)}
			m[pathPlain] = []*window{win(100, 80*time.Microsecond, time.Millisecond)}
			m[pathLLMGate] = []*window{win(100, 100*time.Microsecond, time.Millisecond)}
			m[pathCEL] = []*window{win(100, 120*time.Microsecond, time.Millisecond)}
			m[pathKeys] = []*window{win(100, 105*time.Microsecond, time.Millisecond)}
		}
		var b strings.Builder
		rep.render(&b)
		out := b.String()
		strat := strings.Index(out, "#### Model selection strategies ÷ none")
		keys := strings.Index(out, "#### Gateway keys required ÷ none")
		require.Positive(t, strat)
		require.Greater(t, keys, strat)
		require.Contains(t, out[strat:keys], "**not met**", "strategies: 1.20×")
		require.Contains(t, out[keys:], "Target (JSON and streaming, 8 clients): met.", "keys: 1.05×")
		require.NotContains(t, out[keys:], "**not met**")
	})
}
