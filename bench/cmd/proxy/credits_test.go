//go:build !nostrategies

package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/llmgate/gateway/bench/internal/benchledger"
	"github.com/llmgate/gateway/bench/internal/gatewaykey"
	"github.com/llmgate/gateway/credits"
	"github.com/llmgate/gateway/providers"
	"github.com/llmgate/gateway/providers/providertest"
)

// post sends a chat completion request for gpt-4o-mini to srv with the
// benchmark's token when withToken, and returns the status and body.
func post(t *testing.T, srv *httptest.Server, body string, withToken bool) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, srv.URL+"/v1/chat/completions", strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	if withToken {
		req.Header.Set("Authorization", "Bearer "+gatewaykey.Token)
	}
	resp, err := srv.Client().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

// snapshot reads the proxy's ledger through benchledger.Path.
func snapshot(t *testing.T, srv *httptest.Server) benchledger.Snapshot {
	t.Helper()
	resp, err := srv.Client().Get(srv.URL + benchledger.Path)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var snap benchledger.Snapshot
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&snap))
	return snap
}

// TestCredits runs a proxy set up like -credits over each ledger in front
// of a fake OpenAI upstream: requests with the benchmark's token are
// served and charged to its account, one usage record each, and requests
// without it are refused and not recorded.
func TestCredits(t *testing.T) {
	for _, tc := range []struct {
		name   string
		ledger func(t *testing.T) string
	}{
		{"memory", func(*testing.T) string { return "memory" }},
		{"sqlite", func(t *testing.T) string { return "sqlite:" + filepath.Join(t.TempDir(), "ledger.db") }},
		{"sqlite-lease", func(t *testing.T) string { return "sqlite-lease:" + filepath.Join(t.TempDir(), "ledger.db") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			up := providertest.Start(t, providers.FormatOpenAI)
			h, closeAll, err := newHandler(context.Background(), setup{mode: "llmgate",
				upstream: strings.TrimSuffix(up.URL, "/v1/"), ledger: tc.ledger(t)})
			require.NoError(t, err)
			defer closeAll()
			srv := httptest.NewServer(h)
			defer srv.Close()

			before := snapshot(t, srv)
			require.Equal(t, benchledger.Purchases*credits.MaxPurchase, before.Purchased)
			require.Equal(t, before.Purchased, before.Available)
			require.Zero(t, before.Records)

			const chat = `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Say hi."}],"max_tokens":50`
			for _, body := range []string{chat + `}`, chat + `}`, chat + `,"stream":true,"stream_options":{"include_usage":true}}`} {
				status, resp := post(t, srv, body, true)
				require.Equal(t, http.StatusOK, status, resp)
			}
			status, _ := post(t, srv, chat+`}`, false)
			require.Equal(t, http.StatusUnauthorized, status)

			after := snapshot(t, srv)
			require.Equal(t, benchledger.Account, after.Account)
			require.EqualValues(t, 3, after.Records, "one usage record per request served, none for the refused one")
			require.Positive(t, after.Spent)
			require.Equal(t, after.Spent, after.Charged(), "credits paid for every record")
			require.Zero(t, after.Held)
			require.Equal(t, after.Purchased, after.Available+after.Spent)
			require.Equal(t, 3, up.Count(), "the refused request never went upstream")
		})
	}
}

func TestCreditsErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		s    setup
		want string
	}{
		{"unknown ledger", setup{mode: "llmgate", ledger: "postgres://x"}, `want memory, sqlite:PATH or sqlite-lease:PATH`},
		{"sqlite without a path", setup{mode: "llmgate", ledger: "sqlite:"}, `want memory, sqlite:PATH or sqlite-lease:PATH`},
		{"plain proxy", setup{mode: "plain", ledger: "memory"}, "need -mode llmgate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.s.upstream = "http://127.0.0.1:1"
			_, _, err := newHandler(context.Background(), tc.s)
			require.ErrorContains(t, err, tc.want)
		})
	}
}
