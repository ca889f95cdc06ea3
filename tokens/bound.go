package tokens

import "bytes"

// DefaultPartAllowance is the number of tokens UpperBound allows for each
// media part of a request (an image, audio clip, file or document) and for
// each tool list. Providers bill media by pixels, duration or pages, not by
// the bytes of the request, where a URL or a file ID takes a few bytes. The
// allowance covers one image on the chat models the gateway routes: at most
// 1,445 tokens on gpt-4o and gpt-4.1 (eight 512-pixel tiles of 170 tokens
// plus 85), 1,275 on o1 and o3, up to about 3,800 on the models billed by
// 32-pixel patches (1,536 patches times 2.46 on gpt-4.1-nano and
// gpt-5-nano), and about 1,600 on Claude (which resizes images to about
// 1.15 megapixels and bills width×height/750). For tools it covers the
// system prompt providers add when tools are present (Anthropic documents
// 159 to 530 tokens) plus Anthropic's built-in bash, text editor and
// computer tools (245, 700 and about 1,200 more).
//
// It does not cover gpt-4o-mini's images (up to 48,169 tokens each at high
// detail: its tokens are priced 33 times lower), documents of more than a
// page or two (Anthropic and OpenAI bill every page of a PDF as its text
// plus an image of it), or video; use UpperBoundWith with a larger
// allowance where those matter.
const DefaultPartAllowance = 4000

// UpperBound returns an upper bound on the input tokens a provider bills
// for an OpenAI chat completions or Anthropic messages request body:
//
//	len(body) + 3 + DefaultPartAllowance × (media parts + tool lists)
//
// without parsing the body, in one pass over it (a fraction of a
// nanosecond per byte: microseconds for a large request), so that a credit
// hold can be sized from it before the upstream call. It is at least what
// Counter.EstimateOpenAIChat and Counter.EstimateAnthropicMessages count
// for the body, whatever the body (FuzzUpperBound checks it). For a typical
// English conversation it is about four times the exact count; count
// exactly (off the hot path) only when a limit needs a tighter number.
//
// Why it bounds:
//
//   - Text. Every token of a byte-level BPE encoding (tiktoken's, Claude's,
//     Llama 3's) stands for at least one byte of text, and so does every
//     token of a SentencePiece encoding with byte fallback (Gemini, Llama 2,
//     Mistral), so a text has at most as many tokens as bytes. The text of
//     a JSON string is never longer than the literal in the body (escapes
//     decode to fewer bytes), except that an invalid UTF-8 byte decodes to
//     U+FFFD (3 bytes), which is a single token in cl100k_base and
//     o200k_base, a run of them fewer: still at most a token per byte of
//     the literal. Tool definitions, calls and inputs are tokenized as the
//     JSON they are written as.
//   - Overhead. The estimators add 3 tokens per message and 3 to prime the
//     reply (the overhead OpenAI documents). The 3 for the reply are the
//     "+ 3"; each message is an object, whose braces and the ',' or ']'
//     after it are 3 bytes of the body that belong to no text. A
//     provider's own chat template adds a few tokens per turn (role markers
//     and separators, 3 to 5 tokens in the published templates), which the
//     "role":"user" member every message carries (13 bytes or more) pays
//     for.
//   - Parts. Media are billed by size, not bytes (see DefaultPartAllowance):
//     each object whose "type" is "image_url", "input_audio", "file",
//     "image", "document", "input_image", "input_file" or "video_url" adds
//     the allowance, and so does each non-empty "tools", "functions" or
//     "mcp_servers" list. Whitespace around the colons is allowed. Base64
//     data is in the body, whose bytes bound it anyway.
//
// Not bounded: content the provider adds on its side beyond the allowance,
// such as web search or fetch results, the tools of an MCP server, long
// documents passed by URL or file ID, and the media DefaultPartAllowance
// does not cover. Provider-reported usage settles the real cost.
//
// It is safe for concurrent use and does not allocate.
func UpperBound(body []byte) int64 {
	return UpperBoundWith(body, DefaultPartAllowance)
}

