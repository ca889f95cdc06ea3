package config

import (
	gateway "github.com/llmgate/gateway"
	"github.com/llmgate/gateway/redaction"
)

// Redaction is redaction: the find-and-replace rules applied to request
// bodies and to the answers clients receive (gateway.WithRedaction).
type Redaction struct {
	// Mode is across_chunks (the default: matches split across stream
	// events are caught) or per_chunk (each event on its own).
	Mode string `yaml:"mode"`
	// Rules are applied in one pass; at each point the leftmost, then
	// longest match wins, then the rule listed first.
	Rules []RedactionRule `yaml:"rules"`
}

// RedactionRule is one redaction.rules entry (redaction.Rule): a preset,
// or a pattern (from) and its replacement (to).
type RedactionRule struct {
	// Name identifies the rule in events; it defaults to the preset's
	// name, or "rule N".
	Name string `yaml:"name"`
	// Preset is a built-in pattern: email, phone, us_ssn, payment_card,
	// ip_address or api_key.
	Preset string `yaml:"preset"`
	// From is an RE2 pattern (Go's regexp syntax).
	From string `yaml:"from"`
	// To replaces each match ($1, ${name}); empty deletes it, or for a
	// preset writes its marker, such as [EMAIL].
	To string `yaml:"to"`
	// Delete removes a preset's matches.
	Delete bool `yaml:"delete"`
	// MaxMatch bounds, in bytes, the matches a stream catches across
	// events; 0 is the pattern's own bound or redaction.DefaultMaxMatch.
	MaxMatch int `yaml:"max_match"`
}

// redactionModes maps redaction.mode's values to the modes.
var redactionModes = map[string]redaction.Mode{
	"across_chunks": redaction.AcrossChunks,
	"per_chunk":     redaction.PerChunk,
}

// checkRedaction reports an unknown mode; the rules are gateway.New's to
// check.
func (d *decoder) checkRedaction(f *File) {
	if m := f.Redaction.Mode; m != "" {
		if _, ok := redactionModes[m]; !ok {
			d.failAt("redaction.mode", "%s is not one of across_chunks, per_chunk", d.show("redaction.mode", m))
		}
	}
}

// redactionOption returns the gateway.WithRedaction the file describes,
// or nil.
func (f *File) redactionOption() gateway.Option {
	r := &f.Redaction
	if len(r.Rules) == 0 || f.bad["redaction.mode"] || f.bad["redaction"] || f.bad["redaction.rules"] {
		return nil
	}
	rules := make([]redaction.Rule, len(r.Rules))
	for i, x := range r.Rules {
		rules[i] = redaction.Rule{Name: x.Name, Preset: x.Preset, From: x.From, To: x.To, Delete: x.Delete, MaxMatch: x.MaxMatch}
	}
	return gateway.WithRedaction(rules, redactionModes[r.Mode])
}
