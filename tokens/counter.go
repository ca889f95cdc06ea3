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

// DefaultMaxCountBytes bounds the text a Counter tokenizes with tiktoken
// for one count: one Count, one request body (EstimateOpenAIChat,
// EstimateAnthropicMessages) or one response (OutputCounter.Tokens).
// tiktoken-go runs at 2 to 10 MB/s, so a count costs at most a few hundred
// milliseconds of CPU however large its input. The text beyond the bound is
// estimated with QuickCount (capped at one token per byte, which no BPE
// encoding exceeds), at hundreds of MB/s.
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
// cl100k_base). Text beyond the Counter's bound (DefaultMaxCountBytes) is
// estimated with QuickCount.
func (c *Counter) Count(encoding, text string) (int, error) {
	if _, err := c.codec(encoding); err != nil {
		return 0, err
	}
	b := c.budget(encoding)
	return int(b.countString(text)), nil
}

// budget returns a budget of the Counter's bound.
func (c *Counter) budget(encoding string) budget {
	return budget{c: c, encoding: encoding, left: c.maxBytes}
}

// budget counts texts with tiktoken until it has tokenized left bytes, and
// estimates the rest with QuickCount, capped at a token per byte (every
// tiktoken token is at least one byte, and the U+FFFD that stands for an
// invalid byte is one token). The zero value tokenizes nothing.
type budget struct {
	c        *Counter
	encoding string
	left     int
}

// count counts b.
func (t *budget) count(b []byte) int64 {
	cut := t.cut(len(b), func(i int) byte { return b[i] })
	n := t.tiktoken(string(b[:cut]))
	if n < 0 {
		return quickCapped(t.encoding, b)
	}
	return n + quickCapped(t.encoding, b[cut:])
}

// countString counts s (converting to bytes only the part beyond the
// budget).
func (t *budget) countString(s string) int64 {
	cut := t.cut(len(s), func(i int) byte { return s[i] })
	n := t.tiktoken(s[:cut])
	if n < 0 {
		return quickCapped(t.encoding, []byte(s))
	}
	if cut == len(s) {
		return n
	}
	return n + quickCapped(t.encoding, []byte(s[cut:]))
}

// cut returns how much of a text of length n the budget tokenizes (at a
// character boundary: at most 3 bytes less than the budget) and takes it
// from the budget.
func (t *budget) cut(n int, at func(int) byte) int {
	if n <= t.left {
		t.left -= n
		return n
	}
	cut := max(t.left, 0)
	for cut > 0 && at(cut)&0xC0 == 0x80 {
		cut--
	}
	t.left = 0
	return cut
}

// tiktoken counts s exactly, or returns -1 when the encoding is unknown or
// tiktoken fails.
func (t *budget) tiktoken(s string) int64 {
	if s == "" {
		return 0
	}
	codec, err := t.c.codec(t.encoding)
	if err != nil {
		return -1
	}
	n, err := codec.Count(s)
	if err != nil {
		return -1
	}
	return int64(n)
}

// quickCapped is QuickCount capped at a token per byte.
func quickCapped(encoding string, b []byte) int64 {
	if len(b) == 0 {
		return 0
	}
	return min(QuickCount(encoding, b), int64(len(b)))
}

// EstimateOpenAIChat counts the prompt tokens of an OpenAI chat
// completions request body with tiktoken: the text of every message (string
// content and text parts) and its name, tool calls and tool definitions as
// their JSON, and per-message overhead. Images and other non-text parts are
// not counted (UpperBound allows for them). It never fails: unreadable input
// estimates at 4 bytes per token.
//
// It tokenizes at most DefaultMaxCountBytes of the body's text, which costs
// about as much as tiktoken over that text (tens of milliseconds for 400 KB,
// a few hundred at most); the text beyond is estimated with QuickCount,
// capped at a token per byte, so that the count of a body of any size is
// bounded in time and stays at most UpperBound. QuickEstimateOpenAIChat
// estimates the same in a fraction of a millisecond. It is safe for
// concurrent use.
func (c *Counter) EstimateOpenAIChat(encoding string, body []byte) int64 {
	e := exactCounter{b: c.budget(encoding)}
	n, ok := walkBody(body, false, &e, nil, false)
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
	e := exactCounter{b: c.budget(encoding)}
	n, ok := walkBody(body, true, &e, nil, false)
	if !ok {
		return int64(len(body)+3) / 4
	}
	return n
}

// exactCounter counts a body's text with a Counter's budget.
type exactCounter struct {
	b   budget
	buf []byte // the decoded text of the last string
}

func (e *exactCounter) text(lit []byte) int64 {
	e.buf, _ = jsonx.AppendUnquote(e.buf[:0], lit)
	return e.b.count(e.buf)
}

func (e *exactCounter) raw(v []byte) int64 { return e.b.count(v) }