// UpperBoundWith is UpperBound with perPart tokens (0 or more) allowed for
// each media part and tool list instead of DefaultPartAllowance.
func UpperBoundWith(body []byte, perPart int64) int64 {
	return int64(len(body)) + tokensPerReply + int64(countParts(body))*max(perPart, 0)
}

// partTypes are the values of "type" that name a media part, with their
// closing quote.
var partTypes = [...]string{
	`image_url"`, `image"`, `input_audio"`, `input_image"`, `input_file"`,
	`file"`, `document"`, `video_url"`,
}

// countParts counts the media parts and tool lists of a body: the "type"
// keys whose value is a part type, and the keys "tools", "functions" and
// "mcp_servers" whose value is a non-empty array. It visits each quote of
// the body (bytes.IndexByte between them) and looks further only after a
// quote followed by "ty", "to", "fu" or "mc".
//
// In valid JSON a match cannot come from inside a string: a quote inside a
// string is escaped, so a key there reads \"type\" and is not followed
// by an unescaped quote. A false match, from invalid JSON or from the input
// of a tool call, only makes the bound larger.
func countParts(b []byte) int {
	n := 0
	for i := 0; ; {
		j := bytes.IndexByte(b[i:], '"')
		if j < 0 || i+j+3 > len(b) {
			return n
		}
		i += j + 1 // the byte after the quote
		var key string
		switch string(b[i : i+2]) {
		case "ty":
			key = `type"`
		case "to":
			key = `tools"`
		case "fu":
			key = `functions"`
		case "mc":
			key = `mcp_servers"`
		default:
			continue
		}
		if len(b)-i < len(key) || string(b[i:i+len(key)]) != key {
			continue
		}
		i += len(key)
		if key[1] == 'y' && partType(b, i) || key[1] != 'y' && nonEmptyArrayValue(b, i) {
			n++
		}
	}
}

// partType reports whether b[p:] follows a "type" key with a part type as
// its value (whitespace allowed around the colon), unless the key is the
// first of the "source" object of an Anthropic image or document (whose
// "type" can be "file").
func partType(b []byte, p int) bool {
	p = skipSpace(b, p)
	if p >= len(b) || b[p] != ':' {
		return false
	}
	p = skipSpace(b, p+1)
	if p >= len(b) || b[p] != '"' {
		return false
	}
	rest := b[p+1:]
	found := false
	for _, t := range &partTypes {
		if len(rest) >= len(t) && string(rest[:len(t)]) == t {
			found = true
			break
		}
	}
	if !found {
		return false
	}
	// The key starts len(`"type"`) before its end; before it come
	// '{', ':' and "source" in a source object.
	k := skipSpaceBack(b, p-1) // at the colon
	k = skipSpaceBack(b, k-1)  // at the key's closing quote
	if k = skipSpaceBack(b, k-len(`"type"`)); k < 0 || b[k] != '{' {
		return true
	}
	if k = skipSpaceBack(b, k-1); k < 0 || b[k] != ':' {
		return true
	}
	k = skipSpaceBack(b, k-1)
	return k < 7 || string(b[k-7:k+1]) != `"source"`
}

// skipSpace returns the offset of the first byte at or after b[p] that is
// not whitespace, or len(b).
func skipSpace(b []byte, p int) int {
	for p < len(b) && isSpace(b[p]) {
		p++
	}
	return p
}

// skipSpaceBack returns the offset of the last byte at or before b[k] that
// is not whitespace, or -1.
func skipSpaceBack(b []byte, k int) int {
	for k >= 0 && isSpace(b[k]) {
		k--
	}
	return k
}

// isSpace reports whether c is JSON whitespace.
func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// nonEmptyArrayValue reports whether a ':' and a non-empty array come at
// b[p:] (whitespace allowed).
func nonEmptyArrayValue(b []byte, p int) bool {
	p = skipSpace(b, p)
	if p >= len(b) || b[p] != ':' {
		return false
	}
	p = skipSpace(b, p+1)
	if p >= len(b) || b[p] != '[' {
		return false
	}
	p = skipSpace(b, p+1)
	return p < len(b) && b[p] != ']'
}
