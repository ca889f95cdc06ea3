package gateway

import (
	"cmp"
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"

	"github.com/llmgate/gateway/internal/strategy"
)

// Key balancing lives apart from selection.go: model selection decides
// which candidates a request has, key balancing only orders the keys of
// one provider when failover reaches it, and runs on every attempt.

// keyPolicy is a built-in way to order a provider's keys.
type keyPolicy uint8

const (
	keysOrdered       keyPolicy = iota // configured order
	keysRoundRobin                     // each request starts at the next key
	keysWeighted                       // weighted random order
	keysLeastInFlight                  // fewest attempts in flight first
	keysLeastLatency                   // lowest average latency first
	keysCEL                            // CEL key strategies
)

// keyPolicies maps the built-in names of WithKeySelection.
var keyPolicies = map[string]keyPolicy{
	"ordered":         keysOrdered,
	"round_robin":     keysRoundRobin,
	"weighted":        keysWeighted,
	"least_in_flight": keysLeastInFlight,
	"least_latency":   keysLeastLatency,
}

// keySelection is how one upstream orders its keys: a built-in policy or
// compiled CEL strategies.
type keySelection struct {
	policy keyPolicy
	prog   *strategy.Program // keysCEL only
}

// compileKeySelection turns WithKeySelection's arguments into a
// keySelection: one built-in name, or CEL strategies.
func compileKeySelection(exprs []string, o strategy.Options) (keySelection, error) {
	switch {
	case len(exprs) == 0:
		return keySelection{}, nil
	case len(exprs) == 1:
		if p, ok := keyPolicies[strings.ToLower(strings.TrimSpace(exprs[0]))]; ok {
			return keySelection{policy: p}, nil
		}
	}
	for i, e := range exprs {
		if _, ok := keyPolicies[strings.ToLower(strings.TrimSpace(e))]; ok {
			return keySelection{}, &OptionError{Field: "[" + strconv.Itoa(i) + "]",
				Err: errors.New("built-in key selection " + strconv.Quote(e) + " must be the only entry")}
		}
	}
	prog, err := strategy.Compile(strategy.Keys, exprs, o)
	if err != nil {
		return keySelection{}, err
	}
	return keySelection{policy: keysCEL, prog: prog}, nil
}

// orderKeys returns the keys of up in the order this request tries them.
// It allocates only when the order differs from the configured one.
func (c *call) orderKeys(up *upstream, model string) ([]*keyState, *Error) {
	keys := up.keys
	n := len(keys)
	if n < 2 {
		return keys, nil
	}
	switch up.keySel.policy {
	case keysOrdered:
		return keys, nil
	case keysCEL:
		return c.keyStrategies(up, model)
	case keysWeighted:
		return weightedOrder(keys), nil
	}
	// Round robin, and the rotation that breaks ties between equally
	// busy or equally fast keys, so they share the traffic.
	var pos uint64
	if c.explain {
		pos = up.rr.Load() // Explain shows the next request's order
	} else {
		pos = up.rr.Add(1) - 1
	}
	start := int(pos % uint64(n))
	out := make([]*keyState, 0, n)
	out = append(out, keys[start:]...)
	out = append(out, keys[:start]...)
	switch up.keySel.policy {
	case keysLeastInFlight:
		slices.SortStableFunc(out, func(a, b *keyState) int {
			return cmp.Compare(a.series.InFlight(), b.series.InFlight())
		})
	case keysLeastLatency:
		slices.SortStableFunc(out, func(a, b *keyState) int {
			return cmp.Compare(int64(a.series.Stats().Latency.UpstreamAvg), int64(b.series.Stats().Latency.UpstreamAvg))
		})
	}
	return out, nil
}

// weightedOrder draws a random order in which each key comes first with
// probability weight/total (Efraimidis–Spirakis: sort by -ln(u)/w).
func weightedOrder(keys []*keyState) []*keyState {
	type drawn struct {
		ks *keyState
		k  float64
	}
	ds := make([]drawn, len(keys))
	for i, ks := range keys {
		w := float64(max(ks.weight, 1))
		ds[i] = drawn{ks, -math.Log(1-rand.Float64()) / w}
	}
	slices.SortStableFunc(ds, func(a, b drawn) int { return cmp.Compare(a.k, b.k) })
	out := make([]*keyState, len(keys))
	for i := range ds {
		out[i] = ds[i].ks
	}
	return out
}

// keyStrategies evaluates the upstream's CEL key strategies: the first
// that yields at least one key wins, and only the keys it returns are
// tried, in its order. No key at all is an empty plan for this provider.
func (c *call) keyStrategies(up *upstream, model string) ([]*keyState, *Error) {
	prog := up.keySel.prog
	req := c.strategyRequest()
	vals := c.keyValues(up, model)
	for i := 0; i < prog.Len(); i++ {
		res, err := prog.EvalKeys(c.r.Context(), i, vals, req)
		if errors.Is(err, strategy.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, &Error{Kind: KindModelSelectionFailed, Err: err,
				Message: "api key selection of provider " + up.id + " failed: " + jsonSafe(truncate(err.Error(), 512))}
		}
		if len(res) == 0 {
			continue
		}
		out := make([]*keyState, 0, len(res))
		for _, k := range res {
			ks, _ := k.Ref.(*keyState)
			if ks != nil && !slices.Contains(out, ks) {
				out = append(out, ks)
			}
		}
		return out, nil
	}
	return nil, nil
}

// keyValues builds the CEL view of the upstream's keys for this request:
// their cooldowns are live.
func (c *call) keyValues(up *upstream, model string) []*strategy.Key {
	now := c.now()
	vals := make([]*strategy.Key, len(up.keys))
	for i, ks := range up.keys {
		vals[i] = &strategy.Key{
			ID:          ks.key.ID,
			Weight:      max(ks.weight, 1),
			CoolingDown: ks.remaining(model, now) > 0,
			Stats:       ks.series.Stats,
			InFlight:    ks.series.InFlight,
			Ref:         ks,
		}
	}
	return vals
}
