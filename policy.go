package gateway

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/llmgate/gateway/catalog"
	"github.com/llmgate/gateway/internal/httpx"
	"github.com/llmgate/gateway/internal/jsonx"
	"github.com/llmgate/gateway/providers"
)

// Request policy: what the operator changes in the requests the gateway
// sends upstream, per provider (ProviderConfig.Policy), per model
// (ProviderConfig.ModelPolicies) and per API surface (WithParamAllowList).
// It is compiled by New into one policy per provider and per model with a
// policy of its own, and applied by prepare to each candidate's upstream
// body, after translation, in the upstream's format:
//
//  1. remove the top-level members the policy denies or the surface's
//     allow-list does not list (never those the gateway needs, see kept);
//  2. set the policy's Set members, replacing the client's;
//  3. cap the maximum output tokens (the policy's clamp, WithTokenLimits
//     and the credits' cap: the smallest wins).
//
// A request to a provider without a policy, on a surface without an
// allow-list, takes none of these steps.

// RequestPolicy changes the requests the gateway sends to a provider
// (ProviderConfig.Policy) or to one of its models
// (ProviderConfig.ModelPolicies). The zero value changes nothing. Names of
// body members are top-level members only, matched ASCII and Unicode
// case-insensitively (as lenient upstreams match them); nested fields are
// not reached.
//
// A RequestPolicy is copied by WithProvider; the gateway never modifies
// it.
type RequestPolicy struct {
	// Headers are set on every upstream request, replacing the header of
	// the same name configured (ProviderConfig.Headers) or forwarded from
	// the client (anthropic-version included). Anthropic-Beta values are
	// added to the others instead. The headers the provider manages
	// (Content-Type, Accept, User-Agent, Content-Length, Host, hop-by-hop
	// headers) cannot be set, and the key's header, when the request has a
	// key, is the key's. A custom ProviderConfig.Provider receives them in
	// providers.Request.ExtraHeader.
	Headers map[string]string
	// QueryParams are added to every upstream request URL, replacing a
	// parameter of the same name (ProviderConfig.QueryParams or the base
	// URL's). A custom ProviderConfig.Provider receives them in
	// providers.Request.ExtraQuery.
	QueryParams map[string]string
	// Set holds top-level body members, as JSON values, that replace the
	// client's (or are added when the client sent none), for example
	// {"temperature": json.RawMessage("0.2")}. They are sent even when an
	// allow-list (WithParamAllowList) does not list them. The members the
	// gateway routes on or bounds cannot be set: model, models, stream,
	// stream_options, messages, input, max_tokens, max_completion_tokens,
	// max_output_tokens (bound the answer with MaxOutputTokens).
	Set map[string]json.RawMessage
	// Deny lists top-level body members removed before the request goes
	// upstream; the names removed are reported in Llmgate-Removed-Params
	// and Event.RemovedParams. model, stream, stream_options, messages and
	// input cannot be denied; max_tokens is kept on the messages API, which
	// requires it. The answer stays bounded: on chat completions a denied
	// max_tokens (or max_completion_tokens) has its value moved to the
	// other field; when both are denied, or on the responses API
	// (max_output_tokens), the field that bounds the answer is kept.
	Deny []string
	// MaxOutputTokens caps the answer: a larger maximum in the request is
	// lowered to it, and a request that names none gets it (in the
	// surface's field: max_tokens, max_completion_tokens at OpenAI, or
	// max_output_tokens). With WithTokenLimits and the credits' cap the
	// smallest wins, and credit holds are sized with it. 0 means no cap.
	MaxOutputTokens int
}

// IsZero reports whether p changes nothing: it has no header, query
// parameter, set or denied member and no clamp.
func (p *RequestPolicy) IsZero() bool {
	return len(p.Headers) == 0 && len(p.QueryParams) == 0 && len(p.Set) == 0 && len(p.Deny) == 0 && p.MaxOutputTokens == 0
}

