// Package strategies holds the model selection strategies of the load
// benchmark's "llmgate + 3 CEL strategies" path, shared by the proxy
// (bench/cmd/proxy -strategies), which configures them, and the driver,
// which prints them in the report.
package strategies

// Exprs returns the three CEL model selection strategies the proxy passes
// to gateway.WithModelSelection with -strategies, in order; a new slice on
// each call. The benchmark's requests name their models (gpt-4o-mini,
// claude-haiku-4-5), so strategies can only remove models from them: the
// first two yield nothing for those requests, so that every request
// evaluates all three over the whole built-in catalog, and the third keeps
// them (both cost under $3 per million input tokens). The first reads the
// request (a header), so it is evaluated for every request; the gateway reuses the results of the other two, which read
// nothing of the request, for a metrics refresh period. Safe for
// concurrent use.
func Exprs() []string {
	return []string{
		"request.header('x-llmgate-tier') == 'long' ? ai.models.filter(m, m.max_context_window >= 400000 && m.metrics.error_rate.total < 0.5) : []",
		"ai.models.filter(m, m.max_context_window >= 1000000 && 'vision' in m.supported_features).onlyProviders(['groq'])",
		"ai.models.underCost('text.input', 3.0).sortBy(m, m.pricing.input)",
	}
}
