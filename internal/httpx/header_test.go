package httpx

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestValidHeaderValue(t *testing.T) {
	for _, v := range []string{"", "application/json", "a b\tc", "Bearer sk-123", "ünïcode", "~!@#$%^&*()"} {
		require.True(t, ValidHeaderValue(v), "%q", v)
	}
	for _, v := range []string{"a\rb", "a\nb", "a\x00b", "\x7f", "x\r\nInjected: 1", "\x1f"} {
		require.False(t, ValidHeaderValue(v), "%q", v)
	}
}

func TestValidHeaderName(t *testing.T) {
	for _, n := range []string{"X-Api-Key", "api-key", "a", "A1!#$%&'*+-.^_`|~"} {
		require.True(t, ValidHeaderName(n), "%q", n)
	}
	for _, n := range []string{"", "api key", "a:b", "a\nb", "ä", "(x)", "a/b", "a@b"} {
		require.False(t, ValidHeaderName(n), "%q", n)
	}
}

func TestValidValues(t *testing.T) {
	require.Empty(t, ValidValues(nil))
	require.Empty(t, ValidValues([]string{"a\nb"}))
	require.Equal(t, []string{"a", "c"}, ValidValues([]string{"a", "b\r\n", "c"}))
	require.Equal(t, []string{"c"}, ValidValues([]string{"\x00", "c"}))

	t.Run("all valid: shared, clipped", func(t *testing.T) {
		vs := make([]string, 2, 8)
		vs[0], vs[1] = "a", "b"
		got := ValidValues(vs)
		require.Equal(t, []string{"a", "b"}, got)
		require.Same(t, &vs[0], &got[0], "not copied")
		require.Equal(t, len(got), cap(got))
		got = append(got, "c")
		require.Equal(t, []string{"a", "b"}, vs, "appending to the result wrote into vs")
		require.Equal(t, "", vs[:3][2])
	})
	t.Run("some invalid: a copy", func(t *testing.T) {
		vs := []string{"a", "\n", "b"}
		got := ValidValues(vs)
		got[0] = "x"
		require.Equal(t, []string{"a", "\n", "b"}, vs)
	})
}

func TestReserved(t *testing.T) {
	for _, n := range []string{"Content-Type", "Content-Length", "Accept", "User-Agent", "Host", "Connection", "Keep-Alive",
		"Proxy-Connection", "Transfer-Encoding", "Te", "Trailer", "Upgrade"} {
		require.True(t, Reserved(n), n)
	}
	for _, n := range []string{"Authorization", "X-Api-Key", "Anthropic-Version", "X-Title", "content-type"} {
		require.False(t, Reserved(n), n)
	}
}

func TestConfigHeader(t *testing.T) {
	var problems []string
	fail := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	refuse := func(canon string) string {
		if canon == "X-Refused" {
			return "header X-Refused is refused"
		}
		return ""
	}
	in := http.Header{
		"x-extra":      {"a", "b\nc", "d"},
		"Content-Type": {"text/plain"},
		"bad name":     {"v"},
		"x-refused":    {"v"},
		"host":         {"h"},
		"X-Ok":         {"ok"},
		"Empty":        {},
	}
	got := ConfigHeader(in, refuse, fail)
	require.Equal(t, http.Header{"X-Extra": {"a", "d"}, "X-Ok": {"ok"}}, got)
	require.Equal(t, []string{
		`header "Content-Type" is managed by the provider and cannot be set`,
		`header name "bad name" is not a valid token`,
		`header "Host" is managed by the provider and cannot be set`,
		`header "X-Extra" has a value with control characters`,
		"header X-Refused is refused",
	}, problems)
	for k, vs := range got {
		require.Equal(t, len(vs), cap(vs), k)
	}
	got["X-Ok"][0] = "mutated"
	require.Equal(t, []string{"ok"}, in["X-Ok"], "the input is retained")

	problems = nil
	require.Equal(t, http.Header{"X-Refused": {"v"}}, ConfigHeader(http.Header{"x-refused": {"v"}}, nil, fail))
	require.Empty(t, problems)
	require.Equal(t, http.Header{}, ConfigHeader(nil, nil, fail))
}

