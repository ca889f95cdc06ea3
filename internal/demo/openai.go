package demo

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"math"
	"net/http"
	"strconv"

	"github.com/llmgate/gateway/providers"
	"github.com/llmgate/gateway/providers/providertest"
)

// ---- chat completions --------------------------------------------------

type chatRequest struct {
	named
	Messages      []message `json:"messages"`
	Stream        bool      `json:"stream"`
	StreamOptions *struct {
		IncludeUsage bool `json:"include_usage"`
	} `json:"stream_options"`
	Tools []struct {
		Type     string `json:"type"`
		Function struct {
			Name string `json:"name"`
		} `json:"function"`
	} `json:"tools"`
	ToolChoice json.RawMessage `json:"tool_choice"`
}

// openAIToolChoice interprets tool_choice: "none", "auto" (also absent),
// "required", or {"type":"function","function":{"name":...}}. It returns
// whether a call is forced or forbidden, and the named tool, if any.
func openAIToolChoice(raw json.RawMessage) (forced, forbidden bool, name string) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return false, false, ""
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s == "required", s == "none", ""
	}
	var o struct {
		Function struct {
			Name string `json:"name"`
		} `json:"function"`
	}
	if json.Unmarshal(raw, &o) == nil && o.Function.Name != "" {
		return true, false, o.Function.Name
	}
	return false, false, ""
}

// openAIError answers a bad OpenAI request with a 400.
func (u *Upstream) openAIError(w http.ResponseWriter, r *http.Request, message string) {
	u.fail(w, r, providers.FormatOpenAI, http.StatusBadRequest, message)
}

func (u *Upstream) chatCompletions(w http.ResponseWriter, r *http.Request, body []byte) {
	var req chatRequest
	if !u.decode(w, r, providers.FormatOpenAI, body, &req) {
		return
	}
	if len(req.Messages) == 0 {
		u.openAIError(w, r, "messages: must contain at least one message")
		return
	}
	inChars, lastUser, lastIsUser := conversation(req.Messages)
	text := Reply(lastUser)
	reply := u.reply("chatcmpl-demo-", req.Model, text, providertest.Usage{Input: countTokens(inChars), Output: countTokens(len(text))})
	if len(req.Tools) > 0 {
		tc := toolChoice{first: req.Tools[0].Function.Name}
		tc.forced, tc.forbidden, tc.name = openAIToolChoice(req.ToolChoice)
		tc.name = cmp.Or(tc.name, tc.first)
		u.maybeCall(&reply, tc, "call_demo_", lastUser, lastIsUser)
	}

	if !req.Stream {
		u.answer(w, r, providers.FormatOpenAI, providertest.OpenAIChatReply(reply))
		return
	}
	includeUsage := req.StreamOptions != nil && req.StreamOptions.IncludeUsage
	u.answer(w, r, providers.FormatOpenAI, providertest.OpenAIChatReplyStream(reply, includeUsage))
}

// ---- responses ---------------------------------------------------------

type responsesRequest struct {
	named
	Input        json.RawMessage `json:"input"`
	Instructions *string         `json:"instructions"`
	Stream       bool            `json:"stream"`
}

// responsesInput returns the text of all input and of the last user
// message. Input is a string (one user message) or a list of items whose
// content is a string or a list of input_text/output_text parts.
func responsesInput(raw json.RawMessage) (all int, lastUser string, ok bool) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return 0, "", false
	}
	if raw[0] == '"' {
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return 0, "", false
		}
		return len(s), s, true
	}
	var items []struct {
		Type    string          `json:"type"`
		Role    string          `json:"role"`
		Content json.RawMessage `json:"content"`
	}
	if json.Unmarshal(raw, &items) != nil {
		return 0, "", false
	}
	for _, it := range items {
		if it.Type != "" && it.Type != "message" {
			continue
		}
		t := textOf(it.Content, "input_text", "output_text", "text")
		all += len(t)
		if it.Role == "user" && t != "" {
			lastUser = t
		}
	}
	return all, lastUser, true
}

