package admin_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/llmgate/gateway/keys"
)

func TestStoreErrors(t *testing.T) {
	e, fs := newFailingEnv(t)
	k := e.create("")
	e.takeChanges()
	routes := []struct{ method, path, body string }{
		{"POST", "/v1/keys", `{}`},
		{"GET", "/v1/keys", ""},
		{"GET", "/v1/keys/" + k.ID, ""},
		{"PATCH", "/v1/keys/" + k.ID, `{"description":"x"}`},
		{"DELETE", "/v1/keys/" + k.ID, ""},
		{"POST", "/v1/keys/" + k.ID + "/provider_keys", `{"provider":"openai","value":"` + providerValue + `"}`},
		{"GET", "/v1/keys/" + k.ID + "/provider_keys", ""},
		{"DELETE", "/v1/keys/" + k.ID + "/provider_keys/pk_aaaaaaaaaaaaaaaaaaaaaaaaaa", ""},
	}
	for _, tc := range []struct {
		name   string
		err    error
		status int
		code   string
	}{
		{"unavailable", fmt.Errorf("%w: connection refused", keys.ErrUnavailable), 503, "store_unavailable"},
		{"deadline", context.DeadlineExceeded, 503, "store_unavailable"},
		{"conflict", fmt.Errorf("%w: key_x", keys.ErrConflict), 409, "conflict"},
		{"bare invalid", fmt.Errorf("%w: something", keys.ErrInvalid), 422, "invalid"},
		{"anything else", errBoom, 500, "internal_error"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fs.set(tc.err)
			defer fs.set(nil)
			for _, r := range routes {
				t.Run(r.method+" "+r.path, func(t *testing.T) {
					w := e.do(r.method, r.path, r.body)
					requireError(t, w, tc.status, tc.code, "")
					if tc.status == http.StatusServiceUnavailable {
						require.Equal(t, "1", w.Header().Get("Retry-After"))
					} else {
						require.Empty(t, w.Header().Get("Retry-After"))
					}
					// The store's words stay in the log.
					require.NotContains(t, w.Body.String(), "hunter2")
					require.NotContains(t, w.Body.String(), "connection refused")
				})
			}
		})
	}
	require.Contains(t, e.logs.String(), "admin: internal error")
	require.Contains(t, e.logs.String(), "admin: store unavailable")
	require.Empty(t, e.takeChanges(), "no failed change is reported")
}

func TestValidationErrorFromStore(t *testing.T) {
	e, fs := newFailingEnv(t)
	fs.set(fmt.Errorf("wrapped: %w", &keys.ValidationError{Field: "metadata", Code: "metadata_too_long", Message: "too long"}))
	w := e.do("POST", "/v1/keys", `{"metadata":"x"}`)
	requireError(t, w, 422, "metadata_too_long", "metadata")
}
