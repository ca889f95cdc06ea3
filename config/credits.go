package config

import (
	"errors"
	"strconv"
	"strings"
	"time"

	gateway "github.com/llmgate/gateway"
	"github.com/llmgate/gateway/credits"
)

// Credits is credits: usage records and prepaid credits
// (gateway.WithMetering). The file's store keeps both, so every field
// needs a store; with a store, every request leaves a usage record, and
// with Enabled requests also pay with credits. A nil field keeps the
// gateway's default.
type Credits struct {
	// Enabled makes requests served with the operator's provider keys pay
	// with their account's credits (gateway.MeteringOptions.Credits).
	Enabled bool `yaml:"enabled"`
	// FeePercent is the processing fee as a share of the model cost, an
	// exact decimal with at most two decimals, 0 to 1000.
	FeePercent *Percent `yaml:"fee_percent"`
	// FeePerMillionTokens is the processing fee per million tokens, in
	// dollars with at most six decimals (0.05 is five cents), $0 to
	// $1000.
	FeePerMillionTokens *Dollars `yaml:"fee_per_million_tokens"`
	// MinOutputTokens is the smallest answer worth sending upstream (at
	// least 1; default 16).
	MinOutputTokens *int `yaml:"min_output_tokens"`
	// DefaultMaxOutputTokens bounds the answer of a credit-paid request
	// that names no maximum, for a model without one (at least 1; default
	// 4096).
	DefaultMaxOutputTokens *int `yaml:"default_max_output_tokens"`
	// HoldTTL is how long a hold outlives a gateway that crashed before
	// ending it: more than 0, at most 24h, at least twice total_timeout
	// (default 1h).
	HoldTTL *time.Duration `yaml:"hold_ttl"`
	// SweepInterval is how often this gateway releases expired holds and
	// expires lots; 0 never (another replica sweeps). Default 1m.
	SweepInterval *time.Duration `yaml:"sweep_interval"`
	// Lease is how this replica holds credits for requests: in memory
	// from leases of its accounts' credits (credits.Leasing), unless
	// lease.enabled is false.
	Lease *Lease `yaml:"lease"`
}

// Lease is credits.lease: the credits.LeasingOptions of a gateway whose
// requests pay with credits. On by default: each replica leases a slice of
// an account's credits (size) from the store and holds its requests' worst
// cases in memory, writing spends and usage records back every
// flush_interval; a crash loses at most what was spent since the last
// flush, never more than the account had. A nil field keeps the default.
type Lease struct {
	// Enabled turns leasing off when false (every request then holds,
	// settles and records in the store). Default true.
	Enabled *bool `yaml:"enabled"`
	// Size is what a lease holds ($0.01 to $1000; default 1.00).
	Size *Dollars `yaml:"size"`
	// FlushInterval is how often spends and usage records are written
	// back (10ms to 1m; default 1s).
	FlushInterval *time.Duration `yaml:"flush_interval"`
	// TTL is how long a lease outlives a crashed replica before a sweep
	// gives it back (at least three flush intervals, at most 24h;
	// default 2m).
	TTL *time.Duration `yaml:"ttl"`
	// Idle is how long an unused lease is kept (at least two flush
	// intervals, at most 24h; default 30s).
	Idle *time.Duration `yaml:"idle"`
	// MinBalance: accounts with less than this many leases' worth
	// available hold each request in the store (at least 1; default 10).
	MinBalance *int `yaml:"min_balance"`
}

// Limits is limits: bounds on every request's tokens
// (gateway.WithTokenLimits). A nil or zero field sets no limit.
type Limits struct {
	// MaxInputTokens refuses longer prompts with 413 input_too_large.
	MaxInputTokens *int `yaml:"max_input_tokens"`
	// MaxOutputTokens lowers (or sets) every request's maximum output
	// tokens.
	MaxOutputTokens *int `yaml:"max_output_tokens"`
}

// Bounds of the credits fields.
const (
	// MaxFeePercent bounds credits.fee_percent: 1000%.
	MaxFeePercent = 1000
	// MaxFeePerMillionTokens bounds credits.fee_per_million_tokens:
	// $1000.
	MaxFeePerMillionTokens = 1000 * credits.Dollar
)

// Percent is a percentage with at most two decimals, held in basis points
// (hundredths of a percent): 2.5% is Percent(250). The file writes it as a
// decimal number ("2.5", "2.50" or "2.5%"); it is parsed from the text as
// written, never through a float.
type Percent int64

