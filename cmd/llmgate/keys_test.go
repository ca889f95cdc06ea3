package main

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/llmgate/gateway/keys"
	"github.com/llmgate/gateway/store/postgres/pgtest"
	"github.com/llmgate/gateway/store/sqlite"
)

// Secrets of the key tests, which no log may contain.
const (
	testAdminToken = "admin-token-for-tests-0123456789"
	chatBody       = `{"model":"lab:qwen3","messages":[{"role":"user","content":"hi"}]}`
)

var testKEK = base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789ABCDEF"))

// keysEnv is the environment of the key tests.
func keysEnv() map[string]string {
	return map[string]string{"LLMGATE_KEK": testKEK, "LLMGATE_ADMIN_TOKEN": testAdminToken}
}

// keysConfig writes a configuration with a SQLite store in dir and a lab
// provider at upstream, plus extra top-level lines, and returns its path.
func keysConfig(t *testing.T, dir, upstream, extra string) string {
	t.Helper()
	path := filepath.Join(dir, "llmgate.yaml")
	writeFile(t, path, fmt.Sprintf(`
store: sqlite:%s
endpoint: prod
key_encryption_keys: [{id: kek-1, key: "${env:LLMGATE_KEK}"}]
%s
providers:
  - id: lab
    base_url: %s/v1/
    api_keys: [{value: sk-upstream-key}]
    models: [{id: qwen3}]
`, filepath.Join(dir, "llmgate.db"), extra, upstream))
	return path
}

// llmgateKeys runs "llmgate keys args..." and returns its stdout, stderr
// and error.
func llmgateKeys(t *testing.T, env map[string]string, args ...string) (string, string, error) {
	t.Helper()
	var stdout, stderr syncBuffer
	err := run(context.Background(), append([]string{"keys"}, args...), mapEnv(env), &stdout, &stderr)
	return stdout.String(), stderr.String(), err
}

// createKey runs "llmgate keys create" and returns the token, from the
// last line of stdout.
func createKey(t *testing.T, path string, args ...string) string {
	t.Helper()
	stdout, stderr, err := llmgateKeys(t, keysEnv(), append([]string{"create", "-config", path}, args...)...)
	require.NoError(t, err, stderr)
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	token := lines[len(lines)-1]
	require.True(t, keys.LooksLikeToken(token), stdout)
	require.Contains(t, stderr, "Created gateway API key key_")
	require.Contains(t, stderr, `for endpoint "prod"`)
	require.Contains(t, stderr, keys.Redact(token))
	require.NotContains(t, stderr, token, "the token goes to stdout only")
	return token
}

// chat sends a chat completion with header set (Authorization or
// x-api-key, or nothing when header is "").
func (r *running) chat(t *testing.T, header, value string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, r.base+"/v1/chat/completions", strings.NewReader(chatBody))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	if header != "" {
		req.Header.Set(header, value)
	}
	return do(t, r.client, req)
}