// clone returns a deep copy of p.
func (p RequestPolicy) clone() RequestPolicy {
	p.Headers = maps.Clone(p.Headers)
	p.QueryParams = maps.Clone(p.QueryParams)
	p.Deny = slices.Clone(p.Deny)
	if p.Set != nil {
		set := make(map[string]json.RawMessage, len(p.Set))
		for k, v := range p.Set {
			set[k] = slices.Clone(v)
		}
		p.Set = set
	}
	return p
}

// WithParamAllowList restricts the top-level body members sent upstream
// on surface s to params (ASCII and Unicode case-insensitive): every other
// member is removed and reported in Llmgate-Removed-Params and
// Event.RemovedParams, except those the gateway needs (model, stream, and
// per surface messages, stream_options, input, and the messages API's
// max_tokens), the members a RequestPolicy sets, and the one maximum
// output field that bounds the answer (see RequestPolicy.Deny). The list
// applies to
// the body the upstream receives: a chat completions request served by an
// Anthropic model is checked against the messages list, after
// translation. No params allows only the members the gateway needs. The
// last call for a surface wins; without one, every member passes.
func WithParamAllowList(s providers.Surface, params ...string) Option {
	params = slices.Clone(params)
	return optionFunc(func(c *config) error {
		if s.Format() == "" {
			return &OptionError{Option: "WithParamAllowList", Field: string(s),
				Err: fmt.Errorf("unknown API surface %q (want chat-completions, responses, embeddings or messages)", s)}
		}
		var errs []error
		for i, p := range params {
			if p == "" {
				errs = append(errs, &OptionError{Option: "WithParamAllowList", Field: string(s) + "[" + strconv.Itoa(i) + "]",
					Err: errors.New("parameter name is empty")})
			}
		}
		if len(errs) > 0 {
			return errors.Join(errs...)
		}
		if c.allowLists == nil {
			c.allowLists = map[providers.Surface][]string{}
		}
		c.allowLists[s] = append(make([]string, 0, len(params)), params...)
		return nil
	})
}

// unsettable are the members a policy cannot set: the gateway routes on
// them, rewrites them or sizes credit holds from them.
var unsettable = [...]string{"model", "models", "stream", "stream_options", "messages", "input",
	"max_tokens", "max_completion_tokens", "max_output_tokens"}

// undeniable are the members the gateway needs on every surface that has
// them.
var undeniable = [...]string{"model", "stream", "stream_options", "messages", "input"}

// kept reports whether the member the gateway needs on surface s: no
// policy removes it.
func kept(s providers.Surface, m *jsonx.Member) bool {
	switch {
	case m.KeyIs("model"), m.KeyIs("stream"):
		return true
	case m.KeyIs("messages"):
		return s == providers.SurfaceChatCompletions || s == providers.SurfaceMessages
	case m.KeyIs("stream_options"):
		return s == providers.SurfaceChatCompletions
	case m.KeyIs("input"):
		return s == providers.SurfaceResponses || s == providers.SurfaceEmbeddings
	case m.KeyIs("max_tokens"):
		return s == providers.SurfaceMessages
	}
	return false
}

