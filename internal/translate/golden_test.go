package translate

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/llmgate/gateway/internal/sse"
	"github.com/llmgate/gateway/providers"
)

var update = flag.Bool("update", false, "rewrite the golden .out files under testdata")

// fixedNow is the clock of every golden translation.
func fixedNow() time.Time { return time.Unix(1700000000, 0) }

// goldenOpts is the optional <case>.opts.json next to an input.
type goldenOpts struct {
	Model           string `json:"model"`
	MaxOutputTokens int    `json:"max_output_tokens"`
	ClientModel     string `json:"client_model"`
	IncludeUsage    bool   `json:"include_usage"`
	InputTokens     int64  `json:"input_tokens"`
	NoReasoning     bool   `json:"no_reasoning"`
}

// directions maps a testdata directory name to its formats.
var directions = map[string][2]providers.Format{
	"openai_to_anthropic": {providers.FormatOpenAI, providers.FormatAnthropic},
	"anthropic_to_openai": {providers.FormatAnthropic, providers.FormatOpenAI},
}

// goldenCase is one input file.
type goldenCase struct {
	name     string
	in       string // input path
	out      string // golden output path
	from, to providers.Format
	opts     goldenOpts
}

func goldenCases(t *testing.T, kind, inExt, outExt string) []goldenCase {
	t.Helper()
	var cases []goldenCase
	for dir, f := range directions {
		files, err := filepath.Glob(filepath.Join("testdata", kind, dir, "*"+inExt))
		require.NoError(t, err)
		for _, in := range files {
			base := strings.TrimSuffix(in, inExt)
			c := goldenCase{name: dir + "/" + filepath.Base(base), in: in, out: base + outExt, from: f[0], to: f[1]}
			if b, err := os.ReadFile(base + ".opts.json"); err == nil {
				require.NoError(t, json.Unmarshal(b, &c.opts), base)
			}
			cases = append(cases, c)
		}
	}
	require.NotEmpty(t, cases, "no %s cases", kind)
	return cases
}

// checkGolden compares got with the golden file, or rewrites it.
func checkGolden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		require.NoError(t, os.WriteFile(path, got, 0o644))
		return
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "missing golden file; run go test ./internal/translate -update")
	require.Equal(t, string(want), string(got))
}

// pretty indents a compact JSON document for a readable golden file.
func pretty(t *testing.T, b []byte) json.RawMessage {
	t.Helper()
	require.True(t, json.Valid(b), "invalid JSON: %s", b)
	var out bytes.Buffer
	require.NoError(t, json.Indent(&out, b, "", "  "))
	return out.Bytes()
}

func encodeGolden(t *testing.T, v any) []byte {
	t.Helper()
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	require.NoError(t, enc.Encode(v))
	return b.Bytes()
}

func TestGoldenRequests(t *testing.T) {
	for _, c := range goldenCases(t, "request", ".in.json", ".out.json") {
		t.Run(c.name, func(t *testing.T) {
			in, err := os.ReadFile(c.in)
			require.NoError(t, err)
			opt := RequestOptions{Model: c.opts.Model, MaxOutputTokens: c.opts.MaxOutputTokens, NoReasoning: c.opts.NoReasoning}
			out, removed, err := Request(c.from, c.to, in, opt)
			var result any
			if err != nil {
				var te *Error
				require.ErrorAs(t, err, &te)
				result = map[string]any{"error": map[string]string{"param": te.Param, "message": te.Message}}
			} else {
				out2, removed2, err2 := Request(c.from, c.to, in, opt)
				require.NoError(t, err2)
				require.Equal(t, out, out2, "not deterministic")
				require.Equal(t, removed, removed2, "not deterministic")
				if removed == nil {
					removed = []string{}
				}
				result = struct {
					Removed []string        `json:"removed"`
					Body    json.RawMessage `json:"body"`
				}{removed, pretty(t, out)}
			}
			checkGolden(t, c.out, encodeGolden(t, result))
		})
	}
}

