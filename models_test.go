package gateway

import (
	"context"
	"io"
	"net/http"
	"testing"

	anthropicsdk "github.com/anthropics/anthropic-sdk-go/v2"
	"github.com/stretchr/testify/require"
)

// TestRetrieveModel: the SDKs' models.retrieve (GET /v1/models/{id}) in both
// dialects, for any name the model grammar accepts.
func TestRetrieveModel(t *testing.T) {
	e := newEnv(t, envConfig{})
	m, err := e.openai().Models.Get(context.Background(), "openai:gpt-4o")
	require.NoError(t, err)
	require.Equal(t, "openai:gpt-4o", m.ID)
	require.Equal(t, "model", string(m.Object))
	require.Equal(t, "openai", m.OwnedBy)

	m, err = e.openai().Models.Get(context.Background(), "claude-sonnet-4-5")
	require.NoError(t, err)
	require.Equal(t, "anthropic:claude-sonnet-4-5", m.ID)

	am, err := e.anthropic().Models.Get(context.Background(), "anthropic:claude-sonnet-4-5", anthropicsdk.ModelGetParams{})
	require.NoError(t, err)
	require.Equal(t, "anthropic:claude-sonnet-4-5", am.ID)
	require.NotEmpty(t, am.DisplayName)

	_, err = e.openai().Models.Get(context.Background(), "gpt-4o-mnii")
	require.Error(t, err)
	resp, err := http.Get(e.srv.URL + "/v1/models/gpt-4o-mnii")
	require.NoError(t, err)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusNotFound, resp.StatusCode)
	v := decodeOpenAIError(t, b)
	require.Equal(t, "model_unknown", v.Error.Code)
	require.Contains(t, v.Error.Message, `did you mean "gpt-4o-mini"?`)

	// A model the restrictions refuse is not found either.
	e2 := newEnv(t, envConfig{opts: []Option{WithOnlyConfiguredProviders(true)}})
	resp, err = http.Get(e2.srv.URL + "/v1/models/groq:llama-3.3-70b-versatile")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusNotFound, resp.StatusCode)
}

func TestUnknownModelSuggestsTheNearestName(t *testing.T) {
	e := newEnv(t, envConfig{})
	for _, tc := range []struct{ name, want string }{
		{"gpt-4o-mnii", `did you mean "gpt-4o-mini"?`},
		{"claude-sonet-4-5", `did you mean "claude-sonnet-4-5"?`},
		{"completely-different-thing", ""},
	} {
		resp, body := e.post(t, "/v1/chat/completions", chatBody(tc.name))
		require.Equal(t, http.StatusUnprocessableEntity, resp.StatusCode)
		msg := decodeOpenAIError(t, body).Error.Message
		if tc.want == "" {
			require.NotContains(t, msg, "did you mean")
		} else {
			require.Contains(t, msg, tc.want)
		}
		require.Contains(t, msg, `"openai:`+tc.name+`"`, "and how to pass an uncatalogued model through")
	}
}