// validatePolicy checks one policy of the pi-th WithProvider option;
// field names it ("Policy" or `ModelPolicies["gpt-4o"]`).
func validatePolicy(pi int, id, field string, p *RequestPolicy) []error {
	var errs []error
	fail := func(sub, format string, args ...any) {
		errs = append(errs, providerErr(pi, id, field+"."+sub, format, args...))
	}
	for _, name := range slices.Sorted(maps.Keys(p.Headers)) {
		sub := "Headers[" + strconv.Quote(name) + "]"
		switch canon := http.CanonicalHeaderKey(name); {
		case !httpx.ValidHeaderName(name):
			fail(sub, "%q is not a valid header name", name)
		case httpx.Reserved(canon):
			fail(sub, "header %s is managed by the provider and cannot be set", canon)
		case !httpx.ValidHeaderValue(p.Headers[name]):
			fail(sub, "header %s has a value with control characters", canon)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(p.QueryParams)) {
		if name == "" {
			fail(`QueryParams[""]`, "query parameter names must not be empty")
		}
	}
	setNames := slices.Sorted(maps.Keys(p.Set))
	for i, name := range setNames {
		sub := "Set[" + strconv.Quote(name) + "]"
		switch {
		case name == "":
			fail(sub, "member names must not be empty")
		case slices.ContainsFunc(unsettable[:], func(u string) bool { return strings.EqualFold(u, name) }):
			msg := "%s cannot be set: the gateway routes on it or bounds the request with it"
			if strings.HasPrefix(strings.ToLower(name), "max_") {
				msg = "%s cannot be set: bound the answer with MaxOutputTokens"
			}
			fail(sub, msg, name)
		case i > 0 && strings.EqualFold(setNames[i-1], name):
			fail(sub, "%q and %q differ only in case: set one", setNames[i-1], name)
		case jsonx.Valid(p.Set[name]) != nil:
			fail(sub, "value is not valid JSON: %v", jsonx.Valid(p.Set[name]))
		}
	}
	for i, name := range p.Deny {
		sub := "Deny[" + strconv.Itoa(i) + "]"
		switch {
		case name == "":
			fail(sub, "member names must not be empty")
		case slices.ContainsFunc(undeniable[:], func(u string) bool { return strings.EqualFold(u, name) }):
			fail(sub, "%s cannot be denied: the gateway needs it", name)
		case slices.ContainsFunc(setNames, func(s string) bool { return strings.EqualFold(s, name) }):
			fail(sub, "%s is both denied and set", name)
		}
	}
	if p.MaxOutputTokens < 0 {
		fail("MaxOutputTokens", "must not be negative, got %d", p.MaxOutputTokens)
	}
	return errs
}

// validatePolicies checks the policies of the pi-th WithProvider option.
func validatePolicies(pi int, pc *ProviderConfig) []error {
	errs := validatePolicy(pi, pc.ID, "Policy", &pc.Policy)
	for _, key := range slices.Sorted(maps.Keys(pc.ModelPolicies)) {
		p := pc.ModelPolicies[key]
		field := "ModelPolicies[" + strconv.Quote(key) + "]"
		if strings.TrimSpace(key) == "" {
			errs = append(errs, providerErr(pi, pc.ID, field, "model ID is empty"))
			continue
		}
		errs = append(errs, validatePolicy(pi, pc.ID, field, &p)...)
	}
	return errs
}

// policy is a RequestPolicy compiled for a provider, or for one of its
// models (merged with the provider's). Immutable; shared by requests.
type policy struct {
	deny     []string    // member names, matched case-insensitively
	set      []setMember // by name
	setBytes int64       // the size of the set members: a bound on the prompt tokens they add
	maxOut   int         // 0: no clamp
	header   http.Header // providers.Request.ExtraHeader; nil: none
	query    url.Values  // providers.Request.ExtraQuery; nil: none
}

// setMember is one member a policy sets.
type setMember struct {
	name   string // lower-case, for matching
	member []byte // `"name":value` as configured, compact
}

// allowList is a surface's WithParamAllowList.
type allowList struct{ names []string } // lower-case

// policy returns the request policy of the candidate's model, else of its
// provider; nil when there is none.
func (c *candidate) policy() *policy {
	if c.model != nil && c.up.modelPolicies != nil {
		if p := c.up.modelPolicies[c.model]; p != nil {
			return p
		}
	}
	return c.up.policy
}

// extraInput bounds the prompt tokens the candidate's policy adds to the
// request.
func (c *candidate) extraInput() int64 {
	if p := c.policy(); p != nil {
		return p.setBytes
	}
	return 0
}

// compilePolicies compiles the provider's policy and its models' (merged
// with it), resolving the models in cp. For a custom transport the
// provider's query parameters travel with each request; the built-in
// transports have them in their configuration (newTransport).
func (up *upstream) compilePolicies(cp *catalog.Provider, pc *ProviderConfig) error {
	custom := pc.Provider != nil
	up.policy = compilePolicy(&pc.Policy, nil, custom)
	var errs []error
	seen := map[*catalog.Model]string{}
	for _, key := range slices.Sorted(maps.Keys(pc.ModelPolicies)) {
		mp := pc.ModelPolicies[key]
		field := "ModelPolicies[" + strconv.Quote(key) + "]"
		m, ok := cp.Model(key)
		switch {
		case strings.TrimSpace(key) == "":
			continue // validatePolicies reports it
		case !ok:
			errs = append(errs, providerErr(pc.index, pc.ID, field, "unknown model %q: provider %s has no such model in the catalog or in Models", key, cp.ID))
			continue
		case seen[m] != "":
			errs = append(errs, providerErr(pc.index, pc.ID, field, "model %q is %s, which ModelPolicies[%q] configures too", key, m.ID, seen[m]))
			continue
		}
		seen[m] = key
		if up.modelPolicies == nil {
			up.modelPolicies = map[*catalog.Model]*policy{}
		}
		if p := compilePolicy(&pc.Policy, &mp, custom); p != nil {
			up.modelPolicies[m] = p
		}
	}
	return errors.Join(errs...)
}

// compilePolicy merges model (nil for none) over prov and compiles the
// result; nil when it changes nothing. Invalid entries (reported by
// validatePolicies) are left out.
func compilePolicy(prov, model *RequestPolicy, custom bool) *policy {
	if model == nil {
		model = &RequestPolicy{}
	}
	if prov.IsZero() && model.IsZero() {
		return nil
	}
	p := &policy{maxOut: max(prov.MaxOutputTokens, 0)}
	if model.MaxOutputTokens > 0 {
		p.maxOut = model.MaxOutputTokens
	}
	for _, h := range []map[string]string{prov.Headers, model.Headers} {
		for name, v := range h {
			if httpx.ValidHeaderName(name) && !httpx.Reserved(http.CanonicalHeaderKey(name)) && httpx.ValidHeaderValue(v) {
				if p.header == nil {
					p.header = http.Header{}
				}
				p.header[http.CanonicalHeaderKey(name)] = []string{v}
			}
		}
	}
	queries := []map[string]string{model.QueryParams}
	if custom {
		queries = []map[string]string{prov.QueryParams, model.QueryParams}
	}
	for _, q := range queries {
		for name, v := range q {
			if name != "" {
				if p.query == nil {
					p.query = url.Values{}
				}
				p.query[name] = []string{v}
			}
		}
	}
	// The model's Set and Deny override the provider's: a member the
	// provider sets and the model denies is removed, and one the provider
	// denies and the model sets is set.
	set := map[string]json.RawMessage{}
	for name, v := range prov.Set {
		if !slices.ContainsFunc(model.Deny, func(d string) bool { return strings.EqualFold(d, name) }) {
			set[name] = v
		}
	}
	for name, v := range model.Set {
		for old := range set {
			if strings.EqualFold(old, name) {
				delete(set, old) // the model's spelling wins
			}
		}
		set[name] = v
	}
	for _, name := range slices.Sorted(maps.Keys(set)) {
		v := set[name]
		if name == "" || jsonx.Valid(v) != nil || slices.ContainsFunc(unsettable[:], func(u string) bool { return strings.EqualFold(u, name) }) {
			continue
		}
		member := append(jsonx.AppendQuote(nil, name), ':')
		member = jsonx.AppendCompact(member, bytes.TrimSpace(v))
		p.set = append(p.set, setMember{name: strings.ToLower(name), member: member})
		p.setBytes += int64(len(member)) + 1
	}
	for _, d := range slices.Concat(prov.Deny, model.Deny) {
		if d == "" || slices.ContainsFunc(p.deny, func(x string) bool { return strings.EqualFold(x, d) }) ||
			slices.ContainsFunc(p.set, func(s setMember) bool { return strings.EqualFold(s.name, d) }) {
			continue
		}
		p.deny = append(p.deny, strings.ToLower(d))
	}
	return p
}

// newAllowLists compiles the WithParamAllowList options.
func newAllowLists(lists map[providers.Surface][]string) map[providers.Surface]*allowList {
	if len(lists) == 0 {
		return nil
	}
	out := make(map[providers.Surface]*allowList, len(lists))
	for s, names := range lists {
		l := &allowList{names: make([]string, len(names))}
		for i, n := range names {
			l.names[i] = strings.ToLower(n)
		}
		out[s] = l
	}
	return out
}

// memberIs reports whether the member's key is name (lower-case), ASCII
// and Unicode case-insensitively. Keys with no upper-case letter, escape
// or non-ASCII byte (all real ones) are compared without decoding.
func memberIs(m *jsonx.Member, name string) bool {
	if m.KeyIs(name) {
		return true
	}
	// A character of name is at most six bytes of key ("\u017f", the long
	// s that folds to "s").
	if len(m.Key) < 2 || len(m.Key)-2 > 6*len(name) {
		return false
	}
	folds := false
	for _, b := range m.Key[1 : len(m.Key)-1] {
		if b >= 'A' && b <= 'Z' || b == '\\' || b >= 0x80 {
			folds = true
			break
		}
	}
	if !folds {
		return false
	}
	k, ok := jsonx.Unquote(m.Key)
	return ok && strings.EqualFold(k, name)
}

// inList reports whether the member's key is one of names.
func inList(m *jsonx.Member, names []string) bool {
	for _, n := range names {
		if memberIs(m, n) {
			return true
		}
	}
	return false
}

// strips reports whether a body member called name would be removed by
// pol or allow.
func strips(name string, pol *policy, allow *allowList) bool {
	denied := pol != nil && slices.ContainsFunc(pol.deny, func(d string) bool { return strings.EqualFold(d, name) })
	return denied || allow != nil && !slices.ContainsFunc(allow.names, func(a string) bool { return strings.EqualFold(a, name) })
}

// maxRemovedReported bounds the names one request reports as removed: an
// allow-list strips whatever keys a client invents.
const maxRemovedReported = 32

// applyPolicy returns body (an object in surface s's format, valid JSON)
// with the members pol denies or allow does not list removed, and pol's
// Set members in place of the client's (the first occurrence replaced,
// case variants removed) or, when absent, added first. keep names the
// maximum output field the gateway bounds the answer with: it is never
// removed. removed names the members removed; maxOut is the smallest
// positive integer among removed maximum output fields (0 when none),
// which must still bound the answer. body is returned as is when nothing
// changes.
func applyPolicy(body []byte, s providers.Surface, pol *policy, allow *allowList, keep string) (out []byte, removed []string, maxOut int64) {
	var set []setMember
	var deny []string
	if pol != nil {
		set, deny = pol.set, pol.deny
	}
	var done uint64 // bit i: set[i] was placed; beyond 64 members, see placed
	var placed []bool
	if len(set) > 64 {
		placed = make([]bool, len(set))
	}
	isPlaced := func(i int) bool { return i < 64 && done&(1<<i) != 0 || i >= 64 && placed[i] }
	markPlaced := func(i int) {
		if i < 64 {
			done |= 1 << i
		} else {
			placed[i] = true
		}
	}
	var edits []bodyEdit
	_ = jsonx.Members(body, func(m jsonx.Member) bool {
		for i := range set {
			if !memberIs(&m, set[i].name) {
				continue
			}
			e := bodyEdit{span: span{m.Start, m.End}, del: true}
			if !isPlaced(i) {
				markPlaced(i)
				e = bodyEdit{span: e.span, repl: string(set[i].member)}
			}
			edits = append(edits, e)
			return true
		}
		if kept(s, &m) || keep != "" && m.KeyIs(keep) {
			return true
		}
		if !inList(&m, deny) && (allow == nil || inList(&m, allow.names)) {
			return true
		}
		edits = append(edits, bodyEdit{span: span{m.Start, m.End}, del: true})
		if m.KeyIs("max_tokens") || m.KeyIs("max_completion_tokens") || m.KeyIs("max_output_tokens") {
			if n, err := strconv.ParseInt(string(m.Value), 10, 64); err == nil && n > 0 && (maxOut == 0 || n < maxOut) {
				maxOut = n
			}
		}
		removed = appendRemoved(removed, m.Name())
		return true
	})
	added := 0
	for i := range set {
		if !isPlaced(i) {
			added += len(set[i].member) + 1
		}
	}
	if len(edits) == 0 && added == 0 {
		return body, nil, 0
	}
	open := bytes.IndexByte(body, '{')
	out = make([]byte, 0, len(body)+added)
	out = append(out, body[:open+1]...)
	for i := range set {
		if !isPlaced(i) {
			out = append(append(out, set[i].member...), ',')
		}
	}
	out, pos := applyEdits(out, body, open+1, edits)
	out = append(out, body[pos:]...)
	if added > 0 {
		// The added members followed by an object now empty leave a
		// trailing comma: {"temperature":0,}.
		k := lastNonSpace(out, len(out)-1)
		if j := lastNonSpace(out, k-1); k > 0 && out[k] == '}' && j >= 0 && out[j] == ',' {
			out = append(out[:j], out[k:]...)
		}
	}
	return out, removed, maxOut
}

// appendRemoved adds a removed member's name to names, once, in a form
// fit for a header: printable ASCII names as they are, others quoted.
func appendRemoved(names []string, name string) []string {
	if len(names) > maxRemovedReported {
		return names
	}
	if len(names) == maxRemovedReported {
		return append(names, "…")
	}
	plain := name != "" && len(name) <= 64
	for i := 0; i < len(name) && plain; i++ {
		c := name[i]
		plain = c > ' ' && c < 0x7f && c != ',' && c != '"' && c != '\\'
	}
	if !plain {
		name = strconv.QuoteToASCII(truncate(name, 64))
	}
	if slices.Contains(names, name) {
		return names
	}
	return append(names, name)
}

// mergeRemoved returns the names of a and b, each once, in order.
func mergeRemoved(a, b []string) []string {
	if len(a) == 0 {
		return b
	}
	out := slices.Clone(a)
	for _, n := range b {
		if !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out
}

// applyPolicies applies the candidate's request policy and the surface's
// allow-list to p.body, then caps its maximum output tokens: the smallest
// of the request's cap (WithTokenLimits, credits), the policy's clamp and
// a client maximum the policy removed.
func (c *call) applyPolicies(p *prepared) {
	n := c.outCap
	allow := c.rt.allow[p.route.surface]
	field := ""
	if p.pol != nil || allow != nil {
		if p.route.surface != providers.SurfaceEmbeddings {
			field = policyOutputField(p.route.surface, p.cand.up, p.pol, allow)
		}
		body, removed, strippedMax := applyPolicy(p.body, p.route.surface, p.pol, allow, field)
		p.body = body
		if len(removed) > 0 {
			p.removed = mergeRemoved(p.removed, removed)
		}
		if strippedMax > 0 && (n == 0 || strippedMax < n) {
			n = strippedMax
		}
		if p.pol != nil && p.pol.maxOut > 0 && (n == 0 || int64(p.pol.maxOut) < n) {
			n = int64(p.pol.maxOut)
			p.capped = n
		}
	}
	if n > 0 && p.route.surface != providers.SurfaceEmbeddings {
		if field == "" {
			field = outputField(p.route.surface, p.cand.up)
		}
		p.body = capMaxOutput(p.body, n, field)
	}
}

// policyOutputField is the field that bounds the answer of a request
// under a policy: outputField, unless the policy strips that field from
// chat completions and leaves the other one. It is never stripped: a
// client's maximum in a stripped field moves there. The messages API
// requires max_tokens and the responses API has one field.
func policyOutputField(s providers.Surface, up *upstream, pol *policy, allow *allowList) string {
	f := outputField(s, up)
	if s != providers.SurfaceChatCompletions || !strips(f, pol, allow) {
		return f
	}
	other := "max_tokens"
	if f == other {
		other = "max_completion_tokens"
	}
	if !strips(other, pol, allow) {
		return other
	}
	return f
}
