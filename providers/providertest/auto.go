package providertest

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"strings"

	"github.com/llmgate/gateway/providers"
)

// AutoReplyText returns the assistant text of a Server's automatic replies
// in format: "Hello from the fake <format> upstream.".
func AutoReplyText(format providers.Format) string {
	return "Hello from the fake " + string(format) + " upstream."
}

// AutoReplyDeltas returns AutoReplyText split into the stream deltas of an
// automatic streaming reply: one per word, spaces leading.
func AutoReplyDeltas(format providers.Format) []string {
	words := strings.Fields(AutoReplyText(format))
	for i := 1; i < len(words); i++ {
		words[i] = " " + words[i]
	}
	return words
}

// AutoReplyUsage returns the usage an automatic reply reports for a request
// body: Input is len(body)/4 (at least 1), Output the number of
// AutoReplyDeltas.
func AutoReplyUsage(format providers.Format, body []byte) Usage {
	return Usage{Input: max(1, len(body)/4), Output: len(AutoReplyDeltas(format))}
}

// autoRequest holds the request fields an automatic reply looks at.
type autoRequest struct {
	Model         string `json:"model"`
	Stream        bool   `json:"stream"`
	StreamOptions *struct {
		IncludeUsage bool `json:"include_usage"`
	} `json:"stream_options"`
	EncodingFormat string          `json:"encoding_format"`
	Input          json.RawMessage `json:"input"`
}

// autoReply builds the answer to a request when the script is empty. It
// answers known surface paths under /v1/ in the server's format, 404 for
// unknown paths, 405 for methods other than POST and 400 for a body that
// is not a JSON object with a model.
func (s *Server) autoReply(rec Recorded) Step {
	surface, ok := s.surfaceOf(rec.Path)
	if !ok {
		return Error(s.format, http.StatusNotFound, fmt.Sprintf("Invalid URL (%s %s)", rec.Method, rec.Path))
	}
	if rec.Method != http.MethodPost {
		step := Error(s.format, http.StatusMethodNotAllowed, fmt.Sprintf("Method %s not allowed for %s", rec.Method, rec.Path))
		step.Header.Set("Allow", http.MethodPost)
		return step
	}
	var req autoRequest
	if err := json.Unmarshal(rec.Body, &req); err != nil {
		return Error(s.format, http.StatusBadRequest, "The request body is not valid JSON: "+err.Error())
	}
	if req.Model == "" {
		return Error(s.format, http.StatusBadRequest, "model: field required")
	}
	u := AutoReplyUsage(s.format, rec.Body)
	text, deltas := AutoReplyText(s.format), AutoReplyDeltas(s.format)
	switch surface {
	case providers.SurfaceChatCompletions:
		if req.Stream {
			include := req.StreamOptions != nil && req.StreamOptions.IncludeUsage
			return OpenAIChatStream(req.Model, deltas, u, include)
		}
		return OpenAIChat(req.Model, text, u)
	case providers.SurfaceResponses:
		if req.Stream {
			return OpenAIResponsesStream(req.Model, deltas, u)
		}
		return OpenAIResponses(req.Model, text, u)
	case providers.SurfaceEmbeddings:
		return openAIEmbeddings(req.Model, countInputs(req.Input), req.EncodingFormat == "base64")
	default: // messages
		if req.Stream {
			return AnthropicStream(req.Model, deltas, u)
		}
		return AnthropicMessage(req.Model, text, u)
	}
}

// surfaceOf maps a request path to a surface of the server's format.
func (s *Server) surfaceOf(path string) (providers.Surface, bool) {
	rest, ok := strings.CutPrefix(path, "/v1/")
	if !ok {
		return "", false
	}
	for _, sf := range []providers.Surface{
		providers.SurfaceChatCompletions, providers.SurfaceResponses,
		providers.SurfaceEmbeddings, providers.SurfaceMessages,
	} {
		if sf.Format() == s.format && sf.Path() == rest {
			return sf, true
		}
	}
	return "", false
}

// countInputs returns how many embeddings an embeddings input asks for: 1
// for a string or a token array, the length of an array of strings or of
// token arrays.
func countInputs(raw json.RawMessage) int {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] != '[' {
		return 1
	}
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil || len(items) == 0 {
		return 1
	}
	if first := bytes.TrimSpace(items[0]); len(first) > 0 && (first[0] == '-' || (first[0] >= '0' && first[0] <= '9')) {
		return 1 // one input given as token ids
	}
	return len(items)
}

// embeddingBase64 encodes v as OpenAI's base64 encoding_format does: the
// little-endian float32 values.
func embeddingBase64(v []float32) string {
	b := make([]byte, 4*len(v))
	for i, f := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(f))
	}
	return base64.StdEncoding.EncodeToString(b)
}
