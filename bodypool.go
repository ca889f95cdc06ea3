package gateway

import (
	"math/bits"
	"sync"
	"sync/atomic"

	"github.com/llmgate/gateway/providers"
)

// Large request bodies are read into buffers the gateway reuses: a 400 KB
// prompt in fresh memory costs page faults, zeroing and garbage collection
// worth about as much as parsing it. A body is pooled when its
// Content-Length is known and at least minPooledBody; buffers come in
// power-of-two classes up to maxPooledBody.
const (
	minPooledBodyLog = 16
	maxPooledBodyLog = 25
	minPooledBody    = 1 << minPooledBodyLog // 64 KiB
	maxPooledBody    = 1 << maxPooledBodyLog // 32 MiB
	bodyClasses      = maxPooledBodyLog - minPooledBodyLog + 1
)

// bodyPool holds the reusable request body buffers of one Gateway, one
// sync.Pool per size class (so idle buffers go away with garbage
// collections). Safe for concurrent use; the zero value is ready.
type bodyPool struct {
	classes [bodyClasses]sync.Pool // of *[]byte with cap 1<<(minPooledBodyLog+i)
}

// bodyClass returns the size class of a buffer of at least n bytes, or -1 when
// n is not pooled.
func bodyClass(n int) int {
	if n < minPooledBody || n > maxPooledBody {
		return -1
	}
	return bits.Len(uint(n-1)) - minPooledBodyLog
}

// lease returns a lease on a buffer of at least n bytes (length 0), or nil
// when n is not pooled. The caller holds the lease's first reference.
func (p *bodyPool) lease(n int) *bodyLease {
	i := bodyClass(n)
	if i < 0 {
		return nil
	}
	bp, _ := p.classes[i].Get().(*[]byte)
	if bp == nil {
		b := make([]byte, 0, 1<<(minPooledBodyLog+i))
		bp = &b
	}
	l := &bodyLease{pool: p, class: i, buf: bp}
	l.refs.Store(1)
	return l
}

// bodyLease counts who still reads a pooled request body: the request
// itself (until finish) and each reader an upstream transport was given
// (providers.BodyLease). The last Release puts the buffer back, unless the
// body went to a Provider that does not honour leases (pin).
type bodyLease struct {
	pool   *bodyPool
	class  int
	buf    *[]byte
	refs   atomic.Int32
	pinned atomic.Bool
}

var _ providers.BodyLease = (*bodyLease)(nil)

// Retain adds a reader.
func (l *bodyLease) Retain() { l.refs.Add(1) }

// Release ends a reader's use; the last one returns the buffer to the
// pool.
func (l *bodyLease) Release() {
	if l.refs.Add(-1) != 0 || l.pinned.Load() {
		return
	}
	*l.buf = (*l.buf)[:0]
	l.pool.classes[l.class].Put(l.buf)
}

// pin keeps the buffer out of the pool for good: it was handed to code
// that may read it at any time.
func (l *bodyLease) pin() { l.pinned.Store(true) }
