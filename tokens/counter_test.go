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

	// Beyond the bound the rest is estimated, so huge unbroken runs stay
	// cheap.
	c.maxBytes = 1000
	n, err = c.Count(EncodingCL100K, strings.Repeat("a", 10_000))
	require.NoError(t, err)
	require.Greater(t, n, 2000)
	require.Less(t, n, 3000)
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