func TestGoldenResponses(t *testing.T) {
	for _, c := range goldenCases(t, "response", ".in.json", ".out.json") {
		t.Run(c.name, func(t *testing.T) {
			in, err := os.ReadFile(c.in)
			require.NoError(t, err)
			opt := ResponseOptions{ClientModel: c.opts.ClientModel, Now: fixedNow}
			out, err := Response(c.from, c.to, in, opt)
			var result any
			if err != nil {
				result = map[string]string{"error": err.Error()}
			} else {
				out2, err := Response(c.from, c.to, in, opt)
				require.NoError(t, err)
				require.Equal(t, out, out2, "not deterministic")
				result = pretty(t, out)
			}
			checkGolden(t, c.out, encodeGolden(t, result))
		})
	}
}

func TestGoldenErrors(t *testing.T) {
	for _, c := range goldenCases(t, "error", ".in.json", ".out.json") {
		t.Run(c.name, func(t *testing.T) {
			in, err := os.ReadFile(c.in)
			require.NoError(t, err)
			digits, _, _ := strings.Cut(filepath.Base(c.in), "_")
			digits = strings.TrimSuffix(digits, ".in.json")
			status, err := strconv.Atoi(digits)
			require.NoError(t, err, "error case names start with the status")
			gotStatus, body := ErrorResponse(c.from, c.to, status, in)
			result := struct {
				Status int             `json:"status"`
				Body   json.RawMessage `json:"body"`
			}{gotStatus, pretty(t, body)}
			checkGolden(t, c.out, encodeGolden(t, result))
		})
	}
}

// chunkReader returns at most n bytes per Read, to split events at
// arbitrary points.
type chunkReader struct {
	b []byte
	n int
}

func (r *chunkReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	n := min(len(p), r.n, len(r.b))
	copy(p, r.b[:n])
	r.b = r.b[n:]
	return n, nil
}

// runStream plays an upstream stream through a Stream as the gateway
// would: Event per event, then Finish with Done, then, when the upstream
// ended early or sent something invalid, the gateway's own error event.
func runStream(t testing.TB, from, to providers.Format, opt StreamOptions, in []byte, chunk int) []byte {
	t.Helper()
	return runStreamFrom(t, from, to, opt, &chunkReader{b: in, n: chunk})
}

// runStreamFrom is runStream over any reader.
func runStreamFrom(t testing.TB, from, to providers.Format, opt StreamOptions, src io.Reader) []byte {
	t.Helper()
	s := NewStream(from, to, opt)
	rd := sse.NewReader(src, 0)
	var out []byte
	for {
		ev, err := rd.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("sse: %v", err)
		}
		var terr error
		out, terr = s.Event(out, ev.Name, ev.Data)
		if terr != nil {
			return s.ErrorEvent(out, 502, terr.Error(), "upstream_invalid")
		}
	}
	done := s.Done()
	out = s.Finish(out, done)
	if !done {
		out = s.ErrorEvent(out, 502, "upstream stream ended early", "upstream_incomplete")
	}
	return out
}

func streamOpts(o goldenOpts) StreamOptions {
	opt := StreamOptions{ClientModel: o.ClientModel, Now: fixedNow, IncludeUsage: o.IncludeUsage}
	if o.InputTokens != 0 {
		n := o.InputTokens
		opt.InputTokens = func() int64 { return n }
	}
	return opt
}

func TestGoldenStreams(t *testing.T) {
	for _, c := range goldenCases(t, "stream", ".in.sse", ".out.sse") {
		t.Run(c.name, func(t *testing.T) {
			in, err := os.ReadFile(c.in)
			require.NoError(t, err)
			out := runStream(t, c.from, c.to, streamOpts(c.opts), in, 1<<20)
			for _, n := range []int{1, 2, 3, 7, 17, 4096} {
				require.Equal(t, string(out), string(runStream(t, c.from, c.to, streamOpts(c.opts), in, n)), "chunk size %d", n)
			}
			validateStream(t, c.to, out)
			checkGolden(t, c.out, out)
		})
	}
}
