package config

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	gateway "github.com/llmgate/gateway"
	"github.com/llmgate/gateway/credits"
)

// nopLedger is a credits.Ledger for building gateways whose requests the
// tests never send: any call panics.
type nopLedger struct{ credits.Ledger }

const creditsConfig = `
store: sqlite:./llmgate.db
total_timeout: 5m
credits:
  enabled: true
  fee_percent: 2.5
  fee_per_million_tokens: 0.05
  min_output_tokens: 16
  default_max_output_tokens: 4096
  hold_ttl: 1h
  sweep_interval: 1m
  lease: {size: 2.50, flush_interval: 500ms, ttl: 5m, idle: 1m, min_balance: 4}
limits:
  max_input_tokens: 100000
  max_output_tokens: 8192
`

func TestParseCredits(t *testing.T) {
	f, err := Parse([]byte(creditsConfig), mapEnv(nil))
	require.NoError(t, err)
	require.Equal(t, Credits{
		Enabled:                true,
		FeePercent:             ptr(Percent(250)),
		FeePerMillionTokens:    ptr(Dollars(50_000)),
		MinOutputTokens:        ptr(16),
		DefaultMaxOutputTokens: ptr(4096),
		HoldTTL:                ptr(time.Hour),
		SweepInterval:          ptr(time.Minute),
		Lease: &Lease{Size: ptr(Dollars(2_500_000)), FlushInterval: ptr(500 * time.Millisecond), TTL: ptr(5 * time.Minute),
			Idle: ptr(time.Minute), MinBalance: ptr(4)},
	}, f.Credits)
	lo, on := f.LeasingOptions()
	require.True(t, on)
	require.Equal(t, credits.LeasingOptions{Size: 2_500_000, FlushInterval: 500 * time.Millisecond, TTL: 5 * time.Minute,
		Idle: time.Minute, MinBalance: 4}, lo)
	require.Equal(t, Limits{MaxInputTokens: ptr(100000), MaxOutputTokens: ptr(8192)}, f.Limits)
	require.Equal(t, gateway.MeteringOptions{
		Credits:                true,
		FeeBasisPoints:         250,
		FeePerMillionTokens:    50_000,
		MinOutputTokens:        16,
		DefaultMaxOutputTokens: 4096,
		HoldTTL:                time.Hour,
		SweepInterval:          time.Minute,
	}, f.MeteringOptions())

	// The file's options and the metering option the caller adds make a
	// gateway.
	require.NoError(t, f.Check(gateway.WithMetering(nopLedger{}, f.MeteringOptions())))
}

func TestMeteringOptionsDefaults(t *testing.T) {
	// A store without credits: usage records only, every default kept.
	f, err := Parse([]byte("store: sqlite:x.db\n"), mapEnv(nil))
	require.NoError(t, err)
	require.Equal(t, gateway.MeteringOptions{}, f.MeteringOptions())

	// sweep_interval: 0 is never, which the gateway writes as negative.
	f, err = Parse([]byte("store: sqlite:x.db\ncredits: {sweep_interval: 0s, fee_percent: 0}\n"), mapEnv(nil))
	require.NoError(t, err)
	o := f.MeteringOptions()
	require.False(t, o.Credits)
	require.Negative(t, o.SweepInterval)
	require.Zero(t, o.FeeBasisPoints)
	_, on := f.LeasingOptions()
	require.False(t, on, "no leases without credits")

	// With credits, leases are on unless turned off.
	f, err = Parse([]byte("store: sqlite:x.db\ncredits: {enabled: true}\n"), mapEnv(nil))
	require.NoError(t, err)
	lo, on := f.LeasingOptions()
	require.True(t, on)
	require.Equal(t, credits.LeasingOptions{}, lo)
	f, err = Parse([]byte("store: sqlite:x.db\ncredits: {enabled: true, lease: {enabled: false}}\n"), mapEnv(nil))
	require.NoError(t, err)
	_, on = f.LeasingOptions()
	require.False(t, on)
}

