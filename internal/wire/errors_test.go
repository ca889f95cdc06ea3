package wire

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestErrorTypes(t *testing.T) {
	for status, want := range map[int][2]string{
		400: {"invalid_request_error", "invalid_request_error"},
		401: {"authentication_error", "authentication_error"},
		402: {"invalid_request_error", "billing_error"},
		403: {"permission_error", "permission_error"},
		404: {"not_found_error", "not_found_error"},
		408: {"invalid_request_error", "timeout_error"},
		413: {"invalid_request_error", "request_too_large"},
		422: {"invalid_request_error", "invalid_request_error"},
		429: {"rate_limit_error", "rate_limit_error"},
		500: {"server_error", "api_error"},
		503: {"server_error", "overloaded_error"},
		504: {"server_error", "timeout_error"},
		529: {"server_error", "overloaded_error"},
	} {
		require.Equal(t, want[0], OpenAIErrorType(status), "openai %d", status)
		require.Equal(t, want[1], AnthropicErrorType(status), "anthropic %d", status)
	}
}

func TestErrorMessage(t *testing.T) {
	for _, tc := range []struct{ body, msg, typ string }{
		{`{"error":{"message":"bad key","type":"invalid_request_error","code":"invalid_api_key"}}`, "bad key", "invalid_api_key"},
		{`{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`, "Overloaded", "overloaded_error"},
		{`{"error":"plain text error"}`, "plain text error", ""},
		{`{"message":"compat shape"}`, "compat shape", ""},
		{`<html>bad gateway</html>`, "<html>bad gateway</html>", ""},
		{``, "", ""},
	} {
		msg, typ := ErrorMessage([]byte(tc.body))
		require.Equal(t, tc.msg, msg, tc.body)
		require.Equal(t, tc.typ, typ, tc.body)
	}
	long := make([]byte, 2*MaxErrorText)
	for i := range long {
		long[i] = 'x'
	}
	msg, _ := ErrorMessage(long)
	require.Len(t, msg, MaxErrorText)
}
