package admin_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/llmgate/gateway/admin"
)

func TestBodies(t *testing.T) {
	e := newEnv(t)
	k := e.create("")
	for _, tc := range []struct {
		name, method, path string
		contentType, body  string
		status             int
		code, field        string
	}{
		{"empty body without type", "POST", "/v1/keys", "", "", 201, "", ""},
		{"charset utf-8", "POST", "/v1/keys", "application/json; charset=utf-8", `{}`, 201, "", ""},
		{"+json type", "POST", "/v1/keys", "application/merge-patch+json", `{}`, 201, "", ""},
		{"surrounding spaces", "POST", "/v1/keys", "application/json", "\n {} \n", 201, "", ""},
		{"text/plain", "POST", "/v1/keys", "text/plain", `{}`, 415, "unsupported_media_type", ""},
		{"form", "POST", "/v1/keys", "application/x-www-form-urlencoded", `description=x`, 415, "unsupported_media_type", ""},
		{"latin-1", "POST", "/v1/keys", "application/json; charset=iso-8859-1", `{}`, 415, "unsupported_media_type", ""},
		{"body without type", "POST", "/v1/keys", "", `{}`, 415, "unsupported_media_type", ""},
		{"malformed type", "POST", "/v1/keys", "application/json; =", `{}`, 415, "unsupported_media_type", ""},
		{"PATCH text/plain", "PATCH", "/v1/keys/" + k.ID, "text/plain", `{}`, 415, "unsupported_media_type", ""},
		{"empty JSON body", "POST", "/v1/keys", "application/json", ``, 400, "invalid_json", ""},
		{"malformed", "POST", "/v1/keys", "application/json", `{"description":`, 400, "invalid_json", ""},
		{"trailing data", "POST", "/v1/keys", "application/json", `{}{}`, 400, "invalid_json", ""},
		{"trailing garbage", "POST", "/v1/keys", "application/json", `{} x`, 400, "invalid_json", ""},
		{"array", "POST", "/v1/keys", "application/json", `[]`, 400, "invalid_json", ""},
		{"null", "POST", "/v1/keys", "application/json", `null`, 400, "invalid_json", ""},
		{"string", "PATCH", "/v1/keys/" + k.ID, "application/json", `"x"`, 400, "invalid_json", ""},
		{"duplicate member", "PATCH", "/v1/keys/" + k.ID, "application/json", `{"description":"a","description":"b"}`, 400, "invalid_json", "description"},
		{"too large", "POST", "/v1/keys", "application/json", `{"description":"` + strings.Repeat("x", admin.MaxBody) + `"}`, 413, "body_too_large", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(tc.method, tc.path, strings.NewReader(tc.body))
			r.Header.Set("Authorization", "Bearer "+testToken)
			if tc.contentType != "" {
				r.Header.Set("Content-Type", tc.contentType)
			}
			w := e.serve(r)
			if tc.code == "" {
				require.Equal(t, tc.status, w.Code, w.Body.String())
				return
			}
			requireError(t, w, tc.status, tc.code, tc.field)
		})
	}
	t.Run("decoder messages are not echoed", func(t *testing.T) {
		// A body with a secret in a bad place must not come back.
		w := e.do("POST", "/v1/keys/"+k.ID+"/provider_keys", `{"provider":"openai","value":sk-live-secretvalue}`)
		require.Equal(t, http.StatusNotImplemented, w.Code) // no sealer: refused before reading
		w = e.do("POST", "/v1/keys", `{"description":sk-live-secretvalue}`)
		requireError(t, w, 400, "invalid_json", "")
		require.NotContains(t, w.Body.String(), "sk-live")
		require.NotContains(t, w.Body.String(), "'s'")
	})
}
