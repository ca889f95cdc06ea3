package jsonx

import (
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

// randomText returns n bytes drawn mostly from what makes string literals
// hard: quotes, backslashes, escape letters, control and non-ASCII bytes,
// in runs of plain text of random length.
func randomText(rng *rand.Rand, n int) []byte {
	specials := []byte("\"\\\\\\nntu/bfr0aF\x00\x1f\x01\x80\xc3\xa9\xff ")
	b := make([]byte, 0, n)
	for len(b) < n {
		if rng.IntN(3) == 0 {
			for range rng.IntN(40) {
				b = append(b, byte('a'+rng.IntN(26)))
			}
			continue
		}
		b = append(b, specials[rng.IntN(len(specials))])
	}
	return b[:n]
}

// refStr is the byte-at-a-time reading of the string literal at the start
// of d that Scanner.str must agree with: the literal's end or the offset
// of the problem, and the flags.
func refStr(d []byte) (end int, f StringFlags, ok bool) {
	if len(d) == 0 || d[0] != '"' {
		return 0, 0, false
	}
	for i := 1; i < len(d); {
		switch c := d[i]; {
		case c == '"':
			return i + 1, f, true
		case c < 0x20:
			return i, 0, false
		case c == '\\':
			f |= StrEscaped
			if i+1 >= len(d) {
				return i + 1, 0, false
			}
			switch e := d[i+1]; e {
			case '"', '\\', 'b', 'f', 'n', 'r', 't':
				i += 2
			case '/':
				f |= StrRecode
				i += 2
			case 'u':
				for j := i + 2; j < i+6; j++ {
					if j >= len(d) || !isHex(d[j]) {
						return j, 0, false
					}
				}
				f |= StrRecode
				i += 6
			default:
				return i + 1, 0, false
			}
		default:
			if c >= 0x80 {
				f |= StrNonASCII
			}
			i++
		}
	}
	return len(d), 0, false
}

// TestReadStringMatchesReference reads random literals of up to 300
// bytes, most of them long enough for scanPlain, and compares the end,
// the error offset and the flags with refStr.
func TestReadStringMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	for n := range 20000 {
		d := append([]byte{'"'}, randomText(rng, rng.IntN(300))...)
		if n%2 == 0 {
			// Mostly valid: escapes made whole, no controls, a closing quote.
			for i := 1; i < len(d); i++ {
				switch {
				case d[i] < 0x20:
					d[i] = 'x'
				case d[i] == '"':
					d[i] = '\''
				case d[i] == '\\':
					if i+1 < len(d) && escapes[d[i+1]] == escSimple {
						i++
					} else {
						d[i] = '/'
					}
				}
			}
			d = append(d, '"', ',')
		}
		end, f, ok := refStr(d)
		s := Scanner{Data: d}
		lit, gf, gok := s.ReadString()
		require.Equal(t, ok, gok, "%q", d)
		if ok {
			require.Equal(t, d[:end], lit, "%q", d)
			require.Equal(t, f, gf, "%q", d)
		}
		require.Equal(t, end, s.Pos, "%q", d)
	}
}

// TestScanPlain checks what scanPlain passes from random offsets: only
// plain bytes and simple escapes, with their flags, and that it stops
// only where it must (a quote, a control byte, another escape) or where
// fewer than 16 bytes are left.
func TestScanPlain(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 5))
	for range 20000 {
		d := randomText(rng, rng.IntN(200))
		i := 0
		if len(d) > 0 {
			i = rng.IntN(len(d) + 1)
		}
		j, f := scanPlain(d, i)
		if !plainFast {
			require.Equal(t, i, j)
			require.Zero(t, f)
			continue
		}
		require.GreaterOrEqual(t, j, i)
		require.LessOrEqual(t, j, len(d))
		var want StringFlags
		for k := i; k < j; {
			switch c := d[k]; {
			case c == '\\':
				require.Less(t, k+1, j, "%q from %d passed half an escape", d, i)
				require.Equal(t, uint8(escSimple), escapes[d[k+1]], "%q from %d passed %q", d, i, d[k:k+2])
				want |= StrEscaped
				k += 2
			case c == '"' || c < 0x20:
				t.Fatalf("%q from %d passed %q at %d", d, i, c, k)
			default:
				if c >= 0x80 {
					want |= StrNonASCII
				}
				k++
			}
		}
		require.Equal(t, want, f, "%q from %d to %d", d, i, j)
		if j+16 <= len(d) {
			c := d[j]
			stop := c == '"' || c < 0x20 || c == '\\' && (j+1 >= len(d) || escapes[d[j+1]] != escSimple)
			require.True(t, stop, "%q from %d stopped at %d before %q", d, i, j, c)
		}
	}
}
