package eventq

import (
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	gateway "github.com/llmgate/gateway"
)

func TestQueue(t *testing.T) {
	q := New(2)
	require.False(t, q.Full())
	require.True(t, q.Push([]byte("a")))
	require.True(t, q.Push([]byte("b")))
	require.True(t, q.Full())
	require.False(t, q.Push([]byte("c")), "full")
	q.Drop()
	require.Equal(t, 2, q.Len())
	require.Equal(t, uint64(2), q.Pushed())
	require.Equal(t, uint64(2), q.Dropped())

	q.Close()
	q.Close() // idempotent
	require.False(t, q.Push([]byte("d")), "closed")
	var got []string
	for b := range q.C() { // drains, then ends
		got = append(got, string(b))
	}
	require.Equal(t, []string{"a", "b"}, got)
	require.Equal(t, uint64(3), q.Dropped())
}

func TestQueueCloseRacesPush(t *testing.T) {
	q := New(1000)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 500 {
				q.Push([]byte("x"))
			}
		})
	}
	q.Close()
	n := 0
	for range q.C() {
		n++
	}
	wg.Wait()
	require.Equal(t, uint64(n), q.Pushed(), "every accepted event is received")
	require.Equal(t, uint64(2000), q.Pushed()+q.Dropped())
}

func TestEncode(t *testing.T) {
	e := &gateway.Event{RequestID: "r1", Time: time.Unix(0, 0).UTC(), Status: 502, Path: "/v1/<x>",
		Attempts: []gateway.Attempt{{Provider: "openai", Model: "m", Status: 502, Error: gateway.AttemptStatus}}}
	b, err := Encode(e)
	require.NoError(t, err)
	require.NotContains(t, string(b), "\n")
	var back gateway.Event
	require.NoError(t, json.Unmarshal(b, &back))
	require.Equal(t, "r1", back.RequestID)
	require.Equal(t, "/v1/<x>", back.Path)
	require.Equal(t, e.Attempts, back.Attempts)
}

func BenchmarkEncode(b *testing.B) {
	e := &gateway.Event{RequestID: "r1", Time: time.Unix(0, 0).UTC(), Method: "POST", Path: "/v1/chat/completions", Status: 200,
		RequestedModels: []string{"openai:gpt-4o-mini"}, ServedBy: "openai:gpt-4o-mini",
		Attempts: []gateway.Attempt{{Provider: "openai", Model: "gpt-4o-mini", Status: 200, Duration: time.Second}}}
	b.ReportAllocs()
	for b.Loop() {
		_, _ = Encode(e)
	}
}
