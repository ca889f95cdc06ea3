package httpx

import (
	"fmt"
	"net/url"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParseBaseURL(t *testing.T) {
	tests := []struct {
		raw     string
		wantErr string // "" = valid
	}{
		{"https://api.openai.com/v1/", ""},
		{"http://localhost:11434/v1", ""},
		{"https://example.com/v1?tenant=a", ""},
		{"", "base URL is required"},
		{"ftp://example.com/v1", `base URL "ftp://example.com/v1": scheme must be http or https`},
		{"https:///v1", `base URL "https:///v1": host is required`},
		{"api.openai.com/v1", `base URL "api.openai.com/v1": scheme must be http or https; host is required`},
		{"mailto:someone@example.com", `base URL "mailto:someone@example.com": scheme must be http or https; host is required`},
		{"https://user:hunter2@example.com/v1", `base URL "https://user:xxxxx@example.com/v1": credentials are not allowed in the URL (use the key or Header)`},
		{"https://example.com/v1#frag", `base URL "https://example.com/v1#frag": fragment is not allowed`},
		{"https://example.com/v1#", `base URL "https://example.com/v1": fragment is not allowed`},
		{"https://exa mple.com/", `base URL is invalid: invalid character " " in host name`},
		{"https://u:hunter2@exa mple.com/", `base URL is invalid: invalid character " " in host name`},
		{
			"ftp://u:hunter2@h/#f",
			`base URL "ftp://u:xxxxx@h/#f": scheme must be http or https; credentials are not allowed in the URL (use the key or Header); fragment is not allowed`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.raw, func(t *testing.T) {
			u, err := ParseBaseURL(tt.raw)
			if tt.wantErr == "" {
				require.NoError(t, err)
				require.Equal(t, tt.raw, u.String())
				return
			}
			require.Nil(t, u)
			require.EqualError(t, err, tt.wantErr)
			require.NotContains(t, err.Error(), "hunter2")
		})
	}
}

func TestJoinURL(t *testing.T) {
	tests := []struct {
		name      string
		base      string
		extra     url.Values
		path      string
		wantURL   string
		wantShown string
	}{
		{"with slash", "https://api.openai.com/v1/", nil, "chat/completions", "https://api.openai.com/v1/chat/completions", ""},
		{"without slash", "https://api.openai.com/v1", nil, "responses", "https://api.openai.com/v1/responses", ""},
		{"root", "https://api.deepseek.com", nil, "chat/completions", "https://api.deepseek.com/chat/completions", ""},
		{"root with slash", "http://localhost:8080/", nil, "messages", "http://localhost:8080/messages", ""},
		{
			"extra query", "https://res.openai.azure.com/openai/deployments/gpt-4o", url.Values{"api-version": {"2024-10-21"}}, "chat/completions",
			"https://res.openai.azure.com/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21",
			"https://res.openai.azure.com/openai/deployments/gpt-4o/chat/completions",
		},
		{
			"extra replaces base query", "https://example.com/v1?tenant=a&api-version=old", url.Values{"api-version": {"new"}}, "messages",
			"https://example.com/v1/messages?api-version=new&tenant=a", "https://example.com/v1/messages",
		},
		{"base query kept", "https://example.com/v1/?tenant=a", nil, "responses", "https://example.com/v1/responses?tenant=a", "https://example.com/v1/responses"},
		{"empty query dropped from shown", "https://example.com/v1?", nil, "embeddings", "https://example.com/v1/embeddings?", "https://example.com/v1/embeddings"},
		{"escaped path", "https://example.com/a%2Fb/v1", nil, "chat/completions", "https://example.com/a%2Fb/v1/chat/completions", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base, err := url.Parse(tt.base)
			require.NoError(t, err)
			before := *base
			got := JoinURL(base, tt.extra, tt.path)
			want := Target{URL: tt.wantURL, Shown: tt.wantShown}
			if want.Shown == "" {
				want.Shown = want.URL
			}
			require.Equal(t, want, got)
			require.Equal(t, before, *base, "base was modified")
		})
	}
	t.Run("extra is not retained", func(t *testing.T) {
		base, err := url.Parse("https://x/v1")
		require.NoError(t, err)
		extra := url.Values{"v": {"1"}}
		got := JoinURL(base, extra, "messages")
		extra["v"][0] = "2"
		require.Equal(t, "https://x/v1/messages?v=1", got.URL)
	})
}

func TestCheckQuery(t *testing.T) {
	var problems []string
	fail := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	CheckQuery(nil, fail)
	CheckQuery(url.Values{"api-version": {"1"}, "empty-value": {""}, "no-values": nil}, fail)
	require.Empty(t, problems)
	CheckQuery(url.Values{"": {"v"}, "ok": {"1"}}, fail)
	require.Equal(t, []string{"query parameter names must not be empty"}, problems)
}

func TestWithQuery(t *testing.T) {
	base := Target{URL: "https://x.example/v1/messages?api-version=old&tenant=a", Shown: "https://x.example/v1/messages"}
	for _, tc := range []struct {
		name  string
		extra url.Values
		want  string
	}{
		{"none", nil, base.URL},
		{"added", url.Values{"beta": {"1"}}, "https://x.example/v1/messages?api-version=old&beta=1&tenant=a"},
		{"replaces", url.Values{"api-version": {"new"}}, "https://x.example/v1/messages?api-version=new&tenant=a"},
		{"empty name skipped", url.Values{"": {"x"}}, "https://x.example/v1/messages?api-version=old&tenant=a"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := WithQuery(base, tc.extra)
			require.NoError(t, err)
			require.Equal(t, Target{URL: tc.want, Shown: base.Shown}, got)
		})
	}
}
