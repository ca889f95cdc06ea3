package redaction

import (
	"net/netip"
)

// The built-in presets, by name. Presets() lists them in the order a rule
// list should name them, the most specific first.
const (
	PresetAPIKey      = "api_key"
	PresetEmail       = "email"
	PresetPaymentCard = "payment_card"
	PresetUSSSN       = "us_ssn"
	PresetPhone       = "phone"
	PresetIPAddress   = "ip_address"
)

// Presets returns the names of the built-in presets, most specific first:
// a rule list that names several reads best in this order (at one
// position, the longest match wins whatever the order; the order breaks
// ties).
func Presets() []string {
	return []string{PresetAPIKey, PresetEmail, PresetPaymentCard, PresetUSSSN, PresetPhone, PresetIPAddress}
}

// validator checks a match text[start:end] of a preset's pattern and
// returns the end of the match it accepts — end, or less when only a
// prefix of it is valid — or -1 to reject it. It may read one byte on
// either side of the match, when there is one (start > 0, end <
// len(text)): a stream keeps exactly that much context.
type validator func(text []byte, start, end int) int

// accept turns a yes-or-no check into a validator.
func accept(ok bool, end int) int {
	if ok {
		return end
	}
	return -1
}

// preset is a built-in rule: a pattern, the marker it is replaced with, an
// optional check of each match, and the longest match a stream catches
// across chunks for patterns without a bound.
type preset struct {
	from     string
	to       string
	valid    validator
	maxMatch int
}

