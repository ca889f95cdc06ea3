package redaction

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestPresets(t *testing.T) {
	for _, tc := range []struct {
		preset string
		in     string
		want   string
	}{
		// email
		{PresetEmail, "mail john.doe@example.com now", "mail [EMAIL] now"},
		{PresetEmail, "to: first.last+tag@sub.mail.example.co.uk.", "to: [EMAIL]."},
		{PresetEmail, "mailto:a_b%c@x-y.io>", "mailto:[EMAIL]>"},
		{PresetEmail, "<Jane@EXAMPLE.ORG>", "<[EMAIL]>"},
		{PresetEmail, "请联系john@x.com获取", "请联系[EMAIL]获取"},
		{PresetEmail, "user@localhost stays", "user@localhost stays"},
		{PresetEmail, "@handle and a@b and x@y.z", "@handle and a@b and x@y.z"},
		{PresetEmail, "no at sign here.com", "no at sign here.com"},

		// phone
		{PresetPhone, "call +1 (415) 555-2671 now", "call [PHONE] now"},
		{PresetPhone, "call 415-555-2671 or 415.555.2671", "call [PHONE] or [PHONE]"},
		{PresetPhone, "(415) 555-2671", "[PHONE]"},
		{PresetPhone, "1-800-555-0199", "[PHONE]"},
		{PresetPhone, "4155552671", "[PHONE]"},
		{PresetPhone, "UK +44 20 7946 0958.", "UK [PHONE]."},
		{PresetPhone, "DE +49 30 12345678", "DE [PHONE]"},
		{PresetPhone, "FR +33 1 23 45 67 89", "FR [PHONE]"},
		{PresetPhone, "IN +91-98765-43210", "IN [PHONE]"},
		{PresetPhone, "E.164 +14155552671", "E.164 [PHONE]"},
		{PresetPhone, "CH 0041 44 668 18 00", "CH [PHONE]"},
		{PresetPhone, "timestamp 1700000000 id 1234567890", "timestamp 1700000000 id 1234567890"},
		{PresetPhone, "date 2024-01-15 and 12:30", "date 2024-01-15 and 12:30"},
		{PresetPhone, "ip 192.168.100.1000", "ip 192.168.100.1000"},
		{PresetPhone, "order x4155552671", "order x4155552671"},
		{PresetPhone, "short +12 34", "short +12 34"},
		{PresetPhone, "too long +1 234 5678 9012 3456 7890", "too long [PHONE] 3456 7890"},

		// us_ssn
		{PresetUSSSN, "SSN 123-45-6789.", "SSN [SSN]."},
		{PresetUSSSN, "SSN 078 05 1120", "SSN [SSN]"},
		{PresetUSSSN, "area 000-12-3456 666-12-3456 900-12-3456 999-12-3456", "area 000-12-3456 666-12-3456 900-12-3456 999-12-3456"},
		{PresetUSSSN, "group 123-00-4567 serial 123-45-0000", "group 123-00-4567 serial 123-45-0000"},
		{PresetUSSSN, "longer 1123-45-67890 and 123456789", "longer 1123-45-67890 and 123456789"},
		{PresetUSSSN, "665-12-3456 and 667-12-3456", "[SSN] and [SSN]"},

		// payment_card
		{PresetPaymentCard, "visa 4111 1111 1111 1111 ok", "visa [CARD] ok"},
		{PresetPaymentCard, "visa 4111-1111-1111-1111", "visa [CARD]"},
		{PresetPaymentCard, "visa 4111111111111111", "visa [CARD]"},
		{PresetPaymentCard, "mc 5500 0000 0000 0004, amex 3782 822463 10005", "mc [CARD], amex [CARD]"},
		{PresetPaymentCard, "amex 378282246310005", "amex [CARD]"},
		{PresetPaymentCard, "luhn fails 4111 1111 1111 1112", "luhn fails 4111 1111 1111 1112"},
		{PresetPaymentCard, "order 1234567890123456", "order 1234567890123456"},
		{PresetPaymentCard, "digits 4 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1", "digits 4 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1"},
		{PresetPaymentCard, "too short 4111 1111 111", "too short 4111 1111 111"},
		{PresetPaymentCard, "card then year 4111 1111 1111 1111 2025", "card then year [CARD] 2025"},

		// ip_address
		{PresetIPAddress, "from 192.168.1.10 and 10.0.0.1.", "from [IP] and [IP]."},
		{PresetIPAddress, "255.255.255.255 but not 256.1.1.1", "[IP] but not 256.1.1.1"},
		{PresetIPAddress, "v6 2001:db8:85a3::8a2e:370:7334 end", "v6 [IP] end"},
		{PresetIPAddress, "v6 2001:0db8:0000:0000:0000:ff00:0042:8329", "v6 [IP]"},
		{PresetIPAddress, "loopback ::1, mapped ::ffff:192.0.2.128", "loopback [IP], mapped [IP]"},
		{PresetIPAddress, "link fe80::1%eth0", "link [IP]%eth0"},
		{PresetIPAddress, "trailing 2001:db8::1: colon", "trailing [IP]: colon"},
		{PresetIPAddress, "std::vector a::b Foo::Bar :: dead::beef", "std::vector a::b Foo::Bar :: dead::beef"},
		{PresetIPAddress, "time 12:30:45 mac 00:1A:2B:3C:4D:5E", "time 12:30:45 mac 00:1A:2B:3C:4D:5E"},

		// api_key
		{PresetAPIKey, "key sk-proj-Ab3dEfGhIjKlMnOpQrStUvWx end", "key [API_KEY] end"},
		{PresetAPIKey, "key sk-ant-api03-AbCdEf0123456789_-AbCdEf0123456789xyz", "key [API_KEY]"},
		{PresetAPIKey, "aws AKIAIOSFODNN7EXAMPLE", "aws [API_KEY]"},
		{PresetAPIKey, "gh ghp_0123456789abcdefghijklmnopqrstuvwxyz", "gh [API_KEY]"},
		{PresetAPIKey, "pat github_pat_11ABCDEFG0123456789_abcdefghijklmnop", "pat [API_KEY]"},
		{PresetAPIKey, "slack xoxb-1234567890-abcdefghij", "slack [API_KEY]"},
		{PresetAPIKey, "google AIzaSyA-1234567890abcdefghijklmnopqrstu", "google [API_KEY]"},
		{PresetAPIKey, "stripe sk_live_0123456789abcdefABCDEF", "stripe [API_KEY]"},
		{PresetAPIKey, "gitlab glpat-0123456789abcdefghij", "gitlab [API_KEY]"},
		{PresetAPIKey, "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.e30.ZRrHA1JJJW8opsbCGfG", "Authorization: Bearer [API_KEY]"},
		{PresetAPIKey, "bearer abcdefghijklmnop1234", "bearer [API_KEY]"},
		{PresetAPIKey, "task-management-system-design and sk-learn-is-a-python-library", "task-management-system-design and sk-learn-is-a-python-library"},
		{PresetAPIKey, "Bearer of bad news, the bearer tokenization-strategies", "Bearer of bad news, the bearer tokenization-strategies"},
		{PresetAPIKey, "short sk-abc123 AKIA123", "short sk-abc123 AKIA123"},
	} {
		t.Run(tc.preset+"/"+tc.in, func(t *testing.T) {
			r, err := Compile([]Rule{{Preset: tc.preset}})
			require.NoError(t, err)
			got, c := r.Text(tc.in)
			require.Equal(t, tc.want, got)
			if tc.want == tc.in {
				require.Nil(t, c)
			} else {
				require.Positive(t, c.Total())
			}
		})
	}
}