// UnmarshalText parses a non-negative decimal percentage with at most two
// decimals and an optional "%".
func (p *Percent) UnmarshalText(b []byte) error {
	s := strings.TrimSuffix(strings.TrimSpace(string(b)), "%")
	if strings.HasPrefix(s, "-") {
		return errors.New("must not be negative")
	}
	whole, frac, dot := strings.Cut(s, ".")
	switch {
	case whole == "" && frac == "", dot && frac == "", !digits(whole), !digits(frac):
		return errors.New("is not a decimal number of percent, such as 2.5")
	case len(frac) > 2:
		return errors.New("has more than two decimals (the unit is a hundredth of a percent)")
	case len(whole) > 9:
		return errors.New("is too large")
	}
	var n int64
	if whole != "" {
		n, _ = strconv.ParseInt(whole, 10, 64)
	}
	f, _ := strconv.ParseInt((frac + "00")[:2], 10, 64)
	*p = Percent(n*100 + f)
	return nil
}

// String formats p as a decimal percentage without a "%": "2.5", "10",
// "0.05".
func (p Percent) String() string {
	s := strconv.FormatInt(int64(p)/100, 10)
	if f := int64(p) % 100; f != 0 {
		s += "." + strings.TrimSuffix(strconv.FormatInt(100+f, 10)[1:], "0")
	}
	return s
}

// Dollars is an amount of US dollars, held as a credits.Amount
// (micro-USD). The file writes it as a decimal number with at most six
// decimals ("0.05", "$0.05"), parsed with credits.ParseAmount from the
// text as written, never through a float.
type Dollars credits.Amount

// UnmarshalText parses a non-negative decimal number of dollars.
func (d *Dollars) UnmarshalText(b []byte) error {
	s := strings.TrimSpace(string(b))
	if strings.HasPrefix(s, "-") || strings.HasPrefix(s, "$-") {
		return errors.New("must not be negative")
	}
	a, err := credits.ParseAmount(s)
	if err != nil {
		return errors.New("is not a decimal number of dollars with at most six decimals, such as 0.05")
	}
	*d = Dollars(a)
	return nil
}

// String formats d as dollars: "0.05".
func (d Dollars) String() string { return credits.Amount(d).String() }

func digits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// checkCredits applies the rules of credits and limits. credits is not an
// option of File.Options (the caller opens the store, see
// MeteringOptions), so its rules are the file's own.
func (d *decoder) checkCredits(f *File) {
	c := f.Credits
	if c.FeePercent != nil && *c.FeePercent > MaxFeePercent*100 && !d.bad["credits.fee_percent"] {
		d.failAt("credits.fee_percent", "%s%% is more than %d%%", c.FeePercent, MaxFeePercent)
	}
	if c.FeePerMillionTokens != nil && credits.Amount(*c.FeePerMillionTokens) > MaxFeePerMillionTokens && !d.bad["credits.fee_per_million_tokens"] {
		d.failAt("credits.fee_per_million_tokens", "$%s is more than $%s", c.FeePerMillionTokens, MaxFeePerMillionTokens)
	}
	for _, field := range []struct {
		path string
		v    *int
	}{{"credits.min_output_tokens", c.MinOutputTokens}, {"credits.default_max_output_tokens", c.DefaultMaxOutputTokens}} {
		if field.v != nil && *field.v < 1 {
			d.failAt(field.path, "must be at least 1, got %d", *field.v)
		}
	}
	if c.MinOutputTokens != nil && c.DefaultMaxOutputTokens != nil && *c.MinOutputTokens > *c.DefaultMaxOutputTokens &&
		*c.DefaultMaxOutputTokens >= 1 {
		d.failAt("credits.min_output_tokens", "%d is more than default_max_output_tokens (%d)", *c.MinOutputTokens, *c.DefaultMaxOutputTokens)
	}
	if c.HoldTTL != nil {
		total := or(f.TotalTimeout, gateway.DefaultTotalTimeout)
		switch ttl := *c.HoldTTL; {
		case ttl <= 0 || ttl > credits.MaxHoldTTL:
			d.failAt("credits.hold_ttl", "%v is outside 0 to %v", ttl, credits.MaxHoldTTL)
		case ttl < 2*total && !d.bad["total_timeout"]:
			d.failAt("credits.hold_ttl", "%v is less than twice total_timeout (%v): a hold must outlive the longest request", ttl, total)
		}
	}
	if c.SweepInterval != nil && *c.SweepInterval < 0 {
		d.failAt("credits.sweep_interval", "must not be negative (0 never sweeps), got %v", *c.SweepInterval)
	}
	if l := c.Lease; l != nil {
		d.checkLease(l)
	}
	for _, field := range []struct {
		path string
		v    *int
	}{{"limits.max_input_tokens", f.Limits.MaxInputTokens}, {"limits.max_output_tokens", f.Limits.MaxOutputTokens}} {
		if field.v != nil && *field.v < 0 {
			d.failAt(field.path, "must not be negative (0 is no limit), got %d", *field.v)
		}
	}
	if f.Store != "" || d.bad["store"] {
		return
	}
	switch {
	case c.Enabled:
		d.failAt("credits.enabled", "needs a store to keep the credits: set store (sqlite:PATH or postgres://…)")
	case c != (Credits{}):
		d.failAt("credits", "needs a store to keep usage records: set store (sqlite:PATH or postgres://…)")
	}
}

