// Package redaction finds and replaces text in what passes through an AI
// gateway: request bodies before they are routed, buffered responses, and
// streamed answers event by event as they pass.
//
// A Rule is a find-and-replace pair — an RE2 pattern (Go's regexp syntax)
// and a replacement that may use its groups ($1, ${name}; empty deletes
// the match) — or a built-in preset: "email", "phone" (North American and
// international), "us_ssn", "payment_card" (Luhn-checked: a digit run
// that fails the check is left alone), "ip_address" (IPv4 and IPv6) and
// "api_key" (OpenAI, Anthropic, AWS, GitHub, GitLab, Slack, Stripe and
// Google keys, and bearer tokens). Compile checks a list of rules,
// reporting every problem at once, and returns a Redactor.
//
// # Semantics
//
// A Redactor replaces every match of every rule in one pass over a text:
// at each point the leftmost match wins, then the longest, then the rule
// listed first. Replacement text is never scanned again, by its rule or
// another; and the text around a replacement is judged as the input had
// it, so a rule that wants a boundary (\b) or, for a preset, a separator
// before its match sees the input's character, not the replacement's.
// Counts record how many replacements each rule made — never what was
// matched.
//
// Rules apply to the text a person reads, not to JSON syntax. JSON applies
// them inside each string value of a document, decoded (so "\u0040" is an
// @), and writes back only the strings that change, quoted as
// encoding/json quotes them; a rule cannot break the document.
//
// # Streams
//
// A model's answer arrives as many small chunks, and a match can be split
// across two of them. A Stream redacts a text chunk by chunk; an
// EventStream does the same for the text of an OpenAI chat completion or
// Anthropic Messages event stream, event by event, rewriting only the
// text field of an event and passing every other event — and every event
// whose text does not change — through as it is.
//
// In the AcrossChunks mode (the default) a stream holds back the end of a
// chunk while it could still be the beginning of a match, and only that:
// a lazily built automaton over the reversed prefixes of every rule finds
// the shortest such suffix, scanning back from the chunk's end. What a
// stream sends, concatenated, is then exactly what Text returns for the
// whole text, however the text was cut, as long as each match fits in its
// rule's MaxMatch (a pattern's own bound, such as a preset's, or
// DefaultMaxMatch bytes for a pattern without one, like `key=\S+`): a
// longer match may be missed when it is split. With presets such as email,
// whose matches may begin with any word, the last word of most chunks is
// held back until the next one arrives. The PerChunk mode redacts each
// chunk on its own and holds nothing back, as a find-and-replace applied
// to each SSE message does; it misses split matches.
//
// # Cost
//
// A forward automaton over every rule at once decides whether any rule
// could match a piece of text before a regexp runs, so text without
// matches costs a table walk and no allocation, and Text, Bytes and JSON
// return their input itself. The automata are built as text is seen,
// shared by every stream of a Redactor, and safe for concurrent use.
// Bounded patterns are searched in a window of their longest match, so a
// text full of near-matches costs time linear in its length. Events of a
// stream are mostly read from the bytes they share with the previous one.
package redaction