func TestPercent(t *testing.T) {
	for _, tt := range []struct {
		text string
		want Percent
		err  string
	}{
		{"2.5", 250, ""},
		{"2.50", 250, ""},
		{"0.1", 10, ""}, // 0.1 has no exact float
		{"0.29", 29, ""},
		{".5", 50, ""},
		{"7", 700, ""},
		{"1000", 100_000, ""},
		{"2.5%", 250, ""},
		{" 3 ", 300, ""},
		{"2.555", 0, "has more than two decimals"},
		{"-1", 0, "must not be negative"},
		{"1e2", 0, "is not a decimal number"},
		{"2.", 0, "is not a decimal number"},
		{"", 0, "is not a decimal number"},
		{"abc", 0, "is not a decimal number"},
		{"1.2.3", 0, "is not a decimal number"},
		{"12345678901", 0, "is too large"},
	} {
		t.Run(tt.text, func(t *testing.T) {
			var p Percent
			err := p.UnmarshalText([]byte(tt.text))
			if tt.err != "" {
				require.ErrorContains(t, err, tt.err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, p)
		})
	}
	for p, want := range map[Percent]string{250: "2.5", 1000: "10", 5: "0.05", 0: "0", 1: "0.01", 99_999: "999.99"} {
		require.Equal(t, want, p.String())
	}
}

func TestDollars(t *testing.T) {
	for _, tt := range []struct {
		text string
		want Dollars
		err  string
	}{
		{"0.05", 50_000, ""},
		{"$0.05", 50_000, ""},
		{"0.000001", 1, ""},
		{"999.999999", 999_999_999, ""},
		{"3", 3_000_000, ""},
		{"0.0000001", 0, "not a decimal number of dollars with at most six decimals"},
		{"-0.05", 0, "must not be negative"},
		{"$-1", 0, "must not be negative"},
		{"5e-2", 0, "not a decimal number"},
	} {
		t.Run(tt.text, func(t *testing.T) {
			var d Dollars
			err := d.UnmarshalText([]byte(tt.text))
			if tt.err != "" {
				require.ErrorContains(t, err, tt.err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, d)
		})
	}
	require.Equal(t, "0.05", Dollars(50_000).String())
}

// TestParseCreditsErrors places every problem of credits and limits.
func TestParseCreditsErrors(t *testing.T) {
	const store = "store: sqlite:x.db\n"
	tests := []struct {
		name string
		yaml string
		want string
	}{
		{"fee with three decimals", store + "credits:\n  fee_percent: 2.555", `credits.fee_percent: "2.555" has more than two decimals (the unit is a hundredth of a percent) (line 3)`},
		{"negative fee", store + "credits: {fee_percent: -1}", `credits.fee_percent: "-1" must not be negative (line 2)`},
		{"fee in exponent form", store + "credits: {fee_percent: 1e1}", `credits.fee_percent: "1e1" is not a decimal number of percent, such as 2.5 (line 2)`},
		{"fee too large", store + "credits:\n  enabled: true\n  fee_percent: 1000.01", `credits.fee_percent: 1000.01% is more than 1000% (line 4)`},
		{"fee a list", store + "credits: {fee_percent: [1]}", `credits.fee_percent: expected a scalar, got a list (line 2)`},
		{"per-million fee with seven decimals", store + "credits:\n  fee_per_million_tokens: 0.0000001", `credits.fee_per_million_tokens: "0.0000001" is not a decimal number of dollars with at most six decimals, such as 0.05 (line 3)`},
		{"negative per-million fee", store + "credits: {fee_per_million_tokens: -0.05}", `credits.fee_per_million_tokens: "-0.05" must not be negative (line 2)`},
		{"per-million fee too large", store + "credits: {fee_per_million_tokens: 1000.000001}", `credits.fee_per_million_tokens: $1000.000001 is more than $1000.00 (line 2)`},
		{"zero min output", store + "credits: {min_output_tokens: 0}", `credits.min_output_tokens: must be at least 1, got 0 (line 2)`},
		{"negative default max output", store + "credits:\n  default_max_output_tokens: -5", `credits.default_max_output_tokens: must be at least 1, got -5 (line 3)`},
		{"min above default max", store + "credits:\n  default_max_output_tokens: 10\n  min_output_tokens: 20", `credits.min_output_tokens: 20 is more than default_max_output_tokens (10) (line 4)`},
		{"zero hold ttl", store + "credits: {hold_ttl: 0s}", `credits.hold_ttl: 0s is outside 0 to 24h0m0s (line 2)`},
		{"long hold ttl", store + "credits: {hold_ttl: 25h}", `credits.hold_ttl: 25h0m0s is outside 0 to 24h0m0s (line 2)`},
		{"hold ttl below twice the total timeout", store + "total_timeout: 10m\ncredits:\n  hold_ttl: 15m", `credits.hold_ttl: 15m0s is less than twice total_timeout (10m0s): a hold must outlive the longest request (line 4)`},
		{"hold ttl below twice the default total timeout", store + "credits: {hold_ttl: 10m}", `credits.hold_ttl: 10m0s is less than twice total_timeout (6m0s)`},
		{"negative sweep interval", store + "credits: {sweep_interval: -1m}", `credits.sweep_interval: must not be negative (0 never sweeps), got -1m0s (line 2)`},
		{"bad duration", store + "credits: {sweep_interval: often}", `credits.sweep_interval: "often" is not a duration`},
		{"lease too small", store + "credits:\n  lease: {size: 0.001}", `credits.lease.size: $0.001 is outside $0.01 to $1000 (line 3)`},
		{"lease flush too fast", store + "credits:\n  lease: {flush_interval: 1ms}", `credits.lease.flush_interval: 1ms is outside 10ms to 1m (line 3)`},
		{"lease ttl below three flushes", store + "credits:\n  lease: {flush_interval: 10s, ttl: 20s}", `credits.lease.ttl: 20s is outside three flush intervals (30s) to 24h0m0s (line 3)`},
		{"lease idle below two flushes", store + "credits:\n  lease: {idle: 1s}", `credits.lease.idle: 1s is outside two flush intervals (2s) to 24h0m0s (line 3)`},
		{"lease min balance zero", store + "credits:\n  lease: {min_balance: 0}", `credits.lease.min_balance: must be at least 1, got 0 (line 3)`},
		{"lease unknown field", store + "credits:\n  lease: {flush: 1s}", `credits.lease.flush: unknown field; did you mean "flush_interval"? (line 3)`},
		{"unknown field", store + "credits: {enable: true}", `credits.enable: unknown field; did you mean "enabled"? (line 2)`},
		{"enabled not a boolean", store + "credits: {enabled: sometimes}", `credits.enabled: "sometimes" is not a boolean (true or false) (line 2)`},
		{"credits without store", "\ncredits:\n  enabled: true", `credits.enabled: needs a store to keep the credits: set store (sqlite:PATH or postgres://…) (line 3)`},
		{"credit fields without store", "credits: {fee_percent: 2}", `credits: needs a store to keep usage records: set store (sqlite:PATH or postgres://…) (line 1)`},
		{"negative max input", "limits:\n  max_input_tokens: -1", `limits.max_input_tokens: must not be negative (0 is no limit), got -1 (line 2)`},
		{"negative max output", "limits: {max_output_tokens: -8}", `limits.max_output_tokens: must not be negative (0 is no limit), got -8 (line 1)`},
		{"limits not a mapping", "limits: 5", `limits: expected a mapping, got a scalar (line 1)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { requireOneProblem(t, tt.yaml, tt.want) })
	}
}

func TestCreditsFromEnvironment(t *testing.T) {
	f, err := Parse([]byte("store: sqlite:x.db\ncredits: {fee_percent: '${env:FEE}', fee_per_million_tokens: '${env:PER_M}'}\n"),
		mapEnv(map[string]string{"FEE": "1.25", "PER_M": "0.5"}))
	require.NoError(t, err)
	require.Equal(t, Percent(125), *f.Credits.FeePercent)
	require.Equal(t, Dollars(500_000), *f.Credits.FeePerMillionTokens)

	// A faulty value from the environment is shown as its reference.
	_, err = Parse([]byte("store: sqlite:x.db\ncredits: {fee_percent: '${env:FEE}'}\n"), mapEnv(map[string]string{"FEE": "secret-ish"}))
	require.ErrorContains(t, err, `credits.fee_percent: "${env:FEE}" is not a decimal number of percent`)
	require.NotContains(t, err.Error(), "secret-ish")
}

// TestLimitsReachGateway shows that limits becomes gateway.WithTokenLimits:
// the gateway's own check of a File built in Go is placed at limits.
func TestLimitsReachGateway(t *testing.T) {
	f := &File{Limits: Limits{MaxInputTokens: ptr(-1)}}
	err := f.Check()
	var ce *Error
	require.ErrorAs(t, err, &ce)
	require.Len(t, ce.Problems, 1)
	require.Equal(t, "limits", ce.Problems[0].Path)
	var oe *gateway.OptionError
	require.ErrorAs(t, err, &oe)
	require.Equal(t, "WithTokenLimits", oe.Option)

	f, err = Parse([]byte("limits: {max_input_tokens: 100000, max_output_tokens: 0}\n"), mapEnv(nil))
	require.NoError(t, err)
	require.NoError(t, f.Check())
}

// TestExplainMetering places the gateway's problems with WithMetering at
// the credits fields they come from.
func TestExplainMetering(t *testing.T) {
	f, err := Parse([]byte(store1+"credits:\n  fee_percent: 1\n  fee_per_million_tokens: 0.01\n  hold_ttl: 1h\n"), mapEnv(nil))
	require.NoError(t, err)
	_, err = gateway.New(append(f.Options(), gateway.WithMetering(nopLedger{}, gateway.MeteringOptions{
		FeeBasisPoints: -1, FeePerMillionTokens: -1, HoldTTL: 48 * time.Hour, MinOutputTokens: -1,
	}))...)
	err = f.Explain(err)
	var ce *Error
	require.ErrorAs(t, err, &ce)
	got := map[string]int{}
	for _, p := range ce.Problems {
		got[p.Path] = p.Line
	}
	require.Equal(t, map[string]int{
		"credits.fee_percent":            3,
		"credits.fee_per_million_tokens": 4,
		"credits.hold_ttl":               5,
		"credits.min_output_tokens":      3, // not in the file: at credits (its mapping starts on line 3)
	}, got)
}

const store1 = "store: sqlite:x.db\n"
