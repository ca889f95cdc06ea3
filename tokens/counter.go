package tokens

import (
	"errors"
	"fmt"
	"sync"

	"github.com/tiktoken-go/tokenizer"

	"github.com/llmgate/gateway/internal/jsonx"
)

// Encodings understood by Counter (tiktoken names).
const (
	EncodingO200K  = "o200k_base"
	EncodingCL100K = "cl100k_base"
)

// DefaultMaxCountBytes bounds the text a Counter tokenizes for one count.
// BPE is superlinear on long unbroken runs, so longer inputs are tokenized
// up to the bound and the rest estimated at 4 bytes per token.
const DefaultMaxCountBytes = 1 << 20

// ErrUnknownEncoding reports an encoding Counter does not know.
var ErrUnknownEncoding = errors.New("tokens: unknown encoding")

// Counter counts tokens with tiktoken. It builds each encoding's codec once,
// on first use (building one compiles a large regular expression and loads
// its vocabulary), and is safe for concurrent use. The zero value is not
// usable; create one with NewCounter.
type Counter struct {
	maxBytes int
	o200k    lazyCodec
	cl100k   lazyCodec
}

type lazyCodec struct {
	once  sync.Once
	codec tokenizer.Codec
	err   error
}

func (l *lazyCodec) get(enc tokenizer.Encoding) (tokenizer.Codec, error) {
	l.once.Do(func() { l.codec, l.err = tokenizer.Get(enc) })
	return l.codec, l.err
}

// NewCounter returns a Counter that tokenizes at most DefaultMaxCountBytes
// of text per count.
func NewCounter() *Counter { return &Counter{maxBytes: DefaultMaxCountBytes} }

func (c *Counter) codec(encoding string) (tokenizer.Codec, error) {
	switch encoding {
	case EncodingO200K:
		return c.o200k.get(tokenizer.O200kBase)
	case EncodingCL100K, "":
		return c.cl100k.get(tokenizer.Cl100kBase)
	}
	return nil, fmt.Errorf("%w %q", ErrUnknownEncoding, encoding)
}

// Count returns the number of tokens of text in the encoding ("" means
// cl100k_base). Text beyond the Counter's bound is estimated at 4 bytes per
// token.
func (c *Counter) Count(encoding, text string) (int, error) {
	codec, err := c.codec(encoding)
	if err != nil {
		return 0, err
	}
	extra := 0
	if len(text) > c.maxBytes {
		cut := c.maxBytes
		for cut > 0 && text[cut]&0xC0 == 0x80 { // keep whole runes
			cut--
		}
		extra = (len(text) - cut + 3) / 4
		text = text[:cut]
	}
	n, err := codec.Count(text)
	if err != nil {
		return 0, err
	}
	return n + extra, nil
}

// Per-message overhead of chat formats: OpenAI documents 3 tokens per
// message plus 3 to prime the reply; Anthropic's is similar.
const (
	tokensPerMessage = 3
	tokensPerReply   = 3
)

// EstimateOpenAIChat estimates the prompt tokens of an OpenAI chat
// completions request body: the text of every message (string content and
// text parts), tool definitions and per-message overhead. Images and other
// non-text parts are not counted. It never fails: unreadable input
// estimates at 4 bytes per token.
func (c *Counter) EstimateOpenAIChat(encoding string, body []byte) int64 {
	var n int64 = tokensPerReply
	err := jsonx.Members(body, func(m jsonx.Member) bool {
		switch {
		case m.KeyIs("messages"):
			_ = jsonx.Elements(m.Value, func(msg []byte) bool {
				n += tokensPerMessage
				_ = jsonx.Members(msg, func(f jsonx.Member) bool {
					if f.KeyIs("content") || f.KeyIs("name") {
						n += c.textTokens(encoding, f.Value)
					} else if f.KeyIs("tool_calls") {
						n += c.rawTokens(encoding, f.Value)
					}
					return true
				})
				return true
			})
		case m.KeyIs("tools"), m.KeyIs("functions"):
			n += c.rawTokens(encoding, m.Value)
		}
		return true
	})
	if err != nil {
		return int64(len(body)+3) / 4
	}
	return n
}

// EstimateAnthropicMessages estimates the input tokens of an Anthropic
// messages request body: system, every message's text blocks, tool uses and
// results, tool definitions and per-message overhead.
func (c *Counter) EstimateAnthropicMessages(encoding string, body []byte) int64 {
	var n int64 = tokensPerReply
	err := jsonx.Members(body, func(m jsonx.Member) bool {
		switch {
		case m.KeyIs("system"):
			n += c.textTokens(encoding, m.Value)
		case m.KeyIs("messages"):
			_ = jsonx.Elements(m.Value, func(msg []byte) bool {
				n += tokensPerMessage
				_ = jsonx.Members(msg, func(f jsonx.Member) bool {
					if f.KeyIs("content") {
						n += c.textTokens(encoding, f.Value)
					}
					return true
				})
				return true
			})
		case m.KeyIs("tools"):
			n += c.rawTokens(encoding, m.Value)
		}
		return true
	})
	if err != nil {
		return int64(len(body)+3) / 4
	}
	return n
}

// textTokens counts a content value: a string, or an array of parts whose
// "text" (and, for tool results and uses, nested content and input) count.
func (c *Counter) textTokens(encoding string, v []byte) int64 {
	switch jsonx.KindOf(v) {
	case jsonx.String:
		s, _ := jsonx.Unquote(v)
		return c.count(encoding, s)
	case jsonx.Array:
		var n int64
		_ = jsonx.Elements(v, func(part []byte) bool {
			_ = jsonx.Members(part, func(f jsonx.Member) bool {
				switch {
				case f.KeyIs("text"), f.KeyIs("content"), f.KeyIs("thinking"):
					n += c.textTokens(encoding, f.Value)
				case f.KeyIs("input"), f.KeyIs("arguments"):
					n += c.rawTokens(encoding, f.Value)
				}
				return true
			})
			return true
		})
		return n
	}
	return 0
}

// rawTokens counts a JSON value as its text (tool schemas and arguments).
func (c *Counter) rawTokens(encoding string, v []byte) int64 {
	return c.count(encoding, string(v))
}

func (c *Counter) count(encoding, s string) int64 {
	n, err := c.Count(encoding, s)
	if err != nil {
		return int64(len(s)+3) / 4
	}
	return int64(n)
}
