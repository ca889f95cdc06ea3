package gateway

import "time"

// KeyState is the cooldown state of one configured provider key at one
// moment, as [Gateway.KeyStates] reports it. It holds no secret. It is a
// plain value.
type KeyState struct {
	// Provider is the provider's ID as configured.
	Provider string
	// KeyID is the key's ID (ProviderKey.ID, or "key-<n>").
	KeyID string
	// CooldownUntil is when the whole key is usable again after the
	// upstream refused it (401, 402, 403) or rate limited the whole
	// account; the zero Time when it is not cooling down.
	CooldownUntil time.Time
	// CoolingModels is the number of models the key is skipped for after
	// rate limits that the provider counts per model (429), not counting
	// those whose cooldown has ended.
	CoolingModels int
}

// Cooling reports whether the key is skipped for at least one model.
func (s KeyState) Cooling() bool { return !s.CooldownUntil.IsZero() || s.CoolingModels > 0 }

// KeyStates returns the cooldown state of every configured provider key,
// now by the gateway's clock (WithClock), in the order of the providers
// (configured first, see Providers) and of their keys. Pass-through and
// attached keys are the clients' and have no state here. Metrics
// exporters read it; it takes each key's cooldown lock briefly and is
// safe for concurrent use.
func (g *Gateway) KeyStates() []KeyState {
	rt := g.routing.Load()
	now := rt.cfg.now()
	var out []KeyState
	for _, up := range rt.ordered {
		for _, ks := range up.keys {
			s := KeyState{Provider: up.id, KeyID: ks.key.ID}
			if c := ks.cool; c != nil {
				if u := c.until.Load(); u > now.UnixNano() {
					s.CooldownUntil = time.Unix(0, u)
				}
				s.CoolingModels = c.coolingModels(now.UnixNano())
			}
			out = append(out, s)
		}
	}
	return out
}

// coolingModels counts the models whose cooldown runs past now (UnixNano).
func (c *cooldown) coolingModels(now int64) int {
	if c.nModel.Load() == 0 {
		return 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, u := range c.models {
		if u > now {
			n++
		}
	}
	return n
}

// InFlight counts the requests the gateway is serving at one moment; see
// [Gateway.InFlight]. It is a plain value.
type InFlight struct {
	// Requests is every request between its arrival and the end of its
	// response, whatever its path.
	Requests int64
	// Streams is the API requests among them that asked for a stream
	// ("stream": true), from the moment their body was read.
	Streams int64
}

// InFlight returns how many requests, and streams among them, the gateway
// is serving now: what a graceful shutdown waits for, and what metrics
// exporters report. Two atomic loads; safe for concurrent use.
func (g *Gateway) InFlight() InFlight {
	return InFlight{Requests: g.inFlight.Load(), Streams: g.streams.Load()}
}
