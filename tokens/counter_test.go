package tokens

import (
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestCount(t *testing.T) {
	c := NewCounter()
	n, err := c.Count(EncodingCL100K, "hello world")
	require.NoError(t, err)
	require.Equal(t, 2, n)
	n, err = c.Count(EncodingO200K, "hello world")
	require.NoError(t, err)
	require.Equal(t, 2, n)
	_, err = c.Count("p99k", "x")
	require.ErrorIs(t, err, ErrUnknownEncoding)

	// Beyond the bound the rest is estimated with QuickCount, so huge
	// unbroken runs stay cheap; the estimate stays close to tiktoken's
	// count (10,000 a's are 1,250 tokens).
	c.maxBytes = 1000
	n, err = c.Count(EncodingCL100K, strings.Repeat("a", 10_000))
	require.NoError(t, err)
	require.InEpsilon(t, 1250, n, 0.1)
}

func TestBudget(t *testing.T) {
	c := NewCounter()
	for _, tc := range []struct {
		name, text string
		left       int
		tokenized  string // the part tiktoken counts
	}{
		{name: "within", text: "hello world", left: 100, tokenized: "hello world"},
		{name: "exact fit", text: "hello world", left: 11, tokenized: "hello world"},
		{name: "beyond", text: "hello world, hello world", left: 10, tokenized: "hello worl"},
		{name: "cut at a character boundary", text: "héllo", left: 2, tokenized: "h"},
		{name: "spent", text: "hello", left: 0, tokenized: ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := int64(0)
			if tc.tokenized != "" {
				n, err := c.Count(EncodingO200K, tc.tokenized)
				require.NoError(t, err)
				want = int64(n)
			}
			want += quickCapped(EncodingO200K, []byte(tc.text[len(tc.tokenized):]))
			b := budget{c: c, encoding: EncodingO200K, left: tc.left}
			require.Equal(t, want, b.count([]byte(tc.text)))
			require.Equal(t, max(tc.left-len(tc.text), 0), b.left)
			b = budget{c: c, encoding: EncodingO200K, left: tc.left}
			require.Equal(t, want, b.countString(tc.text))
		})
	}
	// An unknown encoding counts with QuickCount.
	b := budget{c: c, encoding: "p99k", left: 100}
	require.Equal(t, QuickCount("p99k", []byte("hello world")), b.count([]byte("hello world")))
	require.Equal(t, int64(3), quickCapped(EncodingO200K, []byte("1,1")), "at most a token per byte")
}

// TestEstimateBudget: a body's count tokenizes at most the Counter's bound
// of its text, whatever the number of texts, and estimates the rest.
func TestEstimateBudget(t *testing.T) {
	body := openAIBody(corpus(t))
	exact := NewCounter().EstimateOpenAIChat(EncodingO200K, body)
	c := NewCounter()
	c.maxBytes = len(body) / 10
	e := exactCounter{b: c.budget(EncodingO200K)}
	n, ok := walkBody(body, false, &e, nil, false)
	require.True(t, ok)
	require.Zero(t, e.b.left, "the budget is spent")
	require.Equal(t, n, c.EstimateOpenAIChat(EncodingO200K, body))
	require.InEpsilon(t, exact, n, 0.05, "mostly estimated: %d, exact %d", n, exact)
	require.LessOrEqual(t, n, UpperBound(body))
}

func TestCounterConcurrentUse(t *testing.T) {
	c := NewCounter()
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n, err := c.Count(EncodingO200K, "The quick brown fox jumps over the lazy dog.")
			require.NoError(t, err)
			require.Equal(t, 10, n)
		}()
	}
	wg.Wait()
}

func TestEstimates(t *testing.T) {
	c := NewCounter()
	chat := []byte(`{"model":"gpt-4o","messages":[{"role":"system","content":"You are terse."},{"role":"user","content":[{"type":"text","text":"hello world"},{"type":"image_url","image_url":{"url":"https://x/y.png"}}]}]}`)
	n := c.EstimateOpenAIChat(EncodingO200K, chat)
	require.Equal(t, int64(3+3+4+3+2), n) // reply + (msg + "You are terse.") + (msg + "hello world")

	msgs := []byte(`{"model":"claude","system":"You are terse.","messages":[{"role":"user","content":"hello world"},{"role":"assistant","content":[{"type":"tool_use","id":"t","name":"f","input":{"a":1}}]}]}`)
	m := c.EstimateAnthropicMessages(EncodingCL100K, msgs)
	require.Greater(t, m, int64(3+4+3+2+3))

	require.Equal(t, int64(1), c.EstimateOpenAIChat("", []byte(`{bad`)), "unreadable bodies estimate at 4 bytes per token")
}

func BenchmarkEstimateOpenAIChat(b *testing.B) {
	c := NewCounter()
	body := []byte(`{"model":"gpt-4o","messages":[{"role":"system","content":"You are a helpful assistant."},{"role":"user","content":"` + strings.Repeat("Tell me about Go. ", 100) + `"}]}`)
	c.EstimateOpenAIChat(EncodingO200K, body)
	b.ReportAllocs()
	for b.Loop() {
		c.EstimateOpenAIChat(EncodingO200K, body)
	}
}
