package main

import (
	"bufio"
	"errors"
	"math"
	"strings"
	"testing"
	"time"
)

func TestParseStatCPU(t *testing.T) {
	// The command name holds spaces and a ')' to check that fields are
	// counted from the last ')'.
	line := "4242 (proxy (x) y) S 1 4242 4242 0 -1 4194560 1234 0 0 0 250 75 0 0 20 0 9 0 123456 1000000 2000 18446744073709551615\n"
	got, err := parseStatCPU([]byte(line))
	if err != nil {
		t.Fatal(err)
	}
	if want := 3250 * time.Millisecond; got != want {
		t.Fatalf("parseStatCPU = %v, want %v", got, want)
	}
	if _, err := parseStatCPU([]byte("4242 (x) S 1 2")); err == nil {
		t.Fatal("parseStatCPU accepted a short line")
	}
}

func TestParseStatusMemory(t *testing.T) {
	status := "Name:\tproxy\nVmPeak:\t 1000 kB\nVmHWM:\t   20480 kB\nVmRSS:\t   10240 kB\nThreads:\t5\n"
	rss, peak, err := parseStatusMemory([]byte(status))
	if err != nil {
		t.Fatal(err)
	}
	if rss != 10<<20 || peak != 20<<20 {
		t.Fatalf("rss, peak = %d, %d; want %d, %d", rss, peak, 10<<20, 20<<20)
	}
	if _, _, err := parseStatusMemory([]byte("Name:\tx\nVmRSS:\t1 kB\n")); err == nil {
		t.Fatal("parseStatusMemory accepted a status without VmHWM")
	}
}

func TestPercentileAndMedian(t *testing.T) {
	var d []time.Duration
	for i := 1; i <= 100; i++ {
		d = append(d, time.Duration(i))
	}
	for _, c := range []struct {
		p    float64
		want time.Duration
	}{{0.5, 50}, {0.99, 99}, {1, 100}, {0, 1}} {
		if got := percentile(d, c.p); got != c.want {
			t.Errorf("percentile(%v) = %v, want %v", c.p, got, c.want)
		}
	}
	if percentile(nil, 0.5) != 0 {
		t.Error("percentile of nothing is not 0")
	}
	if got := median([]float64{3, 1, 2}); got != 2 {
		t.Errorf("median odd = %v", got)
	}
	if got := median([]float64{4, 1, 3, 2}); got != 2.5 {
		t.Errorf("median even = %v", got)
	}
	if !math.IsNaN(median(nil)) {
		t.Error("median of nothing is not NaN")
	}
}

// sseStream renders a stream like the fake upstream's with n content
// chunks, using eol as the line ending.
func sseStream(n int, eol string) string {
	var b strings.Builder
	ev := func(data string) { b.WriteString("data: " + data + eol + eol) }
	ev(`{"choices":[{"delta":{"role":"assistant","content":""}}],"usage":null}`)
	for range n {
		ev(`{"choices":[{"delta":{"content":"x"}}],"usage":null}`)
	}
	ev(`{"choices":[{"delta":{},"finish_reason":"stop"}],"usage":null}`)
	ev(`{"choices":[],"usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3}}`)
	ev("[DONE]")
	return b.String()
}

func TestReadStream(t *testing.T) {
	const n = 5
	full := sseStream(n, "\n")
	tests := []struct {
		name   string
		stream string
		ok     bool
	}{
		{"complete", full, true},
		{"CRLF", sseStream(n, "\r\n"), true},
		{"with comment", ": keep-alive\n\n" + full, true},
		{"truncated before DONE", strings.TrimSuffix(full, "data: [DONE]\n\n"), false},
		{"cut inside an event", strings.TrimSuffix(full, "\n\n"), false},
		{"a chunk missing", strings.Replace(full, "data: {\"choices\":[{\"delta\":{\"content\":\"x\"}}],\"usage\":null}\n\n", "", 1), false},
		{"no usage", strings.Replace(full, `"usage":{"prompt_tokens"`, `"usage":{"x"`, 1), false},
		{"data after DONE", full + "data: {}\n\n", false},
		{"empty", "", false},
	}
	br := bufio.NewReaderSize(nil, 64<<10)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			first, err := readStream(br, strings.NewReader(tc.stream), wantEvents(n), time.Now(), nil)
			if tc.ok {
				if err != nil {
					t.Fatalf("readStream: %v", err)
				}
				if first <= 0 {
					t.Fatalf("first event time %v", first)
				}
				return
			}
			var ce *checkError
			if !errors.As(err, &ce) || ce.kind != errIncomplete {
				t.Fatalf("readStream = %v, want an %q error", err, errIncomplete)
			}
		})
	}
}

func TestTally(t *testing.T) {
	var a, b tally
	a.add(&checkError{errStatus, "502"})
	a.add(&checkError{errStatus, "503"})
	b.add(errors.New("connection reset"))
	a.merge(b)
	if a.total() != 3 {
		t.Fatalf("total = %d", a.total())
	}
	want := "1 × transport error (e.g. connection reset); 2 × unexpected status (e.g. 502)"
	if got := a.String(); got != want {
		t.Fatalf("String = %q, want %q", got, want)
	}
}

func TestFormat(t *testing.T) {
	for _, c := range []struct{ got, want string }{
		{commas(1234567.4), "1,234,567"},
		{commas(999), "999"},
		{commas(-1234), "-1,234"},
		{fmtMs(0.41234), "0.412 ms"},
		{fmtMs(12.345), "12.3 ms"},
		{fmtAdded(-0.05), "−0.050 ms"},
		{fmtRatio(1.234), "1.23×"},
		{fmtRatio(math.NaN()), "—"},
	} {
		if c.got != c.want {
			t.Errorf("got %q, want %q", c.got, c.want)
		}
	}
	var b strings.Builder
	tb := &table{head: []string{"Path", "p50"}}
	tb.add("llmgate", "1 ms")
	tb.write(&b)
	want := "| Path    |  p50 |\n| ------- | ---: |\n| llmgate | 1 ms |\n"
	if b.String() != want {
		t.Fatalf("table:\n%s\nwant:\n%s", b.String(), want)
	}
}

func TestParseFlags(t *testing.T) {
	c, err := parseFlags([]string{"-quick", "-concurrency", "4"})
	if err != nil {
		t.Fatal(err)
	}
	if c.duration != time.Second || c.rounds != 1 || c.streams != 32 || c.concurrency != 4 {
		t.Fatalf("quick config = %+v", c)
	}
	c, err = parseFlags(nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.rounds < 3 || c.concurrency != 32 || c.streams != 256 {
		t.Fatalf("default config = %+v", c)
	}
	if _, err := parseFlags([]string{"-rounds", "0"}); err == nil {
		t.Fatal("parseFlags accepted -rounds 0")
	}
}
