package main

import (
	"encoding/json"
	"math/rand/v2"
	"strconv"
	"strings"
)

// Models of the large-body scenario: the gateway serves gpt-4o-mini with
// its "openai" provider and claude-haiku-4-5 with its "anthropic" one, both
// pointed at the fake upstream, which speaks both formats.
const (
	openAIModel    = "gpt-4o-mini"
	anthropicModel = "claude-haiku-4-5"
)

// largeSpecs returns the requests of the large-body scenario, each with a
// conversation of about size bytes (see conversation):
//
//   - same JSON and same stream: an OpenAI client asks for an OpenAI model
//     (chat completions in, chat completions upstream);
//   - cross JSON: an OpenAI client asks for a Claude model (chat
//     completions in, Messages upstream);
//   - cross stream: an Anthropic client (POST /v1/messages, stream: true)
//     asks for an OpenAI model (Messages in, chat completions upstream).
//
// Streams from the upstream have events content chunks.
func largeSpecs(size, events int) (sameJSON, sameStream, crossJSON, crossStream *spec) {
	msgs := conversation(size)
	chat := func(model string, stream bool) []byte {
		req := map[string]any{"model": model, "messages": msgs, "max_tokens": 400, "temperature": 0.2}
		if stream {
			req["stream"] = true
			req["stream_options"] = map[string]any{"include_usage": true}
		}
		return mustMarshal(req)
	}
	sameJSON = &spec{name: "same JSON", path: "/v1/chat/completions", body: chat(openAIModel, false), kind: respJSON}
	sameStream = &spec{name: "same stream", path: "/v1/chat/completions", body: chat(openAIModel, true),
		kind: respChatStream, want: wantEvents(events)}
	crossJSON = &spec{name: "cross JSON", path: "/v1/chat/completions", body: chat(anthropicModel, false), kind: respJSON}
	// Anthropic puts the system prompt beside the messages.
	crossStream = &spec{name: "cross stream", path: "/v1/messages", kind: respMessagesStream, body: mustMarshal(map[string]any{
		"model": openAIModel, "system": msgs[0].Content, "messages": msgs[1:], "max_tokens": 400, "temperature": 0.2, "stream": true,
	})}
	return sameJSON, sameStream, crossJSON, crossStream
}

func mustMarshal(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // maps of strings and numbers always marshal
	}
	return b
}

// chatMessage is a message with text content, in the shape both formats
// accept.
type chatMessage struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

// conversation returns a long coding conversation of at least size bytes
// of text: a system prompt, then user and assistant turns alternating
// (ending with the user's), each a few paragraphs of prose and a block of
// Go code, as a session with a coding assistant grows. It is the same for
// the same size. About 4 bytes of it make a token (tiktoken o200k_base),
// so 400,000 bytes are about 100,000 tokens.
func conversation(size int) []chatMessage {
	rng := rand.New(rand.NewPCG(1, 2))
	msgs := []chatMessage{{Role: "system", Content: "You are a senior Go engineer reviewing a service that proxies chat " +
		"completion requests. Answer precisely, quote the code you refer to, and prefer small, testable changes."}}
	total := len(msgs[0].Content)
	for turn := 0; total < size || msgs[len(msgs)-1].Role != "user"; turn++ {
		role := "user"
		if turn%2 == 1 {
			role = "assistant"
		}
		var b strings.Builder
		for p := range 2 + rng.IntN(3) {
			if p > 0 {
				b.WriteString("\n\n")
			}
			paragraph(&b, rng)
		}
		for range 2 {
			b.WriteString("\n\n```go\n")
			code(&b, rng, turn)
			b.WriteString("```")
		}
		msgs = append(msgs, chatMessage{Role: role, Content: b.String()})
		total += b.Len()
	}
	return msgs
}

// Words of the prose, common in code reviews.
var proseWords = strings.Fields(`the a an of to in for on with at by from and or but not this that these those
it its we you they our your their is are was were be been being has have had do does did can could should would
will may might must request response body header stream event client server proxy upstream gateway connection
timeout retry failover error latency throughput buffer memory allocation goroutine channel context deadline
handler middleware transport token usage model provider format translation parse encode decode field value
test benchmark profile measure allocate copy read write flush close cancel reuse pool cache limit budget
because when while after before during instead however therefore although unless whether each every both
first second last next previous large small slow fast cheap expensive simple complex correct wrong safe`)

// paragraph writes a paragraph of four to eight sentences.
func paragraph(b *strings.Builder, rng *rand.Rand) {
	for s := range 4 + rng.IntN(5) {
		if s > 0 {
			b.WriteByte(' ')
		}
		n := 8 + rng.IntN(14)
		for i := range n {
			w := proseWords[rng.IntN(len(proseWords))]
			if i == 0 {
				w = strings.ToUpper(w[:1]) + w[1:]
			} else {
				b.WriteByte(' ')
			}
			b.WriteString(w)
			if i > 0 && i < n-1 && rng.IntN(9) == 0 {
				b.WriteByte(',')
			}
		}
		b.WriteByte('.')
	}
}

// Identifiers of the code blocks.
var (
	codeNouns = strings.Fields(`request response body stream event buffer conn client server handler token usage
model provider header deadline budget retry attempt chunk reader writer pool cache limit`)
	codeVerbs = strings.Fields(`read write parse encode decode flush close reset check count relay forward
translate measure settle release reserve`)
)

// code writes a Go function of ten to twenty-five lines.
func code(b *strings.Builder, rng *rand.Rand, turn int) {
	pick := func(ws []string) string { return ws[rng.IntN(len(ws))] }
	noun, verb := pick(codeNouns), pick(codeVerbs)
	name := verb + strings.ToUpper(noun[:1]) + noun[1:] + strconv.Itoa(turn)
	b.WriteString("// " + name + " " + verb + "s the " + noun + " and reports how many bytes it handled.\n")
	b.WriteString("func " + name + "(ctx context.Context, r *bufio.Reader, w io.Writer) (int, error) {\n")
	b.WriteString("\tvar n int\n\tbuf := make([]byte, " + strconv.Itoa(512<<rng.IntN(5)) + ")\n")
	for range 4 + rng.IntN(8) {
		switch rng.IntN(4) {
		case 0:
			b.WriteString("\tif err := ctx.Err(); err != nil {\n\t\treturn n, fmt.Errorf(\"" + verb + " " + noun + ": %w\", err)\n\t}\n")
		case 1:
			b.WriteString("\tm, err := r.Read(buf)\n\tn += m\n\tif errors.Is(err, io.EOF) {\n\t\treturn n, nil\n\t} else if err != nil {\n\t\treturn n, err\n\t}\n")
		case 2:
			b.WriteString("\tif _, err := w.Write(buf[:" + strconv.Itoa(rng.IntN(256)) + "]); err != nil {\n\t\treturn n, err\n\t}\n")
		default:
			v := pick(codeNouns) + "Count"
			b.WriteString("\t" + v + " := bytes.Count(buf, []byte(\"" + pick(proseWords) + "\"))\n\tn += " + v + "\n")
		}
	}
	b.WriteString("\treturn n, nil\n}\n")
}
