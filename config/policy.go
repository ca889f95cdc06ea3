package config

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	gateway "github.com/llmgate/gateway"
	"github.com/llmgate/gateway/providers"
)

// RequestPolicy is request_policy: the rules for the requests sent
// upstream that hold for every provider.
type RequestPolicy struct {
	// Allow maps an API surface (chat-completions, responses, embeddings,
	// messages) to the top-level request members sent upstream on it
	// (gateway.WithParamAllowList, one per surface).
	Allow map[string][]string `yaml:"allow"`
}

// Policy is providers[].policy and providers[].models[].policy
// (gateway.RequestPolicy; a model's goes to
// gateway.ProviderConfig.ModelPolicies).
type Policy struct {
	// Headers are set on every upstream request.
	Headers map[string]string `yaml:"headers"`
	// QueryParams are added to every upstream request URL.
	QueryParams map[string]string `yaml:"query_params"`
	// Set holds top-level body members that replace the client's, as YAML
	// values sent as JSON.
	Set map[string]any `yaml:"set"`
	// Deny lists top-level body members removed.
	Deny []string `yaml:"deny"`
	// MaxOutputTokens caps the answer; 0 means no cap.
	MaxOutputTokens int `yaml:"max_output_tokens"`
}

// policy returns the gateway's RequestPolicy for p: Set's values as JSON
// (those that have none were reported by Parse and are left out).
func (p *Policy) policy() gateway.RequestPolicy {
	out := gateway.RequestPolicy{Headers: p.Headers, QueryParams: p.QueryParams, Deny: p.Deny, MaxOutputTokens: p.MaxOutputTokens}
	for name, v := range p.Set {
		if b, err := json.Marshal(v); err == nil {
			if out.Set == nil {
				out.Set = map[string]json.RawMessage{}
			}
			out.Set[name] = b
		}
	}
	return out
}

// checkPolicies reports set values that cannot be sent as JSON (YAML's
// .inf and .nan); everything else is gateway.New's to check.
func (d *decoder) checkPolicies(f *File) {
	check := func(path string, p *Policy) {
		for _, name := range slices.Sorted(maps.Keys(p.Set)) {
			if _, err := json.Marshal(p.Set[name]); err != nil {
				d.failAt(path+".set."+name, "the value cannot be sent as JSON: %v", err)
			}
		}
	}
	for i := range f.Providers {
		pv := &f.Providers[i]
		check(fmt.Sprintf("providers[%d].policy", i), &pv.Policy)
		for j := range pv.Models {
			check(fmt.Sprintf("providers[%d].models[%d].policy", i, j), &pv.Models[j].Policy)
		}
	}
}

// allowOptions returns one gateway.WithParamAllowList per surface of
// request_policy.allow, in name order.
func (f *File) allowOptions() []gateway.Option {
	var opts []gateway.Option
	for _, s := range slices.Sorted(maps.Keys(f.RequestPolicy.Allow)) {
		if !f.bad["request_policy.allow."+s] {
			opts = append(opts, gateway.WithParamAllowList(providers.Surface(s), f.RequestPolicy.Allow[s]...))
		}
	}
	return opts
}

// modelPolicyPath returns the path of a ProviderConfig field under
// ModelPolicies (`ModelPolicies["gpt-4o"].Set["temperature"]`) in the file's
// entry p: the policy of the model listed with that ID
// ("models[0].policy.set.temperature"), else "models".
func modelPolicyPath(p *Provider, field string) (string, bool) {
	rest, ok := strings.CutPrefix(field, "ModelPolicies[")
	if !ok {
		return "", false
	}
	quoted, err := strconv.QuotedPrefix(rest)
	if err != nil {
		return "models", true
	}
	key, _ := strconv.Unquote(quoted)
	sub := strings.TrimPrefix(strings.TrimPrefix(rest[len(quoted):], "]"), ".")
	j := slices.IndexFunc(p.Models, func(m Model) bool { return m.ID == key })
	if j < 0 {
		j = slices.IndexFunc(p.Models, func(m Model) bool { return strings.EqualFold(m.ID, key) })
	}
	if j < 0 {
		return "models", true
	}
	path := "models[" + strconv.Itoa(j) + "].policy"
	if sub != "" {
		path += "." + yamlPath(sub)
	}
	return path, true
}
