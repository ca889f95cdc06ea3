package gateway

import "context"

// Metering is where a request's cost is held and settled. Credits (step 6)
// fill these two seams; nothing else in the pipeline changes:
//
//   - admit runs after planning, before any upstream call: it applies the
//     request's limits and reserves the most the request may cost (prompt
//     price plus the maximum output price of the dearest candidate) against
//     the principal's balance, refusing with an error in the client's
//     dialect when it cannot.
//   - settle runs in finish on every path, exactly once: it charges what the
//     served candidate (call.served, with its catalog prices) reports in
//     call.usage, or releases the hold when nothing was served.

// admit applies the request's limits and holds its cost. Today no limit
// and no balance applies.
func (c *call) admit() *Error { return nil }

// settle charges or releases the request's hold. Today there is none.
func (c *call) settle(ctx context.Context) { _ = ctx }
