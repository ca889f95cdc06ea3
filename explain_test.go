package gateway

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func explainRequest(t *testing.T, path, body string) *http.Request {
	t.Helper()
	r, err := http.NewRequest(http.MethodPost, "http://gateway"+path, strings.NewReader(body))
	require.NoError(t, err)
	r.Header.Set("Content-Type", "application/json")
	return r
}

func TestExplain(t *testing.T) {
	e := newEnv(t, envConfig{openAIKeys: threeKeys, opts: []Option{
		WithOnlyConfiguredProviders(true), WithKeySelection("round_robin"),
		WithModelSelection("ai.models.onlyProviders(['nobody'])", "ai.models.ignore(['gpt-4.1'])"),
	}})
	p, err := e.gw.Explain(context.Background(), explainRequest(t, "/v1/chat/completions",
		`{"model":"gpt-4.1","models":["gpt-4o","claude-sonnet-4-5"],"messages":[]}`))
	require.NoError(t, err)
	require.Equal(t, []string{"gpt-4.1", "gpt-4o", "claude-sonnet-4-5"}, p.RequestedModels)
	require.Len(t, p.Selection, 2)
	require.Zero(t, p.Selection[0].AfterClient)
	require.Equal(t, []string{"openai:gpt-4o", "anthropic:claude-sonnet-4-5"}, p.Selection[1].Models)
	require.Equal(t, []Rejection{{Model: "openai:gpt-4.1", Reason: "removed by model selection strategy 1"}}, p.Rejected)
	require.Len(t, p.Candidates, 2)
	require.Equal(t, PlanCandidate{Provider: "openai", Model: "gpt-4o", Surface: "chat-completions",
		Keys: []PlanKey{{ID: "key-1"}, {ID: "key-2"}, {ID: "key-3"}}}, p.Candidates[0])
	require.Equal(t, "messages", string(p.Candidates[1].Surface))
	require.True(t, p.Candidates[1].Translated)

	// Explaining changes nothing: no upstream call, and the round-robin
	// position is the next request's.
	_, err = e.gw.Explain(context.Background(), explainRequest(t, "/v1/chat/completions", chatBody("gpt-4o")))
	require.NoError(t, err)
	require.Zero(t, e.oa.Count()+e.an.Count())
	resp, _ := e.post(t, "/v1/chat/completions", chatBody("gpt-4o"))
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "Bearer sk-a", e.oa.Requests()[0].Header.Get("Authorization"))
	p, err = e.gw.Explain(context.Background(), explainRequest(t, "/v1/chat/completions", chatBody("gpt-4o")))
	require.NoError(t, err)
	require.Equal(t, "key-2", p.Candidates[0].Keys[0].ID)
	ev := e.events.last(t)
	require.Len(t, ev.Selection, 2, "the event carries the same trace")
}

func TestExplainErrors(t *testing.T) {
	e := newEnv(t, envConfig{opts: []Option{WithModelSelection("ai.models.filter(m, int(request.header('x-n')) > 0)")}})
	for _, tc := range []struct {
		name, path, body string
		want             Kind
	}{
		{"not an API route", "/v1/models", "", KindNotFound},
		{"bad JSON", "/v1/chat/completions", "{", KindInvalidJSON},
		{"unknown model", "/v1/chat/completions", chatBody("gpt-nope"), KindModelUnknown},
		{"strategy fails", "/v1/chat/completions", chatBody("auto"), KindModelSelectionFailed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := explainRequest(t, tc.path, tc.body)
			r.Header.Set("X-N", "x")
			_, err := e.gw.Explain(context.Background(), r)
			var ge *Error
			require.True(t, errors.As(err, &ge), "%v", err)
			require.Equal(t, tc.want, ge.Kind)
		})
	}
	_, err := e.gw.Explain(context.Background(), nil)
	require.Error(t, err)
}