func do(t *testing.T, c *http.Client, req *http.Request) (int, string) {
	t.Helper()
	resp, err := c.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

// TestKeysCommands runs create, list and revoke against a SQLite store,
// with a server on the same file in between.
func TestKeysCommands(t *testing.T) {
	up := newDemoUpstream(t)
	dir := t.TempDir()
	path := keysConfig(t, dir, up.URL, "")
	token := createKey(t, path, "-description", "ci\tpipeline", "-account", "team-a", "-expires", "720h",
		"-allow-providers", "lab, other", "-allow-models", "lab:qwen3")

	r := startServer(t, []string{"-config", path}, keysEnv())
	for _, header := range []string{"Authorization", "X-Api-Key"} {
		value := token
		if header == "Authorization" {
			value = "Bearer " + token
		}
		status, body := r.chat(t, header, value)
		require.Equal(t, http.StatusOK, status, header+": "+body)
	}
	require.True(t, up.sawKey("sk-upstream-key"), "the configured key went upstream")
	require.False(t, up.sawKey(token), "the gateway token never goes upstream")
	status, body := r.chat(t, "", "")
	require.Equal(t, http.StatusUnauthorized, status, body)
	require.Contains(t, body, `"code":"invalid_api_key"`)
	status, body = r.chat(t, "Authorization", "Bearer lg-"+strings.Repeat("x", 43))
	require.Equal(t, http.StatusUnauthorized, status, body)
	require.Contains(t, body, `"code":"invalid_api_key"`)

	// The key's allow-list applies.
	req, err := http.NewRequest(http.MethodPost, r.base+"/v1/chat/completions", strings.NewReader(`{"model":"lab:other","messages":[{"role":"user","content":"hi"}]}`))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	status, body = do(t, r.client, req)
	require.Equal(t, http.StatusForbidden, status, body)
	require.Contains(t, body, `"code":"model_not_allowed"`)

	// list, while the server runs: one key, without its token.
	stdout, stderr, err := llmgateKeys(t, keysEnv(), "list", "-config", path)
	require.NoError(t, err, stderr)
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	require.Len(t, lines, 2, stdout)
	require.Regexp(t, `^ID\s+REDACTED\s+DESCRIPTION\s+CREATED\s+LAST USED\s+EXPIRES$`, lines[0])
	require.Regexp(t, `^key_[a-z2-7]{26}\s+`+strings.ReplaceAll(keys.Redact(token), "-", `\-`)+`\s+ci pipeline\s+\d{4}-\d\d-\d\d \d\d:\d\dZ\s+(never|\d{4}-\d\d-\d\d \d\d:\d\dZ)\s+\d{4}-\d\d-\d\d \d\d:\d\dZ$`, lines[1])
	require.NotContains(t, stdout+stderr, token)
	id := strings.Fields(lines[1])[0]

	// The key as stored.
	require.NoError(t, r.stop())
	st, err := openStore(context.Background(), r.srv.file, r.srv.logger)
	require.NoError(t, err)
	k, err := st.Get(context.Background(), id)
	require.NoError(t, err)
	require.NoError(t, st.Close())
	require.Equal(t, "team-a", k.Account)
	require.Equal(t, "prod", k.Endpoint)
	require.Equal(t, []string{"lab", "other"}, k.AllowedProviders)
	require.Equal(t, []string{"lab:qwen3"}, k.AllowedModels)
	require.WithinDuration(t, time.Now().Add(720*time.Hour), k.ExpiresAt, time.Hour)
	require.False(t, k.LastUsed.IsZero(), "the server recorded the uses when it stopped")

	// revoke, then a new server refuses the key.
	_, stderr, err = llmgateKeys(t, keysEnv(), "revoke", id, "-config", path)
	require.NoError(t, err, stderr)
	require.Contains(t, stderr, "Revoked gateway API key "+id)
	_, _, err = llmgateKeys(t, keysEnv(), "revoke", "-config", path, id)
	require.ErrorContains(t, err, `no key "`+id+`"`)
	stdout, stderr, err = llmgateKeys(t, keysEnv(), "list", "-config", path)
	require.NoError(t, err)
	require.Empty(t, stdout)
	require.Contains(t, stderr, `No gateway API keys for endpoint "prod"`)

	r2 := startServer(t, []string{"-config", path}, keysEnv())
	status, body = r2.chat(t, "Authorization", "Bearer "+token)
	require.Equal(t, http.StatusUnauthorized, status, body)
	require.Contains(t, body, `"code":"invalid_api_key"`)
	require.NoError(t, r2.stop())

	for _, logs := range []string{r.stderr.String(), r2.stderr.String()} {
		require.NotContains(t, logs, token)
		require.NotContains(t, logs, testKEK)
		require.NotContains(t, logs, "sk-upstream-key")
		require.Contains(t, logs, "gateway_keys=required")
		require.Contains(t, logs, "endpoint=prod")
	}
}

func TestKeysListLimit(t *testing.T) {
	dir := t.TempDir()
	path := keysConfig(t, dir, "http://127.0.0.1:1", "")
	for i := range 3 {
		createKey(t, path, "-description", fmt.Sprintf("key %d", i))
	}
	stdout, _, err := llmgateKeys(t, keysEnv(), "list", "-config", path, "-limit", "2")
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	require.Len(t, lines, 3, stdout)
	require.Contains(t, lines[1], "key 2", "newest first")
	require.Contains(t, lines[2], "key 1")
}

func TestKeysCommandErrors(t *testing.T) {
	dir := t.TempDir()
	path := keysConfig(t, dir, "http://127.0.0.1:1", "")
	noStore := filepath.Join(dir, "nostore.yaml")
	writeFile(t, noStore, "providers: [{id: openai}]\n")
	badStore := filepath.Join(dir, "badstore.yaml")
	writeFile(t, badStore, "store: mysql://x\nendpoint: ''\nproviders: [{id: openai, api_keys: [{value: '${env:UNSET}'}]}]\n")
	unrelated := filepath.Join(dir, "unrelated.yaml")
	writeFile(t, unrelated, "store: sqlite:"+filepath.Join(dir, "u.db")+"\nproviders: [{id: openai, api_keys: [{value: '${env:UNSET}'}]}]\n")

	tests := []struct {
		name       string
		args       []string
		wantErr    string
		wantStderr string
	}{
		{name: "help", args: []string{"-h"}, wantStderr: "llmgate keys create -config FILE"},
		{name: "subcommand help", args: []string{"create", "-h"}, wantStderr: "-allow-models"},
		{name: "no subcommand", args: nil, wantErr: "name a subcommand", wantStderr: "Usage:"},
		{name: "unknown subcommand", args: []string{"rotate"}, wantErr: `unknown subcommand "rotate"`},
		{name: "no config", args: []string{"list"}, wantErr: "-config is required"},
		{name: "unknown flag", args: []string{"create", "-config", path, "-nope"}, wantErr: "flag provided but not defined: -nope"},
		{name: "extra argument", args: []string{"list", "-config", path, "x"}, wantErr: `unexpected arguments ["x"]`},
		{name: "revoke without id", args: []string{"revoke", "-config", path}, wantErr: "name one key ID"},
		{name: "revoke two ids", args: []string{"revoke", "-config", path, "a", "b"}, wantErr: "name one key ID"},
		{name: "missing file", args: []string{"list", "-config", filepath.Join(dir, "none.yaml")}, wantErr: "no such file"},
		{name: "no store", args: []string{"list", "-config", noStore}, wantErr: "names no key store"},
		{name: "bad store fields", args: []string{"create", "-config", badStore}, wantErr: "invalid configuration (2 problems)"},
		{name: "negative expiry", args: []string{"create", "-config", path, "-expires", "-1h"}, wantErr: "-expires must be positive"},
		{name: "long description", args: []string{"create", "-config", path, "-description", strings.Repeat("d", 300)}, wantErr: "description: must be at most 255 bytes"},
		{name: "bad limit", args: []string{"list", "-config", path, "-limit", "0"}, wantErr: "-limit must be at least 1"},
		{name: "other problems of the file do not matter", args: []string{"list", "-config", unrelated}, wantStderr: "No gateway API keys"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stdout, stderr, err := llmgateKeys(t, keysEnv(), tt.args...)
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
			} else {
				require.NoError(t, err)
			}
			require.Contains(t, stderr, tt.wantStderr)
			require.Empty(t, stdout)
		})
	}
}

