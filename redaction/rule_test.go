package redaction

import (
	"errors"
	"regexp/syntax"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestCompileErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		rule Rule
		want error
	}{
		{"no pattern", Rule{}, ErrNoPattern},
		{"preset and from", Rule{Preset: PresetEmail, From: "x"}, ErrPresetAndFrom},
		{"unknown preset", Rule{Preset: "passport"}, ErrUnknownPreset},
		{"empty match", Rule{From: `a*`}, ErrEmptyMatch},
		{"only an assertion", Rule{From: `\b`}, ErrEmptyMatch},
		{"optional everything", Rule{From: `(?:ab)?`}, ErrEmptyMatch},
		{"delete and to", Rule{From: `x`, To: "y", Delete: true}, ErrDeleteAndTo},
		{"missing group", Rule{From: `(a)b`, To: "$2"}, ErrTemplate},
		{"the $1x trap", Rule{From: `(a)b`, To: "$1x"}, ErrTemplate},
		{"missing named group", Rule{From: `(?P<who>a)`, To: "${whom}"}, ErrTemplate},
		{"negative max match", Rule{From: `x`, MaxMatch: -1}, ErrMaxMatch},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Compile([]Rule{tc.rule})
			require.ErrorIs(t, err, tc.want)
			var re *RuleError
			require.ErrorAs(t, err, &re)
			require.Equal(t, 0, re.Index)
		})
	}
}

func TestCompileBadPattern(t *testing.T) {
	_, err := Compile([]Rule{{From: `a(b`}})
	var se *syntax.Error
	require.ErrorAs(t, err, &se)
	require.Contains(t, err.Error(), "rule 0 (rule 0)")
}

func TestCompileReportsEveryProblem(t *testing.T) {
	_, err := Compile([]Rule{
		{Name: "ok", From: `x`},
		{Name: "bad", From: `(`},
		{Preset: "nope"},
		{Name: "ok", From: `y`},
	})
	require.Error(t, err)
	var errs []*RuleError
	for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
		var re *RuleError
		require.True(t, errors.As(e, &re))
		errs = append(errs, re)
	}
	require.Len(t, errs, 3)
	require.Equal(t, 1, errs[0].Index)
	require.Equal(t, "bad", errs[0].Name)
	require.Equal(t, 2, errs[1].Index)
	require.Equal(t, "nope", errs[1].Name)
	require.ErrorIs(t, errs[1], ErrUnknownPreset)
	require.Equal(t, 3, errs[2].Index)
	require.ErrorIs(t, errs[2], ErrDuplicateName)
}

func TestCompileNamesAndTemplates(t *testing.T) {
	r, err := Compile([]Rule{
		{Preset: PresetEmail},
		{From: `(?P<user>\w+)@corp`, To: "${user}@[corp]"},
		{Name: "dollars", From: `USD`, To: "$$"},
		{From: `x(\d)`, To: "${1}x $ {1} ${nope-name}"}, // malformed references are text
		{Preset: PresetIPAddress, Delete: true},
		{Preset: PresetUSSSN, To: "<ssn>"},
	})
	require.NoError(t, err)
	require.Equal(t, []string{"email", "rule 1", "dollars", "rule 3", "ip_address", "us_ssn"}, r.Names())
	got, c := r.Text("jo@corp costs 5 USD; x7 at 10.0.0.1 or a@b.io; 123-45-6789")
	require.Equal(t, "jo@[corp] costs 5 $; 7x $ {1} ${nope-name} at  or [EMAIL]; <ssn>", got)
	require.Equal(t, Counts{1, 1, 1, 1, 1, 1}, c)
}

func TestCompileNoRules(t *testing.T) {
	r, err := Compile(nil)
	require.NoError(t, err)
	got, c := r.Text("a@b.io")
	require.Equal(t, "a@b.io", got)
	require.Nil(t, c)
	out, c, err := r.JSON([]byte(`{"a":"a@b.io"}`))
	require.NoError(t, err)
	require.Equal(t, `{"a":"a@b.io"}`, string(out))
	require.Nil(t, c)
	st := r.NewStream(AcrossChunks)
	require.Equal(t, "a@b", string(st.Feed([]byte("a@b"))))
	require.Empty(t, st.Flush())
}

func TestRuleWindow(t *testing.T) {
	for _, tc := range []struct {
		name string
		rule Rule
		want int
	}{
		{"bounded pattern", Rule{From: `ab{2,5}`}, 6},
		{"bounded pattern, smaller max match", Rule{From: `ab{2,5}`, MaxMatch: 3}, 3},
		{"bounded pattern, larger max match", Rule{From: `ab{2,5}`, MaxMatch: 30}, 6},
		{"unbounded pattern", Rule{From: `ab+`}, DefaultMaxMatch},
		{"unbounded pattern, max match", Rule{From: `ab+`, MaxMatch: 1000}, 1000},
		{"preset bound", Rule{Preset: PresetEmail}, 320},
		{"preset, max match", Rule{Preset: PresetEmail, MaxMatch: 100}, 100},
		{"fold case", Rule{From: `(?i)k`}, 3}, // K folds to the Kelvin sign, 3 bytes
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := Compile([]Rule{tc.rule})
			require.NoError(t, err)
			require.Equal(t, tc.want, r.rules[0].window)
		})
	}
}
