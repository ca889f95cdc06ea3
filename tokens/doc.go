// Package tokens counts and collects token usage for metering: it reads the
// usage providers report in JSON responses and streams, and counts tokens
// locally when a number is needed before or without a report.
//
// Four tools, from cheapest to exact:
//
//   - UpperBound: a bound on a request's billed input tokens from its size
//     and its media parts, in one pass over the bytes, to size a credit hold
//     without delaying the upstream call.
//   - QuickCount and QuickEstimate*: an estimate close to tiktoken's count
//     (QuickCount documents its error bands), at hundreds of MB/s, for
//     numbers shown before the response (Anthropic's message_start
//     input_tokens) and for routing. It is no bound: it can be above or
//     below the exact count.
//   - Counter: tiktoken's exact count (cl100k_base and o200k_base), at a few
//     MB/s, bounded at DefaultMaxCountBytes of text per count; for limits
//     that need it (max input tokens, a balance too small for the bound).
//   - OutputCounter: the text a response delivered, counted with a Counter
//     when the provider reports no output (an interrupted stream).
//
// Provider-reported usage (OpenAIUsage, AnthropicUsage, StreamTap) always
// wins over local counts for billing.
//
// # Encodings
//
// Counts use tiktoken's encodings: o200k_base for OpenAI's GPT-4o and later
// models, cl100k_base for GPT-4 and GPT-3.5 (catalog models carry their
// Encoding; EncodingFor picks one for models the catalog does not know).
// Other providers' models are counted in cl100k_base as an approximation:
// Claude, Llama, Gemini, Mistral and the others have tokenizers of their
// own, which give counts that differ by roughly 10 to 20% either way
// (more for code and for languages other than English), so local counts
// for them are estimates. UpperBound holds for every byte-level tokenizer.
//
// Everything here is safe for concurrent use except the stream readers
// (StreamTap, OutputCounter), which follow one response each. The package
// imports nothing else from llmgate.
package tokens