func TestCell(t *testing.T) {
	require.Equal(t, "-", cell("", 10))
	require.Equal(t, "a b c", cell("a\tb\nc", 10))
	require.Equal(t, "abcd…", cell("abcdefgh", 5))
	require.Equal(t, "ééé", cell("ééé", 3))
}

// TestKeysCommandsPostgres runs create and revoke against a PostgreSQL
// store (LLMGATE_TEST_POSTGRES_DSN, else skipped): the server hears of the
// revocation through the store's watch, without waiting for the cache TTL.
func TestKeysCommandsPostgres(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	up := newDemoUpstream(t)
	path := filepath.Join(t.TempDir(), "llmgate.yaml")
	writeFile(t, path, fmt.Sprintf(`
store: "${env:DATABASE_URL}"
endpoint: prod
providers:
  - id: lab
    base_url: %s/v1/
    api_keys: [{value: sk-upstream-key}]
    models: [{id: qwen3}]
`, up.URL))
	env := map[string]string{"DATABASE_URL": dsn}
	stdout, stderr, err := llmgateKeys(t, env, "create", "-config", path)
	require.NoError(t, err, stderr)
	token := strings.TrimSpace(stdout)
	require.True(t, keys.LooksLikeToken(token), stdout)

	r := startServer(t, []string{"-config", path}, env)
	status, body := r.chat(t, "Authorization", "Bearer "+token)
	require.Equal(t, http.StatusOK, status, body)

	stdout, _, err = llmgateKeys(t, env, "list", "-config", path)
	require.NoError(t, err)
	id := strings.Fields(strings.Split(stdout, "\n")[1])[0]
	_, stderr, err = llmgateKeys(t, env, "revoke", "-config", path, id)
	require.NoError(t, err, stderr)
	require.Eventually(t, func() bool {
		status, _ := r.chat(t, "Authorization", "Bearer "+token)
		return status == http.StatusUnauthorized
	}, 10*time.Second, 20*time.Millisecond, "the watch drops the revoked key")
	require.NoError(t, r.stop())
	require.NotContains(t, r.stderr.String(), token)
	u, err := url.Parse(dsn)
	require.NoError(t, err)
	if pw, ok := u.User.Password(); ok {
		require.NotContains(t, r.stderr.String(), pw)
	}
}

