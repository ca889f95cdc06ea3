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

// EstimateOpenAIChat counts the prompt tokens of an OpenAI chat
// completions request body with tiktoken: the text of every message (string
// content and text parts) and its name, tool calls and tool definitions as
// their JSON, and per-message overhead. Images and other non-text parts are
// not counted. It never fails: unreadable input estimates at 4 bytes per
// token. It costs about as much as tiktoken over the whole prompt (tens of
// milliseconds for 400 KB); QuickEstimateOpenAIChat estimates the same in a
// fraction of a millisecond.
func (c *Counter) EstimateOpenAIChat(encoding string, body []byte) int64 {
	n, ok := walkBody(body, false, exactCounter{c, encoding}, nil, false)
	if !ok {
		return int64(len(body)+3) / 4
	}
	return n
}

// EstimateAnthropicMessages counts the input tokens of an Anthropic
// messages request body with tiktoken: system, every message's text
// blocks, tool uses and results, tool definitions and per-message overhead.
// See EstimateOpenAIChat.
func (c *Counter) EstimateAnthropicMessages(encoding string, body []byte) int64 {
	n, ok := walkBody(body, true, exactCounter{c, encoding}, nil, false)
	if !ok {
		return int64(len(body)+3) / 4
	}
	return n
}

// exactCounter counts text with a Counter.
type exactCounter struct {
	c        *Counter
	encoding string
}

func (e exactCounter) text(lit []byte) int64 {
	s, _ := jsonx.Unquote(lit)
	return e.c.count(e.encoding, s)
}

func (e exactCounter) raw(v []byte) int64 { return e.c.count(e.encoding, string(v)) }

func (c *Counter) count(encoding, s string) int64 {
	n, err := c.Count(encoding, s)
	if err != nil {
		return int64(len(s)+3) / 4
	}
	return int64(n)
}