// presetNamed returns the preset called name.
func presetNamed(name string) (preset, bool) {
	switch name {
	case PresetEmail:
		// Local part and domain in ASCII, a dot-separated domain ending
		// in an alphabetic top-level label. The local part is not
		// anchored with \b: matching starts at the leftmost character
		// that may belong to it, so "mailto:a@b.io" loses only "a@b.io".
		return preset{
			from:     `[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,63}`,
			to:       "[EMAIL]",
			maxMatch: 320, // 64-byte local part, 253-byte domain
		}, true
	case PresetPhone:
		// North American numbers (with or without +1, area code in
		// parentheses or not), and international numbers that start
		// with + or 00 and a country code, in groups of 1–4 digits.
		return preset{
			from: `(?:\+|\b00)[1-9]\d{0,2}(?:[ .\-]?(?:\(\d{1,4}\)|\d{1,4})){2,6}` +
				`|(?:\+?\b1[ .\-]?)?(?:\([2-9]\d{2}\)[ .\-]?|\b[2-9]\d{2}[ .\-]?)\d{3}[ .\-]?\d{4}\b`,
			to:    "[PHONE]",
			valid: validPhone,
		}, true
	case PresetUSSSN:
		// AAA-GG-SSSS (or with spaces), without the numbers the SSA never
		// issues: area 000, 666 or 900–999, group 00, serial 0000.
		return preset{
			from: `\b(?:00[1-9]|0[1-9]\d|[1-578]\d{2}|6[0-57-9]\d|66[0-57-9])[\- ](?:0[1-9]|[1-9]\d)[\- ](?:000[1-9]|00[1-9]\d|0[1-9]\d{2}|[1-9]\d{3})\b`,
			to:   "[SSN]",
		}, true
	case PresetPaymentCard:
		// 13 to 19 digits, in groups of at least 3 split by single
		// spaces or dashes, starting 2–6 (the networks' ranges), and
		// Luhn-valid: a digit run that fails the check is left alone.
		return preset{
			from:  `\b[2-6](?:[ \-]?\d){12,18}\b`,
			to:    "[CARD]",
			valid: validCard,
		}, true
	case PresetIPAddress:
		// Dotted-quad IPv4 with octets up to 255, and IPv6 in any form
		// net/netip accepts (compressed, embedded IPv4), which checks
		// the shape the pattern only sketches.
		return preset{
			from: `\b(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\b` +
				`|[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}(?:\.\d{1,3}){0,3}`,
			to:    "[IP]",
			valid: validIP,
		}, true
	case PresetAPIKey:
		// Secrets by their issuers' shapes: OpenAI and Anthropic (sk-…),
		// Stripe, AWS access key IDs, GitHub, GitLab, Slack, Google API
		// keys, and the token after "Bearer", which is kept.
		return preset{
			from: `\b(?:sk-[A-Za-z0-9_\-]{20,}` +
				`|(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{16,}` +
				`|(?:AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}` +
				`|gh[pousr]_[A-Za-z0-9]{36,}` +
				`|github_pat_[A-Za-z0-9_]{22,}` +
				`|glpat-[A-Za-z0-9_\-]{20,}` +
				`|xox[abposr]-[A-Za-z0-9\-]{10,}` +
				`|AIza[A-Za-z0-9_\-]{35})` +
				`|(\b[Bb]earer[ \t]+)[A-Za-z0-9._~+/\-]{16,}=*`,
			to:       "${1}[API_KEY]",
			valid:    validKey,
			maxMatch: 2048, // long enough for JWTs
		}, true
	}
	return preset{}, false
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func isWord(c byte) bool {
	return isDigit(c) || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || c == '_'
}

// validPhone wants 7 to 15 digits (as E.164 allows), the match not part
// of a longer number or word, and a bare run of ten digits to look like a
// North American number (its exchange, the fourth digit, 2–9), so that
// timestamps and IDs do not count. A match with too many digits (the
// pattern takes every group it can) is cut after the last group, before a
// separator, that keeps it valid.
func validPhone(text []byte, start, end int) int {
	if start > 0 {
		if c := text[start-1]; isWord(c) || c == '+' {
			return -1
		}
	}
	best, n := -1, 0
	for i := start; i <= end; i++ {
		if i == end || text[i] == ' ' || text[i] == '.' || text[i] == '-' || text[i] == '(' {
			if 7 <= n && n <= 15 && (i < end || end == len(text) || !isWord(text[end])) {
				best = i
			}
		}
		if i < end && isDigit(text[i]) {
			n++
		}
	}
	if best == end && n == end-start && n == 10 && text[start+3] < '2' {
		return -1
	}
	return best
}

// validCard wants 13 to 19 digits in groups of at least 3 that pass the
// Luhn check. The pattern takes as many digits as it can: when they fail,
// the longest prefix that passes, ending before a separator, is the card.
func validCard(text []byte, start, end int) int {
	for e := end; e > start; e = lastSeparator(text, start, e) {
		if luhnGroups(text[start:e]) {
			return e
		}
	}
	return -1
}

// lastSeparator returns the position of the last non-digit in
// text[start:e], or start.
func lastSeparator(text []byte, start, e int) int {
	for e--; e > start && isDigit(text[e]); e-- {
	}
	return e
}

// luhnGroups applies the Luhn check to the 13 to 19 digits of m, whose
// groups (split by single non-digits) have at least 3 digits.
func luhnGroups(m []byte) bool {
	sum, n, group := 0, 0, 0
	for i := len(m) - 1; i >= 0; i-- {
		c := m[i]
		if !isDigit(c) {
			if group < 3 {
				return false
			}
			group = 0
			continue
		}
		d := int(c - '0')
		if n%2 == 1 {
			d *= 2
			if d > 9 {
				d -= 9
			}
		}
		sum += d
		n++
		group++
	}
	return group >= 3 && 13 <= n && n <= 19 && sum%10 == 0
}

// validIP accepts IPv4 matches as they are (the pattern is exact) and
// IPv6 candidates that net/netip parses, that hold a digit, and that are
// not part of a longer word (C++'s "std::vector" is not an address). A
// candidate that does not parse may end with one that does, ending before
// a ':' or '.'.
func validIP(text []byte, start, end int) int {
	colon, digit := false, false
	for _, c := range text[start:end] {
		colon = colon || c == ':'
		digit = digit || isDigit(c)
	}
	if !colon {
		return end
	}
	if !digit {
		return -1
	}
	if start > 0 {
		if c := text[start-1]; isWord(c) || c == ':' || c == '.' {
			return -1
		}
	}
	if end < len(text) {
		if c := text[end]; isWord(c) || c == ':' {
			return -1
		}
	}
	for e := end; e > start; e-- {
		if e < end && text[e] != ':' && text[e] != '.' {
			continue
		}
		if a, err := netip.ParseAddr(string(text[start:e])); err == nil && a.Is6() {
			return e
		}
	}
	return -1
}

// validKey wants a digit in the match, as every issued key has: it keeps
// hyphenated words and prose after "Bearer" from counting as secrets.
func validKey(text []byte, start, end int) int {
	for _, c := range text[start:end] {
		if isDigit(c) {
			return end
		}
	}
	return -1
}