func TestKeysRewrap(t *testing.T) {
	dir := t.TempDir()
	path := keysConfig(t, dir, "http://127.0.0.1:1", "")
	token := createKey(t, path)

	// Attach a provider key sealed under kek-1, as the admin API would.
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(dir, "llmgate.db"), sqlite.Options{})
	require.NoError(t, err)
	k, _, err := st.Lookup(ctx, keys.Hash(token))
	require.NoError(t, err)
	kek1 := keys.KEK{ID: "kek-1"}
	copy(kek1.Key[:], "0123456789abcdef0123456789ABCDEF")
	old, err := keys.NewSealer(kek1)
	require.NoError(t, err)
	a, err := old.NewAttached(k.ID, "lab", "sk-team-secret-value-1")
	require.NoError(t, err)
	_, err = st.Attach(ctx, a)
	require.NoError(t, err)
	require.NoError(t, st.Close())

	_, stderr, err := llmgateKeys(t, keysEnv(), "rewrap", "-config", path)
	require.NoError(t, err)
	require.Contains(t, stderr, "Nothing to rewrap")

	// Rotate: a new current KEK first, the old one kept until rewrap.
	env := keysEnv()
	env["NEW_KEK"] = base64.StdEncoding.EncodeToString([]byte("fedcba9876543210fedcba9876543210"))
	writeFile(t, path, strings.Replace(readFile(t, path), `key_encryption_keys: [{id: kek-1, key: "${env:LLMGATE_KEK}"}]`,
		`key_encryption_keys: [{id: kek-2, key: "${env:NEW_KEK}"}, {id: kek-1, key: "${env:LLMGATE_KEK}"}]`, 1))
	_, stderr, err = llmgateKeys(t, env, "rewrap", "-config", path)
	require.NoError(t, err, stderr)
	require.Contains(t, stderr, `Rewrapped 1 provider keys from "kek-1" to "kek-2"`)
	require.NotContains(t, stderr, "sk-team-secret-value-1")

	st, err = sqlite.Open(ctx, filepath.Join(dir, "llmgate.db"), sqlite.Options{})
	require.NoError(t, err)
	defer st.Close()
	att, err := st.Attached(ctx, k.ID)
	require.NoError(t, err)
	require.Len(t, att, 1)
	require.Equal(t, "kek-2", att[0].KEKID)
	kek2 := keys.KEK{ID: "kek-2"}
	copy(kek2.Key[:], "fedcba9876543210fedcba9876543210")
	cur, err := keys.NewSealer(kek2)
	require.NoError(t, err)
	secret, err := cur.OpenAttached(&att[0])
	require.NoError(t, err)
	require.Equal(t, "sk-team-secret-value-1", secret, "opens under the new KEK alone")
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	return string(b)
}
