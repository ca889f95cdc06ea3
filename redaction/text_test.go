package redaction

import (
	"strings"
	"testing"
	"unsafe"

	"github.com/stretchr/testify/require"
)

func TestTextReturnsInputWhenNothingMatches(t *testing.T) {
	r := allPresets(t)
	s := strings.Repeat("The quick brown fox jumps over the lazy dog. ", 20)
	got, c := r.Text(s)
	require.Nil(t, c)
	require.Equal(t, unsafe.StringData(s), unsafe.StringData(got))
	b := []byte(s)
	out, c := r.Bytes(b)
	require.Nil(t, c)
	require.Same(t, &b[0], &out[0])
	allocs := testing.AllocsPerRun(50, func() {
		r.Text(s)
		r.Bytes(b)
	})
	require.Zero(t, allocs)
}

func TestTextDFAFalsePositive(t *testing.T) {
	// The automaton ignores \b, so "xcat" may match; the regexp says no:
	// the text is returned as it was, with nil Counts.
	r, err := Compile([]Rule{{From: `\bcat`, To: "#"}})
	require.NoError(t, err)
	mask := r.fwd.mayMatch([]byte("xcat"))
	require.NotZero(t, mask)
	got, c := r.Text("xcat")
	require.Equal(t, "xcat", got)
	require.Nil(t, c)
}

func TestBytesDoesNotWriteInput(t *testing.T) {
	r := allPresets(t)
	in := []byte("mail a@b.io and c@d.io")
	keep := string(in)
	out, c := r.Bytes(in)
	require.Equal(t, "mail [EMAIL] and [EMAIL]", string(out))
	require.Equal(t, keep, string(in))
	require.Equal(t, 2, c.Total())
}

func TestTextLarge(t *testing.T) {
	// One match after a megabyte: the forward automaton finds the rule
	// that may match and the windowed search does not rescan the text.
	r := allPresets(t)
	s := strings.Repeat("word 12 ", 1<<17) + "john@example.com"
	got, c := r.Text(s)
	require.True(t, strings.HasSuffix(got, "word 12 [EMAIL]"))
	require.Equal(t, 1, c.Total())
}
