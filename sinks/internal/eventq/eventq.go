// Package eventq is the bounded queue of encoded events shared by the event
// sinks: a push never blocks, and closing it lets its consumers drain what
// was pushed before.
package eventq

import (
	"encoding/json"
	"sync"
	"sync/atomic"

	gateway "github.com/llmgate/gateway"
)

// Queue is a bounded FIFO of encoded events. Push never blocks: when the
// queue is full or closed the event is dropped and counted. Consumers
// receive from C until it is closed, which Close does once no Push can
// still add to it. It is safe for concurrent use; the zero value is not
// usable (see New).
type Queue struct {
	mu      sync.RWMutex // held for reading by Push, for writing by Close
	closed  bool
	ch      chan []byte
	dropped atomic.Uint64
	pushed  atomic.Uint64
}

// New returns a queue holding at most size events (size ≥ 1).
func New(size int) *Queue {
	return &Queue{ch: make(chan []byte, size)}
}

// Full reports whether a Push would drop its event now; it lets a caller
// skip encoding an event that would be dropped.
func (q *Queue) Full() bool { return len(q.ch) == cap(q.ch) }

// Push adds b without blocking and reports whether it was added; when the
// queue is full or closed, b is counted as dropped.
func (q *Queue) Push(b []byte) bool {
	q.mu.RLock()
	ok := false
	if !q.closed {
		select {
		case q.ch <- b:
			ok = true
		default:
		}
	}
	q.mu.RUnlock()
	if ok {
		q.pushed.Add(1)
	} else {
		q.dropped.Add(1)
	}
	return ok
}

// Drop counts an event that never reached Push (for example because it
// could not be encoded).
func (q *Queue) Drop() { q.dropped.Add(1) }

// C returns the channel consumers receive from; it is closed by Close,
// after the events pushed before.
func (q *Queue) C() <-chan []byte { return q.ch }

// Close refuses further pushes and closes C. It is idempotent.
func (q *Queue) Close() {
	q.mu.Lock()
	defer q.mu.Unlock()
	if !q.closed {
		q.closed = true
		close(q.ch)
	}
}

// Len returns the number of events waiting.
func (q *Queue) Len() int { return len(q.ch) }

// Pushed returns the number of events accepted so far.
func (q *Queue) Pushed() uint64 { return q.pushed.Load() }

// Dropped returns the number of events dropped so far.
func (q *Queue) Dropped() uint64 { return q.dropped.Load() }

// Encode returns e's JSON form: the encoding/json form of gateway.Event,
// on one line.
func Encode(e *gateway.Event) ([]byte, error) { return json.Marshal(e) }

// Offer encodes e and queues it, without blocking: when the queue is full
// (checked first, so that a full queue costs no encoding), closed, or e
// cannot be encoded, e is dropped and counted.
func (q *Queue) Offer(e *gateway.Event) {
	if q.Full() {
		q.Drop()
		return
	}
	b, err := Encode(e)
	if err != nil {
		q.Drop()
		return
	}
	q.Push(b)
}