// checkLease applies the rules of credits.lease.
func (d *decoder) checkLease(l *Lease) {
	if l.Size != nil && !d.bad["credits.lease.size"] && (*l.Size < Dollars(credits.Cent) || *l.Size > Dollars(1000*credits.Dollar)) {
		d.failAt("credits.lease.size", "$%s is outside $0.01 to $1000", l.Size)
	}
	flush := credits.DefaultLeaseFlushInterval
	if l.FlushInterval != nil {
		if flush = *l.FlushInterval; flush < 10*time.Millisecond || flush > time.Minute {
			d.failAt("credits.lease.flush_interval", "%v is outside 10ms to 1m", flush)
		}
	}
	if l.TTL != nil && (*l.TTL < 3*flush || *l.TTL > credits.MaxHoldTTL) {
		d.failAt("credits.lease.ttl", "%v is outside three flush intervals (%v) to %v", *l.TTL, 3*flush, credits.MaxHoldTTL)
	}
	if l.Idle != nil && (*l.Idle < 2*flush || *l.Idle > credits.MaxHoldTTL) {
		d.failAt("credits.lease.idle", "%v is outside two flush intervals (%v) to %v", *l.Idle, 2*flush, credits.MaxHoldTTL)
	}
	if l.MinBalance != nil && *l.MinBalance < 1 {
		d.failAt("credits.lease.min_balance", "must be at least 1, got %d", *l.MinBalance)
	}
}

// LeasingOptions returns the credits.LeasingOptions of credits.lease, and
// whether requests paid with credits hold from leases: credits.enabled and
// lease.enabled not false. The store to lease from is the caller's (see
// MeteringOptions).
func (f *File) LeasingOptions() (credits.LeasingOptions, bool) {
	c := f.Credits
	var o credits.LeasingOptions
	l := c.Lease
	if l == nil {
		return o, c.Enabled
	}
	if l.Size != nil {
		o.Size = credits.Amount(*l.Size)
	}
	if l.FlushInterval != nil {
		o.FlushInterval = *l.FlushInterval
	}
	if l.TTL != nil {
		o.TTL = *l.TTL
	}
	if l.Idle != nil {
		o.Idle = *l.Idle
	}
	if l.MinBalance != nil {
		o.MinBalance = *l.MinBalance
	}
	return o, c.Enabled && (l.Enabled == nil || *l.Enabled)
}

// MeteringOptions returns the gateway.MeteringOptions that credits sets
// for gateway.WithMetering: Credits when credits.enabled, the fees, token
// bounds, hold TTL and sweep interval (0 for the gateway's default when a
// field is not set; sweep_interval: 0 becomes a negative interval, never).
// The ledger is the caller's to open: the file's store (see StoreDSN),
// which keeps usage records whenever it is configured, whether credits
// are enabled or not.
func (f *File) MeteringOptions() gateway.MeteringOptions {
	c := f.Credits
	o := gateway.MeteringOptions{Credits: c.Enabled}
	if c.FeePercent != nil {
		o.FeeBasisPoints = int64(*c.FeePercent)
	}
	if c.FeePerMillionTokens != nil {
		o.FeePerMillionTokens = credits.Amount(*c.FeePerMillionTokens)
	}
	if c.MinOutputTokens != nil {
		o.MinOutputTokens = *c.MinOutputTokens
	}
	if c.DefaultMaxOutputTokens != nil {
		o.DefaultMaxOutputTokens = *c.DefaultMaxOutputTokens
	}
	if c.HoldTTL != nil {
		o.HoldTTL = *c.HoldTTL
	}
	if c.SweepInterval != nil {
		o.SweepInterval = *c.SweepInterval
		if o.SweepInterval == 0 {
			o.SweepInterval = -1
		}
	}
	return o
}