func (u *Upstream) responses(w http.ResponseWriter, r *http.Request, body []byte) {
	var req responsesRequest
	if !u.decode(w, r, providers.FormatOpenAI, body, &req) {
		return
	}
	inChars, lastUser, ok := responsesInput(req.Input)
	if !ok {
		u.openAIError(w, r, "input: must be a string or a list of input items")
		return
	}
	if req.Instructions != nil {
		inChars += len(*req.Instructions)
	}
	text := Reply(lastUser)
	reply := u.reply("resp_demo_", req.Model, text, providertest.Usage{Input: countTokens(inChars), Output: countTokens(len(text))})
	reply.ItemID, reply.Instructions = u.nextID("msg_demo_"), req.Instructions
	if !req.Stream {
		u.answer(w, r, providers.FormatOpenAI, providertest.OpenAIResponsesReply(reply))
		return
	}
	u.answer(w, r, providers.FormatOpenAI, providertest.OpenAIResponsesReplyStream(reply))
}

// ---- embeddings --------------------------------------------------------

type embeddingsRequest struct {
	named
	Input          json.RawMessage `json:"input"`
	EncodingFormat string          `json:"encoding_format"`
	Dimensions     int             `json:"dimensions"`
}

// embeddingInputs splits "input" into its texts: a string, an array of
// strings, an array of token IDs, or an array of token ID arrays. Token IDs
// are turned into their decimal text, which only seeds the vector.
func embeddingInputs(raw json.RawMessage) ([]string, bool) {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return []string{s}, true
	}
	var ss []string
	if json.Unmarshal(raw, &ss) == nil && len(ss) > 0 {
		return ss, true
	}
	var toks []int64
	if json.Unmarshal(raw, &toks) == nil && len(toks) > 0 {
		return []string{tokensText(toks)}, true
	}
	var tokss [][]int64
	if json.Unmarshal(raw, &tokss) == nil && len(tokss) > 0 {
		out := make([]string, len(tokss))
		for i, t := range tokss {
			out[i] = tokensText(t)
		}
		return out, true
	}
	return nil, false
}

func tokensText(toks []int64) string {
	b := make([]byte, 0, 8*len(toks))
	for _, t := range toks {
		b = strconv.AppendInt(b, t, 10)
		b = append(b, ' ')
	}
	return string(b)
}

// Embedding returns the demo's deterministic unit-length vector of dims
// values for text: the same model and text always give the same vector.
func Embedding(model, text string, dims int) []float32 {
	v := make([]float32, dims)
	seed := sha256.Sum256([]byte(model + "\x00" + text))
	var block [sha256.Size]byte
	var sum float64
	for i := range v {
		if i%8 == 0 {
			var ctr [8]byte
			binary.LittleEndian.PutUint64(ctr[:], uint64(i/8))
			block = sha256.Sum256(append(seed[:], ctr[:]...))
		}
		x := binary.LittleEndian.Uint32(block[(i%8)*4:])
		f := float64(x)/float64(math.MaxUint32)*2 - 1
		v[i] = float32(f)
		sum += f * f
	}
	if n := math.Sqrt(sum); n > 0 {
		for i := range v {
			v[i] = float32(float64(v[i]) / n)
		}
	}
	return v
}

func (u *Upstream) embeddings(w http.ResponseWriter, r *http.Request, body []byte) {
	var req embeddingsRequest
	if !u.decode(w, r, providers.FormatOpenAI, body, &req) {
		return
	}
	inputs, ok := embeddingInputs(req.Input)
	if !ok {
		u.openAIError(w, r, "input: must be a non-empty string, array of strings, array of tokens or array of token arrays")
		return
	}
	if req.EncodingFormat != "" && req.EncodingFormat != "float" && req.EncodingFormat != "base64" {
		u.openAIError(w, r, "encoding_format: must be \"float\" or \"base64\"")
		return
	}
	dims := u.dims
	if req.Dimensions != 0 {
		if req.Dimensions < 1 || req.Dimensions > maxDims {
			u.openAIError(w, r, "dimensions: must be between 1 and "+strconv.Itoa(maxDims))
			return
		}
		dims = req.Dimensions
	}
	vectors := make([][]float32, len(inputs))
	chars := 0
	for i, in := range inputs {
		chars += len(in)
		vectors[i] = Embedding(req.Model, in, dims)
	}
	u.answer(w, r, providers.FormatOpenAI,
		providertest.OpenAIEmbeddingVectors(req.Model, vectors, req.EncodingFormat == "base64", countTokens(chars)))
}