func TestSetStandard(t *testing.T) {
	ua := []string{"ua/1"}
	for _, stream := range []bool{false, true} {
		h := http.Header{"Content-Type": {"text/plain"}, "X-Other": {"kept"}}
		SetStandard(h, stream, ua)
		accept := "application/json"
		if stream {
			accept = "text/event-stream"
		}
		require.Equal(t, http.Header{
			"Content-Type": {"application/json"},
			"Accept":       {accept},
			"User-Agent":   {"ua/1"},
			"X-Other":      {"kept"},
		}, h)
		require.Same(t, &ua[0], &h["User-Agent"][0], "the user agent is not copied")
		for k, vs := range h {
			require.Equal(t, len(vs), cap(vs), "%s: appending must copy", k)
		}
		h.Add("Accept", "*/*")
		require.Equal(t, []string{accept, "*/*"}, h["Accept"])
	}
	h := http.Header{}
	SetStandard(h, false, ua)
	require.Equal(t, []string{"application/json"}, h["Accept"], "the shared values are intact")
	require.Equal(t, []string{"application/json"}, h["Content-Type"])
}

func TestSetKey(t *testing.T) {
	tests := []struct {
		name, header, secret string
		want                 http.Header
	}{
		{"bearer", "Authorization", "sk-1", http.Header{"Authorization": {"Bearer sk-1"}}},
		{"raw", "X-Api-Key", "sk-1", http.Header{"X-Api-Key": {"sk-1"}, "Authorization": {"Basic configured"}}},
		{"raw replaces", "Api-Key", "sk-1", http.Header{"Api-Key": {"sk-1"}, "Authorization": {"Basic configured"}}},
		{"empty secret keeps configured", "Authorization", "", http.Header{"Authorization": {"Basic configured"}}},
		{"empty secret sets nothing", "X-Api-Key", "", http.Header{"Authorization": {"Basic configured"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{"Authorization": {"Basic configured"}}
			if tt.header == "Api-Key" {
				h["Api-Key"] = []string{"old"}
			}
			SetKey(h, tt.header, tt.secret)
			require.Equal(t, tt.want, h)
		})
	}
}

func TestAuthHeader(t *testing.T) {
	managed := func(canon string) bool { return canon == "Anthropic-Beta" }
	tests := []struct {
		configured string
		managed    func(string) bool
		want       string
		problem    string
	}{
		{"", nil, "X-Default", ""},
		{"", managed, "X-Default", ""},
		{"authorization", nil, "Authorization", ""},
		{"api-key", managed, "Api-Key", ""},
		{"api key", nil, "api key", `auth header "api key" is not a valid header name`},
		{"content-type", nil, "Content-Type", `auth header "Content-Type" is managed by the provider`},
		{"anthropic-beta", managed, "Anthropic-Beta", `auth header "Anthropic-Beta" is managed by the provider`},
		{"anthropic-beta", nil, "Anthropic-Beta", ""},
	}
	for _, tt := range tests {
		t.Run(tt.configured, func(t *testing.T) {
			var problems []string
			fail := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
			require.Equal(t, tt.want, AuthHeader(tt.configured, "X-Default", tt.managed, fail))
			if tt.problem == "" {
				require.Empty(t, problems)
			} else {
				require.Equal(t, []string{tt.problem}, problems)
			}
		})
	}
}

func TestUserAgent(t *testing.T) {
	var problems []string
	fail := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	require.Equal(t, []string{"def"}, UserAgent("", "def", fail))
	require.Equal(t, []string{"app/1.0 (x)"}, UserAgent("app/1.0 (x)", "def", fail))
	require.Empty(t, problems)
	UserAgent("a\r\nb", "def", fail)
	require.Equal(t, []string{"user agent has control characters"}, problems)
}

func TestSetExtra(t *testing.T) {
	shared := []string{"v1"}
	h := http.Header{"X-Config": {"config"}, "X-Keep": {"kept"}, "Anthropic-Beta": {"b0"}}
	SetExtra(h, http.Header{
		"X-Config":       shared,
		"x-lower":        {"canonicalised"},
		"Content-Type":   {"text/plain"},
		"Bad Name":       {"x"},
		"X-Bad-Value":    {"a\r\nInjected: 1"},
		"X-Mixed":        {"ok", "bad\n"},
		"Anthropic-Beta": {"b1"},
	}, "Anthropic-Beta")
	require.Equal(t, http.Header{
		"X-Config":       {"v1"},
		"X-Lower":        {"canonicalised"},
		"X-Keep":         {"kept"},
		"X-Mixed":        {"ok"},
		"Anthropic-Beta": {"b0"},
	}, h)
	require.Same(t, &shared[0], &h["X-Config"][0], "valid values are shared, not copied")
	SetExtra(h, nil, "")
	require.Len(t, h, 5)
}
