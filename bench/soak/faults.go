package main

import (
	"hash/fnv"
	"math/rand/v2"
)

// fault is what the fake upstream does to one upstream request.
type fault uint8

const (
	faultNone           fault = iota // a complete, well-formed answer
	faultSlow                        // JSON: headers delayed; stream: events spaced out (all within the timeouts)
	faultStatus5xx                   // 500, 502, 503 (529 for Anthropic) with an error body in the format's shape
	faultStatus429                   // 429 with Retry-After (seconds, fractional or whole)
	faultStatus401                   // 401: the key is refused
	faultHang                        // no answer at all, until the gateway gives up
	faultReset                       // TCP RST before any response byte
	faultTruncCL                     // JSON body cut short under the full Content-Length, connection dropped
	faultTruncShort                  // JSON body cut at a random byte, sent as a complete HTTP message
	faultWrongType                   // SSE to a JSON request, JSON to a streaming request
	faultDropBefore                  // stream: some of the preamble, then the connection dropped (or a clean end)
	faultStallBefore                 // stream: the preamble, then silence past the per-attempt timeout
	faultDropAfter                   // stream: content, then the connection dropped before the terminal event
	faultEOFAfter                    // stream: content, then a clean end without the terminal event
	faultStallAfter                  // stream: content, then silence past the stream idle timeout
	faultDropAfterEnd                // stream: every event including the terminal one, then the connection dropped
	faultErrEventBefore              // stream: some of the preamble, then the upstream's own error event
	faultErrEventAfter               // stream: content, then the upstream's own error event
	numFaults
)

var faultNames = [numFaults]string{
	faultNone:           "none",
	faultSlow:           "slow",
	faultStatus5xx:      "5xx",
	faultStatus429:      "429 + Retry-After",
	faultStatus401:      "401",
	faultHang:           "hang (no answer)",
	faultReset:          "connection reset",
	faultTruncCL:        "truncated JSON (conn dropped)",
	faultTruncShort:     "truncated JSON (short body)",
	faultWrongType:      "wrong content type",
	faultDropBefore:     "drop before content",
	faultStallBefore:    "stall before content",
	faultDropAfter:      "drop after content",
	faultEOFAfter:       "clean EOF after content",
	faultStallAfter:     "stall after content",
	faultDropAfterEnd:   "drop after terminal event",
	faultErrEventBefore: "error event before content",
	faultErrEventAfter:  "error event after content",
}

func (f fault) String() string {
	if f >= numFaults {
		return "fault(?)"
	}
	return faultNames[f]
}

// verdict is what a fault allows the gateway to do with the upstream
// response it affects.
type verdict uint8

const (
	// mayServe: the upstream's answer is complete; serving it is the only
	// right outcome once it was chosen.
	mayServe verdict = iota
	// mustFailInStream: the answer starts well and breaks after its first
	// content event; a stream it serves must end with an error event.
	mustFailInStream
	// mustNotServe: the answer is unusable; the gateway must fail over.
	mustNotServe
)

func (f fault) verdict() verdict {
	switch f {
	case faultNone, faultSlow, faultDropAfterEnd:
		return mayServe
	case faultDropAfter, faultEOFAfter, faultStallAfter, faultErrEventAfter:
		return mustFailInStream
	}
	return mustNotServe
}

// Relative weights of the faults, given that an upstream request gets one.
// JSON requests get the faults a JSON answer can have; streaming requests
// those a stream can have.
var (
	jsonFaultWeights = [numFaults]int{
		faultSlow: 12, faultStatus5xx: 14, faultStatus429: 8, faultStatus401: 2, faultHang: 5,
		faultReset: 10, faultTruncCL: 10, faultTruncShort: 10, faultWrongType: 6,
	}
	streamFaultWeights = [numFaults]int{
		faultSlow: 12, faultStatus5xx: 8, faultStatus429: 6, faultStatus401: 1, faultHang: 3,
		faultReset: 6, faultWrongType: 3, faultDropBefore: 10, faultStallBefore: 3,
		faultDropAfter: 12, faultEOFAfter: 8, faultStallAfter: 3, faultDropAfterEnd: 8,
		faultErrEventBefore: 4, faultErrEventAfter: 4,
	}
)

// pickFault draws the fault of one upstream request: none with probability
// 1-rate, else one by weight.
func pickFault(rng *rand.Rand, rate float64, stream bool, weights *faultWeights) fault {
	if rng.Float64() >= rate {
		return faultNone
	}
	w := &weights.json
	if stream {
		w = &weights.stream
	}
	total := 0
	for _, n := range w {
		total += n
	}
	if total == 0 {
		return faultNone
	}
	x := rng.IntN(total)
	for f, n := range w {
		if x < n {
			return fault(f)
		}
		x -= n
	}
	return faultNone
}

// faultWeights holds the relative weights of the faults for JSON and
// streaming requests.
type faultWeights struct {
	json, stream [numFaults]int
}

func defaultFaultWeights() faultWeights {
	return faultWeights{json: jsonFaultWeights, stream: streamFaultWeights}
}

// rngFor returns a generator determined by the seed and the parts: the same
// inputs always draw the same numbers.
func rngFor(seed uint64, parts ...string) *rand.Rand {
	h := fnv.New64a()
	for _, p := range parts {
		_, _ = h.Write([]byte(p))
		_, _ = h.Write([]byte{0})
	}
	return rand.New(rand.NewPCG(seed, h.Sum64()))
}