func TestLuhn(t *testing.T) {
	for _, tc := range []struct {
		digits string
		ok     bool
	}{
		{"4111111111111111", true},
		{"4111111111111112", false},
		{"5500000000000004", true},
		{"378282246310005", true},
		{"6011111111111117", true},
		{"3530111333300000", true},
		{"4222222222222", true},
		{"4111 1111 1111 1111", true},
		{"4111-1111-1111-1111", true},
		{"41 11111111111111", false}, // a group of 2
		{"411111111111", false},      // 12 digits
		{"41111111111111111111", false},
	} {
		t.Run(tc.digits, func(t *testing.T) {
			require.Equal(t, tc.ok, luhnGroups([]byte(tc.digits)))
		})
	}
}

func TestValidatorsCutToTheLongestValidPrefix(t *testing.T) {
	for _, tc := range []struct {
		name  string
		valid validator
		text  string
		want  string // the accepted match, "" for none
	}{
		{"card: 19 digits fail, 16 pass", validCard, "4111 1111 1111 1111 202", "4111 1111 1111 1111"},
		{"card: none passes", validCard, "4111 1111 1111 1112 202", ""},
		{"phone: 19 digits cut to 15", validPhone, "+10(000)0100 200000 0000", "+10(000)0100 200000"},
		{"phone: a cut inside a digit run is no cut", validPhone, "+4915112345678901234", ""},
		{"phone: glued to a word", validPhone, "x+14155552671", ""},
		{"ip: a trailing colon", validIP, "2001:db8::1:", "2001:db8::1"},
		{"ip: no digit", validIP, "dead::beef", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := 0
			if tc.text[0] == 'x' {
				start = 1
			}
			e := tc.valid([]byte(tc.text), start, len(tc.text))
			if tc.want == "" {
				require.Negative(t, e)
				return
			}
			require.Equal(t, tc.want, tc.text[start:e])
		})
	}
}

func TestPresetsListed(t *testing.T) {
	for _, name := range Presets() {
		p, ok := presetNamed(name)
		require.True(t, ok, name)
		require.NotEmpty(t, p.to)
	}
	_, ok := presetNamed("nope")
	require.False(t, ok)
}
