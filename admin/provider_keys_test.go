package admin_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/llmgate/gateway/admin"
	"github.com/llmgate/gateway/keys"
)

const providerValue = "sk-proj-Zq8xW2vN5mK1pR7tY4uI0oA3sD6fG9hJ"

type attached struct {
	ID        string `json:"id"`
	KeyID     string `json:"key_id"`
	Provider  string `json:"provider"`
	Redacted  string `json:"redacted"`
	CreatedAt string `json:"created_at"`
}

func TestAttachWithoutSealer(t *testing.T) {
	e := newEnv(t)
	k := e.create("")
	e.takeChanges()
	w := e.do("POST", "/v1/keys/"+k.ID+"/provider_keys", `{"provider":"openai","value":"`+providerValue+`"}`)
	requireError(t, w, http.StatusNotImplemented, "sealer_not_configured", "")
	require.Empty(t, e.takeChanges())

	// Listing and detaching need no sealer.
	w = e.do("GET", "/v1/keys/"+k.ID+"/provider_keys", "")
	require.Equal(t, http.StatusOK, w.Code)
	require.JSONEq(t, `{"provider_keys":[]}`, w.Body.String())
	requireError(t, e.do("DELETE", "/v1/keys/"+k.ID+"/provider_keys/pk_aaaaaaaaaaaaaaaaaaaaaaaaaa", ""),
		404, "provider_key_not_found", "")
	require.NotContains(t, e.logs.String(), providerValue)
}

func TestAttachListDetach(t *testing.T) {
	sealer := testSealer(t)
	e := newEnv(t, func(o *admin.Options) { o.Sealer = sealer })
	k := e.create("")
	e.takeChanges()
	base := "/v1/keys/" + k.ID + "/provider_keys"

	w := e.do("POST", base, `{"provider":"openai","value":"`+providerValue+`"}`)
	require.Equal(t, http.StatusCreated, w.Code, w.Body.String())
	require.NotContains(t, w.Body.String(), providerValue)
	a1 := decode[attached](t, w)
	require.True(t, keys.ValidAttachedID(a1.ID))
	require.Equal(t, k.ID, a1.KeyID)
	require.Equal(t, "openai", a1.Provider)
	require.Equal(t, keys.Redact(providerValue), a1.Redacted)
	require.NotEmpty(t, a1.CreatedAt)
	var m map[string]any
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &m))
	require.ElementsMatch(t, []string{"id", "key_id", "provider", "redacted", "created_at"}, mapKeys(m))
	require.Equal(t, []([32]byte){keys.Hash(k.Token)}, e.takeChanges())

	// The store holds the sealed value, which opens to what was sent.
	stored, err := e.store.Attached(context.Background(), k.ID)
	require.NoError(t, err)
	require.Len(t, stored, 1)
	require.Equal(t, "test-kek", stored[0].KEKID)
	require.NotContains(t, string(stored[0].Sealed), providerValue)
	plain, err := sealer.OpenAttached(&stored[0])
	require.NoError(t, err)
	require.Equal(t, providerValue, plain)

	w = e.do("POST", base, `{"provider":"anthropic","value":"sk-ant-short"}`)
	require.Equal(t, http.StatusCreated, w.Code, w.Body.String())
	a2 := decode[attached](t, w)
	e.takeChanges()

	w = e.do("GET", base, "")
	require.Equal(t, http.StatusOK, w.Code)
	require.NotContains(t, w.Body.String(), providerValue)
	list := decode[struct {
		ProviderKeys []attached `json:"provider_keys"`
	}](t, w)
	require.Equal(t, []attached{a2, a1}, list.ProviderKeys, "newest first")

	w = e.do("DELETE", base+"/"+a1.ID, "")
	require.Equal(t, http.StatusNoContent, w.Code)
	require.Equal(t, []([32]byte){keys.Hash(k.Token)}, e.takeChanges())
	requireError(t, e.do("DELETE", base+"/"+a1.ID, ""), 404, "provider_key_not_found", "")
	list = decode[struct {
		ProviderKeys []attached `json:"provider_keys"`
	}](t, e.do("GET", base, ""))
	require.Equal(t, []attached{a2}, list.ProviderKeys)

	// Attached to another key, the ID is not found on this one.
	other := e.create("")
	requireError(t, e.do("DELETE", "/v1/keys/"+other.ID+"/provider_keys/"+a2.ID, ""), 404, "provider_key_not_found", "")
	e.takeChanges()

	// Deleting the key removes its provider keys.
	require.Equal(t, http.StatusNoContent, e.do("DELETE", "/v1/keys/"+k.ID, "").Code)
	requireError(t, e.do("GET", base, ""), 404, "key_not_found", "")
	requireError(t, e.do("DELETE", base+"/"+a2.ID, ""), 404, "key_not_found", "")

	require.NotContains(t, e.logs.String(), providerValue)
	require.NotContains(t, e.logs.String(), "sk-ant-short")
	require.Contains(t, e.logs.String(), a1.ID)
}

func TestAttachErrors(t *testing.T) {
	e := newEnv(t, func(o *admin.Options) { o.Sealer = testSealer(t) })
	k := e.create("")
	base := "/v1/keys/" + k.ID + "/provider_keys"
	for _, tc := range []struct {
		name, path, body string
		status           int
		code, field      string
	}{
		{"unknown key", "/v1/keys/key_aaaaaaaaaaaaaaaaaaaaaaaaaa/provider_keys", `{"provider":"openai","value":"` + providerValue + `"}`, 404, "key_not_found", ""},
		{"no provider", base, `{"value":"` + providerValue + `"}`, 422, "provider_required", "provider"},
		{"empty provider", base, `{"provider":"","value":"` + providerValue + `"}`, 422, "provider_required", "provider"},
		{"provider with spaces", base, `{"provider":" openai","value":"` + providerValue + `"}`, 422, "invalid_provider", "provider"},
		{"no value", base, `{"provider":"openai"}`, 422, "value_required", "value"},
		{"null value", base, `{"provider":"openai","value":null}`, 422, "value_required", "value"},
		{"value with a newline", base, `{"provider":"openai","value":"` + providerValue + `\n"}`, 422, "invalid_value", "value"},
		{"value too long", base, `{"provider":"openai","value":"` + strings.Repeat("k", admin.MaxValue+1) + `"}`, 422, "invalid_value", "value"},
		{"value a gateway token", base, `{"provider":"openai","value":"` + k.Token + `"}`, 422, "value_is_gateway_key", "value"},
		{"value a number", base, `{"provider":"openai","value":12345}`, 400, "invalid_json", "value"},
		{"unknown field", base, `{"provider":"openai","value":"` + providerValue + `","description":"x"}`, 400, "invalid_json", "description"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := e.do("POST", tc.path, tc.body)
			requireError(t, w, tc.status, tc.code, tc.field)
			require.NotContains(t, w.Body.String(), providerValue)
			require.NotContains(t, w.Body.String(), k.Token)
		})
	}
	t.Run("too many for a provider", func(t *testing.T) {
		for range keys.MaxAttachedPerProvider {
			w := e.do("POST", base, `{"provider":"groq","value":"`+providerValue+`"}`)
			require.Equal(t, http.StatusCreated, w.Code, w.Body.String())
		}
		requireError(t, e.do("POST", base, `{"provider":"groq","value":"`+providerValue+`"}`), 422, "too_many_attached", "provider")
	})
	require.NotContains(t, e.logs.String(), providerValue)
	require.NotContains(t, e.logs.String(), k.Token)
}
