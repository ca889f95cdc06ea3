package tokens

import "strings"

// o200kPrefixes are the model ID prefixes of the OpenAI models tokenized
// with o200k_base. The catalog gives its models without an encoding the
// same default (catalog.defaultEncoding; TestEncodingForMatchesCatalog
// keeps the two in step).
var o200kPrefixes = [...]string{"gpt-4o", "gpt-4.1", "gpt-4.5", "gpt-5", "gpt-oss", "chatgpt-4o", "o1", "o3", "o4", "codex-"}

// EncodingFor returns the encoding to count a model's tokens with, for a
// model the catalog does not know (a "provider:model" pass-through;
// catalog models carry their own Encoding): EncodingO200K for OpenAI's
// GPT-4o, GPT-4.1, GPT-4.5, GPT-5, o1, o3, o4, codex and gpt-oss models, and
// EncodingCL100K for everything else, GPT-4, GPT-3.5 and the models of
// other providers (an approximation for those: see the package
// documentation). The ID is matched ASCII case-insensitively, after any
// "author/" prefix and a fine-tune's "ft:" prefix. It does not allocate.
func EncodingFor(model string) string {
	if i := strings.LastIndexByte(model, '/'); i >= 0 {
		model = model[i+1:]
	}
	if len(model) > 3 && strings.EqualFold(model[:3], "ft:") {
		model = model[3:]
	}
	for _, p := range &o200kPrefixes {
		if len(model) >= len(p) && strings.EqualFold(model[:len(p)], p) {
			return EncodingO200K
		}
	}
	return EncodingCL100K
}
