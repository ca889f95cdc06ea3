package main

import (
	"encoding/json"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/llmgate/gateway/keys"
)

const adminLines = `admin:
  listen: 127.0.0.1:0
  token: "${env:LLMGATE_ADMIN_TOKEN}"`

// adminDo sends a request to the admin listener with the admin token
// (unless token is "").
func (r *running) adminDo(t *testing.T, method, path, token, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+r.srv.admin.addr+path, strings.NewReader(body))
	require.NoError(t, err)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return do(t, r.client, req)
}

// TestAdminListener creates a key through the admin API, uses it on the
// main listener, and deletes it, which the gateway learns at once.
func TestAdminListener(t *testing.T) {
	up := newDemoUpstream(t)
	path := keysConfig(t, t.TempDir(), up.URL, adminLines)
	r := startServer(t, []string{"-config", path}, keysEnv())
	require.NotNil(t, r.srv.admin)

	status, body := r.adminDo(t, http.MethodGet, "/healthz", "", "")
	require.Equal(t, http.StatusOK, status)
	require.Equal(t, "ok\n", body)
	status, body = r.adminDo(t, http.MethodGet, "/admin/v1/keys", "", "")
	require.Equal(t, http.StatusUnauthorized, status, body)
	status, body = r.adminDo(t, http.MethodGet, "/admin/v1/keys", "wrong-token-0123456789", "")
	require.Equal(t, http.StatusUnauthorized, status, body)
	status, body = r.adminDo(t, http.MethodGet, "/v1/keys", testAdminToken, "")
	require.Equal(t, http.StatusNotFound, status, "the API lives under /admin/: "+body)

	status, body = r.adminDo(t, http.MethodPost, "/admin/v1/keys", testAdminToken, `{"description":"from the admin API"}`)
	require.Equal(t, http.StatusCreated, status, body)
	var created struct {
		ID       string `json:"id"`
		Token    string `json:"token"`
		Endpoint string `json:"endpoint"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &created), body)
	require.True(t, keys.LooksLikeToken(created.Token), body)
	require.Equal(t, "prod", created.Endpoint, "the file's endpoint")

	status, body = r.chat(t, "Authorization", "Bearer "+created.Token)
	require.Equal(t, http.StatusOK, status, body)

	// Attaching a provider key uses the file's key-encryption key: the
	// attached key replaces the configured one.
	status, body = r.adminDo(t, http.MethodPost, "/admin/v1/keys/"+created.ID+"/provider_keys", testAdminToken, `{"provider":"lab","value":"sk-attached-byok-key"}`)
	require.Equal(t, http.StatusCreated, status, body)
	status, body = r.chat(t, "X-Api-Key", created.Token)
	require.Equal(t, http.StatusOK, status, body)
	require.True(t, up.sawKey("sk-attached-byok-key"), "OnChange dropped the cached key, and the Sealer opened the attached key")

	status, body = r.adminDo(t, http.MethodDelete, "/admin/v1/keys/"+created.ID, testAdminToken, "")
	require.Equal(t, http.StatusNoContent, status, body)
	status, body = r.chat(t, "Authorization", "Bearer "+created.Token)
	require.Equal(t, http.StatusUnauthorized, status, "a deletion through the admin API applies at once: "+body)

	require.NoError(t, r.stop())
	logs := r.stderr.String()
	require.Contains(t, logs, `msg="llmgate admin API listening" addr=`+r.srv.admin.addr)
	for _, secret := range []string{created.Token, testAdminToken, testKEK, "sk-attached-byok-key", "sk-upstream-key"} {
		require.NotContains(t, logs, secret)
	}
	require.NotContains(t, r.stdout.String(), created.Token)
}

// TestGatewayKeysOptional serves requests without a key, and still checks
// those with one.
func TestGatewayKeysOptional(t *testing.T) {
	up := newDemoUpstream(t)
	dir := t.TempDir()
	path := keysConfig(t, dir, up.URL, "gateway_keys: optional")
	token := createKey(t, path)
	r := startServer(t, []string{"-config", path}, keysEnv())
	status, body := r.chat(t, "", "")
	require.Equal(t, http.StatusOK, status, body)
	status, body = r.chat(t, "Authorization", "Bearer "+token)
	require.Equal(t, http.StatusOK, status, body)
	status, body = r.chat(t, "Authorization", "Bearer lg-"+strings.Repeat("y", 43))
	require.Equal(t, http.StatusUnauthorized, status, "an unknown gateway token is refused: "+body)
	require.NoError(t, r.stop())
	require.Contains(t, r.stderr.String(), "gateway_keys=optional")
}

// TestKeyStoreReload changes the key settings on SIGHUP's reload: the
// endpoint applies at once, the store needs a restart, and adding or
// removing the store is refused.
func TestKeyStoreReload(t *testing.T) {
	up := newDemoUpstream(t)
	dir := t.TempDir()
	path := keysConfig(t, dir, up.URL, adminLines)
	token := createKey(t, path)
	r := startServer(t, []string{"-config", path}, keysEnv())
	status, body := r.chat(t, "Authorization", "Bearer "+token)
	require.Equal(t, http.StatusOK, status, body)

	// Another endpoint: the key belongs to prod.
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	writeFile(t, path, strings.Replace(string(data), "endpoint: prod", "endpoint: staging", 1))
	require.NoError(t, r.srv.reload())
	status, body = r.chat(t, "Authorization", "Bearer "+token)
	require.Equal(t, http.StatusForbidden, status, body)
	require.Contains(t, body, `"code":"key_endpoint_mismatch"`)
	status, body = r.adminDo(t, http.MethodPost, "/admin/v1/keys", testAdminToken, `{}`)
	require.Equal(t, http.StatusCreated, status, body)
	require.Contains(t, body, `"endpoint":"staging"`, "the admin API follows the reload")

	// Another store: logged, the open one stays.
	other := strings.Replace(string(data), "llmgate.db", "other.db", 1)
	writeFile(t, path, other)
	require.NoError(t, r.srv.reload())
	status, body = r.chat(t, "Authorization", "Bearer "+token)
	require.Equal(t, http.StatusOK, status, body)

	// No store at all: refused.
	lines := strings.Split(other, "\n")
	var kept []string
	for _, l := range lines {
		if !strings.HasPrefix(l, "store:") && !strings.HasPrefix(l, "endpoint:") && !strings.HasPrefix(l, "key_encryption_keys:") &&
			!strings.HasPrefix(l, "admin:") && !strings.HasPrefix(l, "  listen:") && !strings.HasPrefix(l, "  token:") {
			kept = append(kept, l)
		}
	}
	writeFile(t, path, strings.Join(kept, "\n"))
	require.ErrorContains(t, r.srv.reload(), "store was added or removed; that takes effect when llmgate restarts")
	status, body = r.chat(t, "", "")
	require.Equal(t, http.StatusUnauthorized, status, "keys are still required: "+body)

	require.NoError(t, r.stop())
	logs := r.stderr.String()
	require.Contains(t, logs, "store changed in the configuration file; it takes effect when llmgate restarts")
	require.Contains(t, logs, "settings_changed=endpoint")
	require.NotContains(t, logs, testAdminToken)
	require.NotContains(t, logs, testKEK)
	require.NotContains(t, logs, token)
}

// TestKeyStoreNotOpenedForABadFile checks that a file with problems opens
// no store, and that they are all reported.
func TestKeyStoreNotOpenedForABadFile(t *testing.T) {
	dir := t.TempDir()
	path := keysConfig(t, dir, "http://127.0.0.1:1", "gateway_keys: maybe\nmax_attempts: 0")
	var stdout, stderr syncBuffer
	err := run(t.Context(), []string{"-config", path, "-listen", "127.0.0.1:0"}, mapEnv(keysEnv()), &stdout, &stderr)
	require.ErrorContains(t, err, `gateway_keys: "maybe" is not one of required, optional`)
	require.ErrorContains(t, err, "max_attempts: must be at least 1")
	_, statErr := os.Stat(strings.TrimSuffix(path, "llmgate.yaml") + "llmgate.db")
	require.True(t, os.IsNotExist(statErr), "no database created")
}
