package demo

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"math"
	"net/http"
	"strconv"
	"time"
)

// ---- chat completions --------------------------------------------------

type chatRequest struct {
	Model    string `json:"model"`
	Messages []struct {
		Role    string          `json:"role"`
		Content json.RawMessage `json:"content"`
	} `json:"messages"`
	Stream        bool `json:"stream"`
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

type chatCompletion struct {
	ID                string       `json:"id"`
	Object            string       `json:"object"`
	Created           int64        `json:"created"`
	Model             string       `json:"model"`
	Choices           []chatChoice `json:"choices"`
	Usage             chatUsage    `json:"usage"`
	SystemFingerprint string       `json:"system_fingerprint"`
}

type chatChoice struct {
	Index        int         `json:"index"`
	Message      chatMessage `json:"message"`
	Logprobs     *struct{}   `json:"logprobs"`
	FinishReason string      `json:"finish_reason"`
}

type chatMessage struct {
	Role        string     `json:"role"`
	Content     *string    `json:"content"`
	Refusal     *string    `json:"refusal"`
	ToolCalls   []toolCall `json:"tool_calls,omitempty"`
	Annotations []struct{} `json:"annotations"`
}

type toolCall struct {
	Index    *int         `json:"index,omitempty"` // in stream deltas only
	ID       string       `json:"id,omitempty"`
	Type     string       `json:"type,omitempty"`
	Function toolFunction `json:"function"`
}

type toolFunction struct {
	Name      string `json:"name,omitempty"`
	Arguments string `json:"arguments"`
}

type chatUsage struct {
	PromptTokens        int `json:"prompt_tokens"`
	CompletionTokens    int `json:"completion_tokens"`
	TotalTokens         int `json:"total_tokens"`
	PromptTokensDetails struct {
		CachedTokens int `json:"cached_tokens"`
	} `json:"prompt_tokens_details"`
	CompletionTokensDetails struct {
		ReasoningTokens int `json:"reasoning_tokens"`
	} `json:"completion_tokens_details"`
}

func newChatUsage(in, out int) chatUsage {
	return chatUsage{PromptTokens: in, CompletionTokens: out, TotalTokens: in + out}
}

type chatChunk struct {
	ID                string          `json:"id"`
	Object            string          `json:"object"`
	Created           int64           `json:"created"`
	Model             string          `json:"model"`
	SystemFingerprint string          `json:"system_fingerprint"`
	Choices           []chunkChoice   `json:"choices"`
	Usage             json.RawMessage `json:"usage,omitempty"` // null, an object, or absent
}

type chunkChoice struct {
	Index        int        `json:"index"`
	Delta        chunkDelta `json:"delta"`
	Logprobs     *struct{}  `json:"logprobs"`
	FinishReason *string    `json:"finish_reason"`
}

type chunkDelta struct {
	Role      string     `json:"role,omitempty"`
	Content   *string    `json:"content,omitempty"`
	ToolCalls []toolCall `json:"tool_calls,omitempty"`
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

func (u *Upstream) chatCompletions(w http.ResponseWriter, r *http.Request, body []byte) {
	var req chatRequest
	if err := json.Unmarshal(body, &req); err != nil {
		openAI.writeError(w, http.StatusBadRequest, "invalid_request_error", badJSON(err))
		return
	}
	if req.Model == "" {
		openAI.writeError(w, http.StatusBadRequest, "invalid_request_error", "you must provide a model parameter")
		return
	}
	if len(req.Messages) == 0 {
		openAI.writeError(w, http.StatusBadRequest, "invalid_request_error", "messages: must contain at least one message")
		return
	}
	inChars, lastUser, lastIsUser := 0, "", false
	for i, m := range req.Messages {
		t := textOf(m.Content, "text")
		inChars += len(t)
		if m.Role == "user" && t != "" {
			lastUser = t
			lastIsUser = i == len(req.Messages)-1
		}
	}

	// Decide between a text answer and a tool call.
	var call *toolCall
	if len(req.Tools) > 0 {
		forced, forbidden, name := openAIToolChoice(req.ToolChoice)
		first := req.Tools[0].Function.Name
		if name == "" {
			name = first
		}
		if !forbidden && name != "" && (forced || (lastIsUser && asksForTool(lastUser, first))) {
			call = &toolCall{ID: u.nextID("call_demo_"), Type: "function", Function: toolFunction{Name: name, Arguments: "{}"}}
		}
	}
	text := Reply(lastUser)
	usage := newChatUsage(countTokens(inChars), countTokens(len(text)))
	if call != nil {
		usage = newChatUsage(countTokens(inChars), countTokens(len(call.Function.Name)+2))
	}
	id, created := u.nextID("chatcmpl-demo-"), time.Now().Unix()
	w.Header().Set("X-Request-Id", u.nextID("req_demo_"))

	if !req.Stream {
		msg := chatMessage{Role: "assistant", Annotations: []struct{}{}}
		finish := "stop"
		if call != nil {
			msg.ToolCalls = []toolCall{*call}
			finish = "tool_calls"
		} else {
			msg.Content = &text
		}
		writeJSON(w, http.StatusOK, chatCompletion{
			ID: id, Object: "chat.completion", Created: created, Model: req.Model,
			Choices:           []chatChoice{{Index: 0, Message: msg, FinishReason: finish}},
			Usage:             usage,
			SystemFingerprint: "fp_llmgate_demo",
		})
		return
	}

	includeUsage := req.StreamOptions != nil && req.StreamOptions.IncludeUsage
	s := startStream(w)
	chunk := func(choices []chunkChoice, usage json.RawMessage) bool {
		c := chatChunk{ID: id, Object: "chat.completion.chunk", Created: created, Model: req.Model,
			SystemFingerprint: "fp_llmgate_demo", Choices: choices}
		if includeUsage {
			c.Usage = json.RawMessage("null")
			if usage != nil {
				c.Usage = usage
			}
		}
		return s.send("", c)
	}
	delta := func(d chunkDelta, finish string) []chunkChoice {
		c := chunkChoice{Index: 0, Delta: d}
		if finish != "" {
			c.FinishReason = &finish
		}
		return []chunkChoice{c}
	}
	empty := ""
	finish := "stop"
	if call != nil {
		zero := 0
		start := *call
		start.Index, start.Function.Arguments = &zero, ""
		if !chunk(delta(chunkDelta{Role: "assistant", ToolCalls: []toolCall{start}}, ""), nil) {
			return
		}
		if !u.pause(r) || !chunk(delta(chunkDelta{ToolCalls: []toolCall{{Index: &zero, Function: toolFunction{Arguments: "{}"}}}}, ""), nil) {
			return
		}
		finish = "tool_calls"
	} else {
		if !chunk(delta(chunkDelta{Role: "assistant", Content: &empty}, ""), nil) {
			return
		}
		for i, word := range Words(text) {
			if i > 0 && !u.pause(r) {
				return
			}
			if !chunk(delta(chunkDelta{Content: &word}, ""), nil) {
				return
			}
		}
	}
	if !chunk(delta(chunkDelta{}, finish), nil) {
		return
	}
	if includeUsage && !chunk([]chunkChoice{}, marshal(usage)) {
		return
	}
	s.sendRaw("[DONE]")
}

// ---- responses ---------------------------------------------------------

type responsesRequest struct {
	Model        string          `json:"model"`
	Input        json.RawMessage `json:"input"`
	Instructions *string         `json:"instructions"`
	Stream       bool            `json:"stream"`
}

type responseObject struct {
	ID                 string         `json:"id"`
	Object             string         `json:"object"`
	CreatedAt          int64          `json:"created_at"`
	Status             string         `json:"status"`
	Error              *struct{}      `json:"error"`
	IncompleteDetails  *struct{}      `json:"incomplete_details"`
	Instructions       *string        `json:"instructions"`
	MaxOutputTokens    *int           `json:"max_output_tokens"`
	Model              string         `json:"model"`
	Output             []outputItem   `json:"output"`
	ParallelToolCalls  bool           `json:"parallel_tool_calls"`
	PreviousResponseID *string        `json:"previous_response_id"`
	Store              bool           `json:"store"`
	Temperature        float64        `json:"temperature"`
	Text               map[string]any `json:"text"`
	ToolChoice         string         `json:"tool_choice"`
	Tools              []struct{}     `json:"tools"`
	TopP               float64        `json:"top_p"`
	Truncation         string         `json:"truncation"`
	Usage              *responseUsage `json:"usage"`
	Metadata           map[string]any `json:"metadata"`
}

type outputItem struct {
	ID      string       `json:"id"`
	Type    string       `json:"type"`
	Status  string       `json:"status"`
	Role    string       `json:"role"`
	Content []outputText `json:"content"`
}

type outputText struct {
	Type        string     `json:"type"`
	Text        string     `json:"text"`
	Annotations []struct{} `json:"annotations"`
	Logprobs    []struct{} `json:"logprobs"`
}

type responseUsage struct {
	InputTokens        int `json:"input_tokens"`
	InputTokensDetails struct {
		CachedTokens int `json:"cached_tokens"`
	} `json:"input_tokens_details"`
	OutputTokens        int `json:"output_tokens"`
	OutputTokensDetails struct {
		ReasoningTokens int `json:"reasoning_tokens"`
	} `json:"output_tokens_details"`
	TotalTokens int `json:"total_tokens"`
}

// responseEvent is one Responses API stream event; only the fields of its
// type are set.
type responseEvent struct {
	Type           string          `json:"type"`
	SequenceNumber int             `json:"sequence_number"`
	Response       *responseObject `json:"response,omitempty"`
	OutputIndex    *int            `json:"output_index,omitempty"`
	ItemID         string          `json:"item_id,omitempty"`
	ContentIndex   *int            `json:"content_index,omitempty"`
	Item           *outputItem     `json:"item,omitempty"`
	Part           *outputText     `json:"part,omitempty"`
	Delta          *string         `json:"delta,omitempty"`
	Text           *string         `json:"text,omitempty"`
	Logprobs       []struct{}      `json:"logprobs,omitempty"`
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
	if err := json.Unmarshal(body, &req); err != nil {
		openAI.writeError(w, http.StatusBadRequest, "invalid_request_error", badJSON(err))
		return
	}
	if req.Model == "" {
		openAI.writeError(w, http.StatusBadRequest, "invalid_request_error", "you must provide a model parameter")
		return
	}
	inChars, lastUser, ok := responsesInput(req.Input)
	if !ok {
		openAI.writeError(w, http.StatusBadRequest, "invalid_request_error", "input: must be a string or a list of input items")
		return
	}
	if req.Instructions != nil {
		inChars += len(*req.Instructions)
	}
	text := Reply(lastUser)
	id, itemID, created := u.nextID("resp_demo_"), u.nextID("msg_demo_"), time.Now().Unix()
	usage := &responseUsage{InputTokens: countTokens(inChars), OutputTokens: countTokens(len(text))}
	usage.TotalTokens = usage.InputTokens + usage.OutputTokens
	object := func(status string, output []outputItem, usage *responseUsage) *responseObject {
		return &responseObject{
			ID: id, Object: "response", CreatedAt: created, Status: status,
			Instructions: req.Instructions, Model: req.Model, Output: output,
			ParallelToolCalls: true, Temperature: 1, TopP: 1, Truncation: "disabled",
			Text:       map[string]any{"format": map[string]string{"type": "text"}},
			ToolChoice: "auto", Tools: []struct{}{}, Usage: usage, Metadata: map[string]any{},
		}
	}
	part := func(t string) outputText {
		return outputText{Type: "output_text", Text: t, Annotations: []struct{}{}, Logprobs: []struct{}{}}
	}
	done := outputItem{ID: itemID, Type: "message", Status: "completed", Role: "assistant", Content: []outputText{part(text)}}
	w.Header().Set("X-Request-Id", u.nextID("req_demo_"))

	if !req.Stream {
		writeJSON(w, http.StatusOK, object("completed", []outputItem{done}, usage))
		return
	}

	s := startStream(w)
	seq := 0
	send := func(ev responseEvent) bool {
		ev.SequenceNumber = seq
		seq++
		return s.send(ev.Type, ev)
	}
	zero := 0
	inProgress := outputItem{ID: itemID, Type: "message", Status: "in_progress", Role: "assistant", Content: []outputText{}}
	emptyPart := part("")
	donePart := part(text)
	if !send(responseEvent{Type: "response.created", Response: object("in_progress", []outputItem{}, nil)}) ||
		!send(responseEvent{Type: "response.in_progress", Response: object("in_progress", []outputItem{}, nil)}) ||
		!send(responseEvent{Type: "response.output_item.added", OutputIndex: &zero, Item: &inProgress}) ||
		!send(responseEvent{Type: "response.content_part.added", ItemID: itemID, OutputIndex: &zero, ContentIndex: &zero, Part: &emptyPart}) {
		return
	}
	for i, word := range Words(text) {
		if i > 0 && !u.pause(r) {
			return
		}
		if !send(responseEvent{Type: "response.output_text.delta", ItemID: itemID, OutputIndex: &zero, ContentIndex: &zero, Delta: &word, Logprobs: []struct{}{}}) {
			return
		}
	}
	_ = send(responseEvent{Type: "response.output_text.done", ItemID: itemID, OutputIndex: &zero, ContentIndex: &zero, Text: &text, Logprobs: []struct{}{}}) &&
		send(responseEvent{Type: "response.content_part.done", ItemID: itemID, OutputIndex: &zero, ContentIndex: &zero, Part: &donePart}) &&
		send(responseEvent{Type: "response.output_item.done", OutputIndex: &zero, Item: &done}) &&
		send(responseEvent{Type: "response.completed", Response: object("completed", []outputItem{done}, usage)})
}

// ---- embeddings --------------------------------------------------------

type embeddingsRequest struct {
	Model          string          `json:"model"`
	Input          json.RawMessage `json:"input"`
	EncodingFormat string          `json:"encoding_format"`
	Dimensions     int             `json:"dimensions"`
}

type embeddingList struct {
	Object string      `json:"object"`
	Data   []embedding `json:"data"`
	Model  string      `json:"model"`
	Usage  struct {
		PromptTokens int `json:"prompt_tokens"`
		TotalTokens  int `json:"total_tokens"`
	} `json:"usage"`
}

type embedding struct {
	Object    string `json:"object"`
	Index     int    `json:"index"`
	Embedding any    `json:"embedding"` // []float32, or a base64 string
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
	if err := json.Unmarshal(body, &req); err != nil {
		openAI.writeError(w, http.StatusBadRequest, "invalid_request_error", badJSON(err))
		return
	}
	if req.Model == "" {
		openAI.writeError(w, http.StatusBadRequest, "invalid_request_error", "you must provide a model parameter")
		return
	}
	inputs, ok := embeddingInputs(req.Input)
	if !ok {
		openAI.writeError(w, http.StatusBadRequest, "invalid_request_error", "input: must be a non-empty string, array of strings, array of tokens or array of token arrays")
		return
	}
	if req.EncodingFormat != "" && req.EncodingFormat != "float" && req.EncodingFormat != "base64" {
		openAI.writeError(w, http.StatusBadRequest, "invalid_request_error", "encoding_format: must be \"float\" or \"base64\"")
		return
	}
	dims := u.dims
	if req.Dimensions != 0 {
		if req.Dimensions < 1 || req.Dimensions > maxDims {
			openAI.writeError(w, http.StatusBadRequest, "invalid_request_error", "dimensions: must be between 1 and "+strconv.Itoa(maxDims))
			return
		}
		dims = req.Dimensions
	}
	out := embeddingList{Object: "list", Model: req.Model, Data: make([]embedding, len(inputs))}
	chars := 0
	for i, in := range inputs {
		chars += len(in)
		v := Embedding(req.Model, in, dims)
		var e any = v
		if req.EncodingFormat == "base64" {
			b := make([]byte, 4*len(v))
			for j, f := range v {
				binary.LittleEndian.PutUint32(b[4*j:], math.Float32bits(f))
			}
			e = base64.StdEncoding.EncodeToString(b)
		}
		out.Data[i] = embedding{Object: "embedding", Index: i, Embedding: e}
	}
	out.Usage.PromptTokens = countTokens(chars)
	out.Usage.TotalTokens = out.Usage.PromptTokens
	w.Header().Set("X-Request-Id", u.nextID("req_demo_"))
	writeJSON(w, http.StatusOK, out)
}
