// Package sinktest holds the fixtures the event sinks' tests share.
package sinktest

import (
	"fmt"
	"time"

	gateway "github.com/llmgate/gateway"
	"github.com/llmgate/gateway/tokens"
)

// Event returns a new, realistic event with RequestID "req-i": a chat
// completion that failed over from OpenAI (503) to Anthropic (200, with
// translation), with reported usage. Every call returns a fresh value the
// caller may change.
func Event(i int) *gateway.Event {
	return &gateway.Event{
		RequestID: fmt.Sprintf("req-%d", i), Time: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		Method: "POST", Path: "/v1/chat/completions", Surface: "chat-completions", Format: "openai",
		Principal:       &gateway.Principal{KeyID: "key_1", Account: "acct"},
		RequestedModels: []string{"openai:gpt-4o-mini"}, Candidates: []string{"openai:gpt-4o-mini", "anthropic:claude-haiku"},
		Attempts: []gateway.Attempt{
			{Provider: "openai", Model: "gpt-4o-mini", KeyID: "primary", Status: 503, Error: gateway.AttemptStatus, Duration: 20 * time.Millisecond},
			{Provider: "anthropic", Model: "claude-haiku", KeyID: "k1", Status: 200, Translated: true, Duration: 300 * time.Millisecond},
		},
		ServedBy: "anthropic:claude-haiku", Status: 200,
		Usage: tokens.Usage{InputTokens: 120, OutputTokens: 48}, UsageReported: true,
		Latency: 330 * time.Millisecond, GatewayLatency: 10 * time.Millisecond,
	}
}
