package gateway

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/require"

	"github.com/llmgate/gateway/catalog"
	"github.com/llmgate/gateway/providers"
	"github.com/llmgate/gateway/providers/providertest"
)

// The hostile-request table: malformed and hostile client requests, each
// refused with a stable status, code and dialect, none of them reaching an
// upstream.

// errShape is the error shape a case expects.
type errShape uint8

const (
	// hostileOpenAI: {"error":{"message","type","param","code"}}.
	hostileOpenAI errShape = iota
	// hostileAnthropic: {"type":"error","error":{"type","message","code"}}.
	hostileAnthropic
	// hostileNetHTTP: net/http's server answered before the gateway saw
	// the request (a text body, no Llmgate-Request-Id).
	hostileNetHTTP
)

// hostileEnv names the gateway a case is sent to.
type hostileEnv uint8

const (
	// envMain: newEnv with a 1 MiB request limit.
	envMain hostileEnv = iota
	// envStrict: only configured providers and models, allowed hosts,
	// CORS for one origin, and a custom provider "my-local".
	envStrict
	// envSlow: a 300 ms body read timeout and a 4 KiB request limit.
	envSlow
)

const hostileMaxBody = 1 << 20

// sender sends one request to the gateway at base ("http://host:port")
// and returns the response with its body read.
type sender func(t *testing.T, base string) (*http.Response, []byte)

type hostileCase struct {
	name   string
	env    hostileEnv
	send   sender
	status int
	code   string // the error code; for hostileNetHTTP a substring of the body
	shape  errShape
	param  string // the expected OpenAI "param", when set
	// contains is a substring the error message must have, when set.
	contains string
}

// hostileClient is the net/http client of the table; its transport is
// closed when the test ends (goleak).
func hostileClient(t *testing.T) *http.Client {
	tr := &http.Transport{DisableCompression: true}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// request builds a sender for a net/http client request. ct "" sends no
// Content-Type; header holds name, value pairs ("Host" sets the Host).
// A nil body reader function sends no body.
func request(c *http.Client, method, path, ct string, body func() io.Reader, header ...string) sender {
	return func(t *testing.T, base string) (*http.Response, []byte) {
		t.Helper()
		var rd io.Reader
		if body != nil {
			rd = body()
		}
		req, err := http.NewRequest(method, base+path, rd)
		require.NoError(t, err)
		if ct != "" {
			req.Header.Set("Content-Type", ct)
		}
		for i := 0; i+1 < len(header); i += 2 {
			if header[i] == "Host" {
				req.Host = header[i+1]
				continue
			}
			req.Header.Set(header[i], header[i+1])
		}
		resp, err := c.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp, b
	}
}

func str(s string) func() io.Reader { return func() io.Reader { return strings.NewReader(s) } }

// chunked hides the length of s, so the client sends it chunked.
func chunked(s string) func() io.Reader {
	return func() io.Reader { return io.MultiReader(strings.NewReader(s)) }
}

// rawExchange sends req over a new TCP connection, then runs after (if
// any) and reads one response.
func rawExchange(t *testing.T, base string, req []byte, after func(net.Conn)) (*http.Response, []byte) {
	t.Helper()
	u, err := url.Parse(base)
	require.NoError(t, err)
	conn, err := net.Dial("tcp", u.Host)
	require.NoError(t, err)
	done := make(chan struct{})
	defer func() {
		_ = conn.Close() // ends the writer, even when the exchange failed
		<-done
	}()
	require.NoError(t, conn.SetDeadline(time.Now().Add(2*time.Second)))
	go func() {
		defer close(done)
		// The server may answer and close before it read everything
		// (a 413 or 431): the write error is expected then.
		_, _ = conn.Write(req)
		if after != nil {
			after(conn)
		}
	}()
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	require.NoError(t, err, "no response within 2 s")
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	_ = resp.Body.Close()
	return resp, b
}

// raw builds a sender for a raw request. In req, "{host}" is replaced by
// the server's host:port.
func raw(req string) sender {
	return rawAfter(req, nil)
}

func rawAfter(req string, after func(net.Conn)) sender {
	return func(t *testing.T, base string) (*http.Response, []byte) {
		t.Helper()
		u, err := url.Parse(base)
		require.NoError(t, err)
		return rawExchange(t, base, []byte(strings.ReplaceAll(req, "{host}", u.Host)), after)
	}
}

// rawPost is a raw POST of body to path with the given extra header lines
// (each ending in CRLF) and an exact Content-Length.
func rawPost(path, extra, body string) sender {
	return raw("POST " + path + " HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n" + extra +
		"Content-Length: " + strconv.Itoa(len(body)) + "\r\nConnection: close\r\n\r\n" + body)
}

// nest returns n opening and n closing brackets.
func nest(n int) string { return strings.Repeat("[", n) + strings.Repeat("]", n) }

const (
	hiMessages = `"messages":[{"role":"user","content":"Hi"}]`
	okChat     = `"model":"openai:gpt-4o-mini",` + hiMessages
	okMessages = `"model":"anthropic:claude-haiku-4-5","max_tokens":16,` + hiMessages
)

func TestHostileRequests(t *testing.T) {
	mainEnv := newEnv(t, envConfig{opts: []Option{WithMaxRequestBytes(hostileMaxBody)}})
	local := providertest.Start(t, providers.FormatOpenAI)
	strict := newEnv(t, envConfig{opts: []Option{
		WithOnlyConfiguredProviders(true),
		WithOnlyConfiguredModels(true),
		WithProvider(ProviderConfig{ID: "my-local", BaseURL: local.URL, Models: []catalog.Model{{ID: "llama3.2"}}}),
		WithAllowedHosts("127.0.0.1", "localhost"),
		WithCORS("https://app.example"),
	}})
	slow := newEnv(t, envConfig{opts: []Option{WithClientTimeouts(300*time.Millisecond, 5*time.Second), WithMaxRequestBytes(4 << 10)}})
	envs := map[hostileEnv]*testEnv{envMain: mainEnv, envStrict: strict, envSlow: slow}

	c := hostileClient(t)
	post := func(path, body string, header ...string) sender {
		return request(c, http.MethodPost, path, "application/json", str(body), header...)
	}
	chat := func(body string, header ...string) sender { return post("/v1/chat/completions", body, header...) }
	msgs := func(body string, header ...string) sender { return post("/v1/messages", body, header...) }
	withCT := func(path, ct, body string) sender {
		return request(c, http.MethodPost, path, ct, str(body))
	}
	method := func(m, path string, header ...string) sender {
		return request(c, m, path, "application/json", str(`{}`), header...)
	}
	get := func(path string, header ...string) sender {
		return request(c, http.MethodGet, path, "", nil, header...)
	}

	names5000 := make([]string, 5000)
	for i := range names5000 {
		names5000[i] = `"m` + strconv.Itoa(i) + `"`
	}
	names16 := make([]string, 16) // with "model", one over the limit
	for i := range names16 {
		names16[i] = `"openai:m` + strconv.Itoa(i) + `"`
	}
	long100k := strings.Repeat("a", 100<<10)

	const (
		oa   = hostileOpenAI
		an   = hostileAnthropic
		nh   = hostileNetHTTP
		bad  = http.StatusBadRequest
		ir   = "invalid_request"
		ij   = "invalid_json"
		unk  = http.StatusUnprocessableEntity
		notF = http.StatusNotFound
		nAll = http.StatusMethodNotAllowed
		forb = http.StatusForbidden
	)

	cases := []hostileCase{
		// Invalid JSON.
		{name: "json/empty body", send: chat(``), status: bad, code: ij, shape: oa},
		{name: "json/whitespace only", send: chat(" \r\n\t "), status: bad, code: ij, shape: oa},
		{name: "json/truncated object", send: chat(`{"model":"openai:gpt-4o-mini","messages":[`), status: bad, code: ij, shape: oa},
		{name: "json/truncated string", send: msgs(`{"model":"anthropic:claude-haiku-4-5`), status: bad, code: ij, shape: an},
		{name: "json/trailing garbage", send: chat(`{` + okChat + `} x`), status: bad, code: ij, shape: oa},
		{name: "json/two documents", send: chat(`{` + okChat + `}{}`), status: bad, code: ij, shape: oa},
		{name: "json/trailing NUL", send: chat(`{` + okChat + "}\x00"), status: bad, code: ij, shape: oa},
		{name: "json/top-level array", send: chat(`[{` + okChat + `}]`), status: bad, code: ij, shape: oa, contains: "JSON object"},
		{name: "json/top-level string", send: msgs(`"hello"`), status: bad, code: ij, shape: an, contains: "JSON object"},
		{name: "json/top-level number", send: chat(`42`), status: bad, code: ij, shape: oa},
		{name: "json/top-level null", send: chat(`null`), status: bad, code: ij, shape: oa},
		{name: "json/top-level true", send: post("/v1/embeddings", `true`), status: bad, code: ij, shape: oa},
		{name: "json/byte order mark", send: chat("\xEF\xBB\xBF{" + okChat + "}"), status: bad, code: ij, shape: oa},
		{name: "json/NaN", send: chat(`{` + okChat + `,"temperature":NaN}`), status: bad, code: ij, shape: oa},
		{name: "json/Infinity", send: msgs(`{` + okMessages + `,"temperature":-Infinity}`), status: bad, code: ij, shape: an},
		{name: "json/leading zero", send: chat(`{` + okChat + `,"n":01}`), status: bad, code: ij, shape: oa},
		{name: "json/hex number", send: chat(`{` + okChat + `,"n":0x1}`), status: bad, code: ij, shape: oa},
		{name: "json/plus sign", send: chat(`{` + okChat + `,"n":+1}`), status: bad, code: ij, shape: oa},
		{name: "json/single quotes", send: chat(`{'model':'openai:gpt-4o-mini'}`), status: bad, code: ij, shape: oa},
		{name: "json/unquoted key", send: chat(`{model:"openai:gpt-4o-mini"}`), status: bad, code: ij, shape: oa},
		{name: "json/trailing comma", send: chat(`{` + okChat + `,}`), status: bad, code: ij, shape: oa},
		{name: "json/comment", send: chat(`{` + okChat + `/* hi */}`), status: bad, code: ij, shape: oa},
		{name: "json/raw newline in string", send: chat(`{"model":"openai:gpt-4o-mini","messages":[{"role":"user","content":"a` + "\n" + `b"}]}`), status: bad, code: ij, shape: oa},
		{name: "json/bad escape", send: chat(`{"model":"openai:gpt-4o-\x41"}`), status: bad, code: ij, shape: oa},
		{name: "json/short unicode escape", send: chat(`{"model":"\u12"}`), status: bad, code: ij, shape: oa},
		{name: "json/nesting 100k deep", send: chat(`{"model":"openai:gpt-4o-mini","x":` + nest(100000) + `}`), status: bad, code: ij, shape: oa, contains: "too deep"},
		{name: "json/nesting 10k unclosed", send: chat(`{"x":` + strings.Repeat("[", 10000)), status: bad, code: ij, shape: oa},
		{name: "json/top-level array 10k deep", send: msgs(nest(10000)), status: bad, code: ij, shape: an},
		// A body nested 9,000 deep is valid JSON: parsed, then refused for
		// its model.
		{name: "json/nesting 9k deep with unknown model", send: chat(`{"model":"no-such-model-x",` + hiMessages + `,"x":` + nest(9000) + `}`), status: unk, code: "model_unknown", shape: oa},
		// JSON must be UTF-8 (RFC 8259 §8.1); the gateway's view of a body
		// with invalid bytes can differ from the upstream's (encoding/json,
		// and so translation, turns them into U+FFFD; strict parsers refuse
		// the body).
		{name: "json/invalid UTF-8 in a string", send: chat(`{` + okChat[:len(okChat)-3] + "\xff\xfe\"}]}"), status: bad, code: ij, shape: oa},
		{name: "json/invalid UTF-8 in a key", send: chat(`{` + okChat + ",\"\xffmax_tokens\":5}"), status: bad, code: ij, shape: oa},
		{name: "json/UTF-8 encoded surrogate", send: chat(`{` + okChat[:len(okChat)-3] + "\xed\xa0\x80\"}]}"), status: bad, code: ij, shape: oa},
		// An escaped lone surrogate is valid JSON; as a model name it is
		// an unknown model.
		{name: "json/escaped lone surrogate as model", send: chat(`{"model":"\ud800",` + hiMessages + `}`), status: unk, code: "model_unknown", shape: oa},
		{name: "json/escaped lone surrogate key, no messages", send: chat(`{"\udfff":1}`), status: bad, code: ir, shape: oa, param: "messages"},

		// Wrong types.
		{name: "type/model number", send: chat(`{"model":42,` + hiMessages + `}`), status: bad, code: ir, shape: oa, param: "model"},
		{name: "type/model array", send: msgs(`{"model":["anthropic:claude-haiku-4-5"],"max_tokens":5,` + hiMessages + `}`), status: bad, code: ir, shape: an, contains: "model must be a string"},
		{name: "type/model object", send: chat(`{"model":{"id":"gpt-4o"},` + hiMessages + `}`), status: bad, code: ir, shape: oa, param: "model"},
		{name: "type/model boolean", send: chat(`{"model":true,` + hiMessages + `}`), status: bad, code: ir, shape: oa, param: "model"},
		{name: "type/models string", send: chat(`{"models":"openai:gpt-4o-mini",` + hiMessages + `}`), status: bad, code: ir, shape: oa, param: "models"},
		{name: "type/models with number", send: chat(`{"models":["openai:gpt-4o-mini",1],` + hiMessages + `}`), status: bad, code: ir, shape: oa, param: "models"},
		{name: "type/models with null", send: msgs(`{"models":[null],"max_tokens":5,` + hiMessages + `}`), status: bad, code: ir, shape: an},
		{name: "type/models object", send: chat(`{"models":{"0":"openai:gpt-4o-mini"},` + hiMessages + `}`), status: bad, code: ir, shape: oa, param: "models"},
		{name: "type/stream string", send: chat(`{` + okChat + `,"stream":"true"}`), status: bad, code: ir, shape: oa, param: "stream"},
		{name: "type/stream number", send: msgs(`{` + okMessages + `,"stream":1}`), status: bad, code: ir, shape: an},
		{name: "type/stream_options string", send: chat(`{` + okChat + `,"stream":true,"stream_options":"include_usage"}`), status: bad, code: ir, shape: oa, param: "stream_options"},
		{name: "type/stream_options array", send: chat(`{` + okChat + `,"stream":true,"stream_options":[true]}`), status: bad, code: ir, shape: oa, param: "stream_options"},
		{name: "type/messages string", send: chat(`{"model":"openai:gpt-4o-mini","messages":"Hi"}`), status: bad, code: ir, shape: oa, param: "messages"},
		{name: "type/messages object", send: msgs(`{"model":"anthropic:claude-haiku-4-5","max_tokens":5,"messages":{"role":"user"}}`), status: bad, code: ir, shape: an, contains: "messages must be"},
		{name: "type/max_tokens string", send: msgs(`{"model":"anthropic:claude-haiku-4-5","max_tokens":"5",` + hiMessages + `}`), status: bad, code: ir, shape: an, contains: "max_tokens"},
		{name: "type/max_tokens object", send: msgs(`{"model":"anthropic:claude-haiku-4-5","max_tokens":{},` + hiMessages + `}`), status: bad, code: ir, shape: an, contains: "max_tokens"},

		// Duplicate keys.
		{name: "dup/model twice", send: chat(`{"model":"openai:gpt-4o-mini","model":"anthropic:claude-haiku-4-5",` + hiMessages + `}`), status: bad, code: ir, shape: oa, param: "model", contains: "duplicate"},
		{name: "dup/model escaped twice", send: chat(`{"model":"openai:gpt-4o-mini","mod\u0065l":"anthropic:claude-haiku-4-5",` + hiMessages + `}`), status: bad, code: ir, shape: oa, param: "model"},
		{name: "dup/models twice", send: msgs(`{"models":["anthropic:claude-haiku-4-5"],"models":["openai:gpt-4o-mini"],"max_tokens":5,` + hiMessages + `}`), status: bad, code: ir, shape: an},
		{name: "dup/stream twice", send: chat(`{` + okChat + `,"stream":false,"stream":true}`), status: bad, code: ir, shape: oa, param: "stream"},
		{name: "dup/stream_options twice", send: chat(`{` + okChat + `,"stream":true,"stream_options":{"include_usage":true},"stream_options":{}}`), status: bad, code: ir, shape: oa, param: "stream_options"},
		{name: "dup/messages twice", send: chat(`{` + okChat + `,` + hiMessages + `}`), status: bad, code: ir, shape: oa, param: "messages"},
		{name: "dup/max_tokens twice", send: msgs(`{` + okMessages + `,"max_tokens":100000}`), status: bad, code: ir, shape: an, contains: "max_tokens"},

		// Keys that differ from routed fields only in case.
		{name: "case/MODEL beside model", send: chat(`{"model":"openai:gpt-4o-mini","MODEL":"gpt-4o",` + hiMessages + `}`), status: bad, code: ir, shape: oa, param: "model"},
		{name: "case/Model alone", send: msgs(`{"Model":"anthropic:claude-haiku-4-5","max_tokens":5,` + hiMessages + `}`), status: bad, code: ir, shape: an},
		{name: "case/Stream", send: chat(`{` + okChat + `,"Stream":true}`), status: bad, code: ir, shape: oa, param: "stream"},
		{name: "case/MAX_TOKENS", send: msgs(`{` + okMessages + `,"MAX_TOKENS":100000}`), status: bad, code: ir, shape: an},
		{name: "case/Models", send: chat(`{` + okChat + `,"Models":["anthropic:claude-haiku-4-5"]}`), status: bad, code: ir, shape: oa, param: "models"},
		{name: "case/Messages", send: chat(`{` + okChat + `,"Messages":[]}`), status: bad, code: ir, shape: oa, param: "messages"},
		{name: "case/escaped mod\\u0045l", send: chat(`{"model":"openai:gpt-4o-mini","mod\u0045l":"gpt-4o",` + hiMessages + `}`), status: bad, code: ir, shape: oa, param: "model"},
		{name: "case/escaped \\u0053tream", send: chat(`{` + okChat + `,"\u0053tream":true}`), status: bad, code: ir, shape: oa, param: "stream"},
		{name: "case/escaped long s \\u017ftream", send: chat(`{` + okChat + `,"\u017ftream":true}`), status: bad, code: ir, shape: oa, param: "stream"},
		// Go's encoding/json (Ollama, many proxies) folds "ſ" to "s" and
		// the Kelvin sign to "k" when it matches field names.
		{name: "case/raw long s ſtream", send: chat(`{` + okChat + `,"ſtream":true}`), status: bad, code: ir, shape: oa, param: "stream"},
		{name: "case/raw Kelvin sign max_toKens", send: msgs(`{` + okMessages + `,"max_to` + "\u212a" + `ens":100000}`), status: bad, code: ir, shape: an},

		// Missing required fields.
		{name: "missing/chat messages", send: chat(`{"model":"openai:gpt-4o-mini"}`), status: bad, code: ir, shape: oa, param: "messages"},
		{name: "missing/chat messages null", send: chat(`{"model":"openai:gpt-4o-mini","messages":null}`), status: bad, code: ir, shape: oa, param: "messages"},
		{name: "missing/empty object", send: chat(`{}`), status: bad, code: ir, shape: oa, param: "messages"},
		{name: "missing/messages messages", send: msgs(`{"model":"anthropic:claude-haiku-4-5","max_tokens":5}`), status: bad, code: ir, shape: an, contains: "messages is required"},
		{name: "missing/messages max_tokens", send: msgs(`{"model":"anthropic:claude-haiku-4-5",` + hiMessages + `}`), status: bad, code: ir, shape: an, contains: "max_tokens is required"},
		{name: "missing/embeddings input", send: post("/v1/embeddings", `{"model":"openai:text-embedding-3-small"}`), status: bad, code: ir, shape: oa, param: "input"},
		{name: "missing/embeddings input null", send: post("/v1/embeddings", `{"model":"openai:text-embedding-3-small","input":null}`), status: bad, code: ir, shape: oa, param: "input"},

		// Model lists and names.
		{name: "models/5000 names", send: chat(`{"model":"openai:gpt-4o-mini","models":[` + strings.Join(names5000, ",") + `],` + hiMessages + `}`), status: bad, code: ir, shape: oa, param: "models", contains: "at most 16"},
		{name: "models/17 names", send: msgs(`{"model":"anthropic:claude-haiku-4-5","models":[` + strings.Join(names16, ",") + `],"max_tokens":5,` + hiMessages + `}`), status: bad, code: ir, shape: an, contains: "at most 16"},
		{name: "models/unknown model", send: chat(`{"model":"gpt-99-ultra",` + hiMessages + `}`), status: unk, code: "model_unknown", shape: oa, param: "model"},
		{name: "models/unknown after a good one", send: chat(`{"model":"openai:gpt-4o-mini","models":["gpt-99-ultra"],` + hiMessages + `}`), status: unk, code: "model_unknown", shape: oa},
		{name: "models/unknown provider", send: msgs(`{"model":"nosuchprovider:claude-haiku-4-5","max_tokens":5,` + hiMessages + `}`), status: unk, code: "provider_unknown", shape: an},
		{name: "models/empty name in models", send: chat(`{"models":[""],` + hiMessages + `}`), status: bad, code: ir, shape: oa, param: "model"},
		{name: "models/blank name in models", send: chat(`{"models":["   "],` + hiMessages + `}`), status: bad, code: ir, shape: oa},
		{name: "models/empty model after prefix", send: chat(`{"model":"openai:",` + hiMessages + `}`), status: bad, code: ir, shape: oa, param: "model"},
		{name: "models/empty provider before colon", send: chat(`{"model":":gpt-4o",` + hiMessages + `}`), status: bad, code: ir, shape: oa, param: "model"},
		{name: "models/escaped newline in name", send: chat(`{"model":"openai:gpt-4o-mini\nX-Injected: 1",` + hiMessages + `}`), status: bad, code: ir, shape: oa, param: "model"},
		{name: "models/escaped NUL in name", send: msgs(`{"model":"anthropic:claude\u0000","max_tokens":5,` + hiMessages + `}`), status: bad, code: ir, shape: an},
		{name: "models/DEL in name", send: chat(`{"model":"openai:gpt` + "\x7f" + `",` + hiMessages + `}`), status: bad, code: ir, shape: oa, param: "model"},
		{name: "models/0xFF bytes in unknown model", send: chat(`{"model":"gpt-4o` + "\xff\xfe" + `",` + hiMessages + `}`), status: bad, code: ij, shape: oa},
		{name: "models/0xFF bytes after provider prefix", send: chat(`{"model":"openai:` + "\xff" + `",` + hiMessages + `}`), status: bad, code: ij, shape: oa},
		{name: "models/100 KB name", send: chat(`{"model":"` + long100k + `",` + hiMessages + `}`), status: bad, code: ir, shape: oa, param: "model"},
		{name: "models/100 KB name after provider", send: msgs(`{"model":"anthropic:` + long100k + `","max_tokens":5,` + hiMessages + `}`), status: bad, code: ir, shape: an},
		{name: "models/path traversal without provider", send: chat(`{"model":"../../etc/passwd",` + hiMessages + `}`), status: unk, code: "model_unknown", shape: oa},
		{name: "models/metadata URL", send: chat(`{"model":"http://169.254.169.254/latest/meta-data/",` + hiMessages + `}`), status: unk, code: "provider_unknown", shape: oa},
		{name: "models/file URL", send: msgs(`{"model":"file:///etc/passwd","max_tokens":5,` + hiMessages + `}`), status: unk, code: "provider_unknown", shape: an},
		{name: "models/unconfigured ollama", send: chat(`{"model":"ollama:llama3.2:latest",` + hiMessages + `}`), status: unk, code: "provider_unknown", shape: oa},
		{name: "models/unconfigured azure", send: chat(`{"models":["azure:gpt-4o"],` + hiMessages + `}`), status: unk, code: "provider_unknown", shape: oa},
		{name: "strict/path traversal after provider", env: envStrict, send: chat(`{"model":"openai:../../etc/passwd",` + hiMessages + `}`), status: forb, code: "model_not_allowed", shape: oa},
		{name: "strict/userinfo-looking name", env: envStrict, send: chat(`{"model":"openai:gpt-4o@evil.com",` + hiMessages + `}`), status: forb, code: "model_not_allowed", shape: oa},
		{name: "strict/custom provider traversal", env: envStrict, send: msgs(`{"model":"my-local:../../admin","max_tokens":5,` + hiMessages + `}`), status: forb, code: "model_not_allowed", shape: an},
		{name: "strict/unconfigured groq", env: envStrict, send: chat(`{"model":"groq:llama-3.3-70b-versatile",` + hiMessages + `}`), status: forb, code: "provider_not_allowed", shape: oa},
		{name: "strict/unconfigured google alias", env: envStrict, send: chat(`{"model":"gemini:gemini-2.5-flash",` + hiMessages + `}`), status: forb, code: "provider_not_allowed", shape: oa},

		// Requests no candidate can serve.
		{name: "format/embeddings model on chat", send: chat(`{"model":"openai:text-embedding-3-small",` + hiMessages + `}`), status: unk, code: "format_unsupported", shape: oa},
		{name: "format/claude on responses", send: post("/v1/responses", `{"model":"anthropic:claude-haiku-4-5","input":"Hi"}`), status: unk, code: "format_unsupported", shape: oa},
		{name: "format/chat model on embeddings", send: post("/v1/embeddings", `{"model":"anthropic:claude-haiku-4-5","input":"Hi"}`), status: unk, code: "format_unsupported", shape: oa},
		{name: "format/stream on embeddings", send: post("/v1/embeddings", `{"model":"openai:text-embedding-3-small","input":"Hi","stream":true}`), status: bad, code: ir, shape: oa, param: "stream"},
		{name: "format/n=2 with only Claude", send: chat(`{"model":"anthropic:claude-haiku-4-5","models":["anthropic:claude-sonnet-4-5"],` + hiMessages + `,"n":2}`), status: bad, code: ir, shape: oa, param: "n"},

		// Content types.
		{name: "ctype/text/plain", send: withCT("/v1/chat/completions", "text/plain", `{`+okChat+`}`), status: http.StatusUnsupportedMediaType, code: "unsupported_media_type", shape: oa},
		{name: "ctype/form", send: withCT("/v1/chat/completions", "application/x-www-form-urlencoded", "model=openai%3Agpt-4o-mini"), status: http.StatusUnsupportedMediaType, code: "unsupported_media_type", shape: oa},
		{name: "ctype/multipart", send: withCT("/v1/messages", "multipart/form-data; boundary=x", "--x\r\n\r\n{}\r\n--x--\r\n"), status: http.StatusUnsupportedMediaType, code: "unsupported_media_type", shape: an},
		{name: "ctype/missing", send: withCT("/v1/chat/completions", "", `{`+okChat+`}`), status: http.StatusUnsupportedMediaType, code: "unsupported_media_type", shape: oa},
		{name: "ctype/application/jsonp", send: withCT("/v1/embeddings", "application/jsonp", `{}`), status: http.StatusUnsupportedMediaType, code: "unsupported_media_type", shape: oa},
		{name: "ctype/list of types", send: withCT("/v1/messages", "application/json, text/plain", `{`+okMessages+`}`), status: http.StatusUnsupportedMediaType, code: "unsupported_media_type", shape: an},
		{name: "ctype/0xFF in Content-Type", send: raw("POST /v1/chat/completions HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\xff\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}"), status: http.StatusUnsupportedMediaType, code: "unsupported_media_type", shape: oa},

		// Oversized bodies (limit 1 MiB).
		{name: "size/Content-Length over the limit", send: post("/v1/chat/completions", `{"x":"`+strings.Repeat("a", hostileMaxBody)+`"}`), status: http.StatusRequestEntityTooLarge, code: "input_too_large", shape: oa},
		{name: "size/chunked over the limit", send: request(c, http.MethodPost, "/v1/messages", "application/json", chunked(`{"x":"`+strings.Repeat("a", hostileMaxBody)+`"}`)), status: http.StatusRequestEntityTooLarge, code: "input_too_large", shape: an},
		{name: "size/declared 100 GB, nothing sent", send: raw("POST /v1/chat/completions HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: 100000000000\r\n\r\n"), status: http.StatusRequestEntityTooLarge, code: "input_too_large", shape: oa},

		// Methods and paths.
		{name: "method/GET chat", send: get("/v1/chat/completions"), status: nAll, code: "method_not_allowed", shape: oa},
		{name: "method/PUT messages", send: method(http.MethodPut, "/v1/messages"), status: nAll, code: "method_not_allowed", shape: an},
		{name: "method/DELETE models", send: method(http.MethodDelete, "/v1/models"), status: nAll, code: "method_not_allowed", shape: oa},
		{name: "method/lower-case post", send: method("post", "/v1/chat/completions"), status: nAll, code: "method_not_allowed", shape: oa},
		{name: "method/OPTIONS without CORS", send: method(http.MethodOptions, "/v1/chat/completions", "Origin", "https://evil.example", "Access-Control-Request-Method", "POST"), status: nAll, code: "method_not_allowed", shape: oa},
		{name: "path/leading double slash", send: post("//v1/chat/completions", `{`+okChat+`}`), status: notF, code: "not_found", shape: oa},
		{name: "path/dot-dot segment", send: post("/v1/x/../chat/completions", `{`+okChat+`}`), status: notF, code: "not_found", shape: oa},
		{name: "path/trailing slash", send: post("/v1/chat/completions/", `{`+okChat+`}`), status: notF, code: "not_found", shape: oa},
		{name: "path/upper case", send: post("/V1/CHAT/COMPLETIONS", `{`+okChat+`}`), status: notF, code: "not_found", shape: oa},
		{name: "path/messages dot-dot to chat", send: post("/v1/messages/../chat/completions", `{`+okChat+`}`), status: notF, code: "not_found", shape: an},
		{name: "path/encoded slash", send: post("/v1/chat%2Fcompletions", `{`+okChat+`}`), status: notF, code: "not_found", shape: oa},
		{name: "path/encoded NUL", send: post("/v1/chat/completions%00", `{`+okChat+`}`), status: notF, code: "not_found", shape: oa},
		{name: "path/encoded 0xFF", send: post("/v1/%FF", `{`+okChat+`}`), status: notF, code: "not_found", shape: oa},
		{name: "path/raw 0xFF in request line", send: raw("POST /v1/\xff\xfe HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}"), status: notF, code: "not_found", shape: oa},
		{name: "path/encoded unreserved letter", send: post("/v1/chat/%63ompletions", `{"model":42}`), status: notF, code: "not_found", shape: oa},
		{name: "path/model id 0xFF", send: get("/v1/models/%FF%FE"), status: notF, code: "model_unknown", shape: oa},
		{name: "path/model id traversal", send: get("/v1/models/..%2F..%2Fetc%2Fpasswd", "Anthropic-Version", "2023-06-01"), status: notF, code: "model_unknown", shape: an},
		{name: "path/model id 100 KB", send: get("/v1/models/" + long100k), status: notF, code: ir, shape: oa},

		// Headers.
		{name: "header/900 KB Authorization", send: chat(`{"model":"no-such-model-x",`+hiMessages+`}`, "Authorization", "Bearer sk-"+strings.Repeat("k", 900<<10)), status: unk, code: "model_unknown", shape: oa},
		{name: "header/10,000 headers", send: rawPost("/v1/chat/completions", manyHeaders(10000), `{"model":"no-such-model-x",`+hiMessages+`}`), status: unk, code: "model_unknown", shape: oa},
		{name: "header/gzip Content-Encoding", send: chat(gzipped(`{`+okChat+`}`), "Content-Encoding", "gzip"), status: bad, code: ij, shape: oa},
		{name: "header/invalid chunk size", send: raw("POST /v1/chat/completions HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\nzz\r\n{}\r\n0\r\n\r\n"), status: bad, code: ir, shape: oa, contains: "could not read the request body"},
		{name: "header/Content-Length shorter than the body", send: raw("POST /v1/messages HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: 9\r\n\r\n{\"model\":\"x\"}GET /v1/models HTTP/1.1\r\nHost: {host}\r\n\r\n"), status: bad, code: ij, shape: an},
		{name: "header/Expect 100-continue with 100 GB", send: raw("POST /v1/chat/completions HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nExpect: 100-continue\r\nContent-Length: 100000000000\r\n\r\n"), status: http.StatusRequestEntityTooLarge, code: "input_too_large", shape: oa},
		{name: "header/bare LF line endings", send: raw("POST /v1/chat/completions HTTP/1.1\nHost: {host}\nContent-Type: application/json\nContent-Length: 1\nConnection: close\n\n["), status: bad, code: ij, shape: oa},
		{name: "header/CR inside a value", send: raw("POST /v1/chat/completions HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nX-Title: a\rInjected: b\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}"), status: bad, code: "400 Bad Request", shape: nh},
		{name: "header/NUL inside a value", send: raw("POST /v1/chat/completions HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nX-Title: a\x00b\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}"), status: bad, code: "400 Bad Request", shape: nh},
		// net/http unfolds obs-fold (RFC 9112 §5.2 allows it) and, with
		// both Content-Length and Transfer-Encoding, reads the chunked body
		// and closes the connection after (RFC 9112 §6.3): the gateway
		// sees an ordinary {} body.
		{name: "header/obs-fold continuation", send: raw("POST /v1/chat/completions HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nX-Title: a\r\n Injected: b\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}"), status: bad, code: ir, shape: oa, param: "messages"},
		{name: "header/Content-Length and Transfer-Encoding", send: raw("POST /v1/chat/completions HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n2\r\n{}\r\n0\r\n\r\n"), status: bad, code: ir, shape: oa, param: "messages"},
		{name: "header/two Content-Lengths", send: raw("POST /v1/chat/completions HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: 2\r\nContent-Length: 3\r\nConnection: close\r\n\r\n{}"), status: bad, code: "400 Bad Request", shape: nh},
		{name: "header/Transfer-Encoding gzip", send: raw("POST /v1/chat/completions HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nTransfer-Encoding: gzip, chunked\r\nConnection: close\r\n\r\n0\r\n\r\n"), status: http.StatusNotImplemented, code: "Unsupported transfer encoding", shape: nh},
		{name: "header/2 MB Authorization", send: raw("POST /v1/chat/completions HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer " + strings.Repeat("k", 2<<20) + "\r\n\r\n"), status: http.StatusRequestHeaderFieldsTooLarge, code: "431 Request Header Fields Too Large", shape: nh},

		// Hosts.
		{name: "host/other Host", env: envStrict, send: chat(`{`+okChat+`}`, "Host", "evil.example"), status: forb, code: "host_not_allowed", shape: oa},
		{name: "host/suffix of an allowed host", env: envStrict, send: msgs(`{`+okMessages+`}`, "Host", "127.0.0.1.evil.example:80"), status: forb, code: "host_not_allowed", shape: an},
		{name: "host/trailing dot", env: envStrict, send: chat(`{`+okChat+`}`, "Host", "localhost."), status: forb, code: "host_not_allowed", shape: oa},
		{name: "host/absolute-form request target", env: envStrict, send: raw("POST http://evil.example/v1/chat/completions HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}"), status: forb, code: "host_not_allowed", shape: oa},
		{name: "host/HTTP/1.0 without Host", env: envStrict, send: raw("POST /v1/chat/completions HTTP/1.0\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"), status: forb, code: "host_not_allowed", shape: oa},
		{name: "host/HTTP/1.1 without Host", send: raw("POST /v1/chat/completions HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}"), status: bad, code: "missing required Host header", shape: nh},
		{name: "host/two Host headers", send: raw("POST /v1/chat/completions HTTP/1.1\r\nHost: {host}\r\nHost: evil.example\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}"), status: bad, code: "400 Bad Request", shape: nh},
		{name: "host/space in Host", send: raw("POST /v1/chat/completions HTTP/1.1\r\nHost: evil example\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}"), status: bad, code: "malformed Host header", shape: nh},

		// CORS.
		{name: "cors/POST from another origin", env: envStrict, send: chat(`{"model":"my-local:llama3.2",`+hiMessages+`}`, "Origin", "https://evil.example"), status: forb, code: "origin_not_allowed", shape: oa},
		{name: "cors/origin null", env: envStrict, send: msgs(`{"model":"my-local:llama3.2","max_tokens":5,`+hiMessages+`}`, "Origin", "null"), status: forb, code: "origin_not_allowed", shape: an},
		{name: "cors/allowed origin as a prefix", env: envStrict, send: chat(`{"model":"my-local:llama3.2",`+hiMessages+`}`, "Origin", "https://app.example.evil.example"), status: forb, code: "origin_not_allowed", shape: oa},
		{name: "cors/preflight to an unknown path", env: envStrict, send: method(http.MethodOptions, "/v1/admin", "Origin", "https://app.example", "Access-Control-Request-Method", "POST"), status: notF, code: "not_found", shape: oa},
		{name: "host/0xFF in Host", env: envStrict, send: raw("POST /v1/chat/completions HTTP/1.1\r\nHost: ev\xffil.example\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}"), status: bad, code: "malformed Host header", shape: nh},
		{name: "cors/0xFF in Origin", env: envStrict, send: msgs(`{"model":"my-local:llama3.2","max_tokens":5,`+hiMessages+`}`, "Origin", "https://ev\xffil.example"), status: forb, code: "origin_not_allowed", shape: an},
		{name: "cors/preflight from another origin", env: envStrict, send: method(http.MethodOptions, "/v1/chat/completions", "Origin", "https://evil.example", "Access-Control-Request-Method", "POST"), status: forb, code: "origin_not_allowed", shape: oa},

		// Slow and cut-short bodies (body read timeout 300 ms, limit 4 KiB).
		{name: "body/stalled", env: envSlow, send: raw("POST /v1/chat/completions HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"model\":"), status: http.StatusRequestTimeout, code: "request_timeout", shape: oa},
		{name: "body/trickled a byte at a time", env: envSlow, send: rawAfter("POST /v1/messages HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n", trickle), status: http.StatusRequestTimeout, code: "request_timeout", shape: an},
		{name: "body/declared 8 KiB over a 4 KiB limit, body withheld", env: envSlow, send: raw("POST /v1/chat/completions HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: 8192\r\n\r\n"), status: http.StatusRequestEntityTooLarge, code: "input_too_large", shape: oa},
		// A body cut short by a half-close: net/http cancels the request
		// context at EOF, and the gateway answers 499 client_closed_request
		// (which a half-closed client still reads).
		{name: "body/half-closed after part of it", env: envSlow, send: rawAfter("POST /v1/chat/completions HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"model\":", closeWrite), status: 499, code: "client_closed_request", shape: oa},
		{name: "body/half-closed chunked", env: envSlow, send: rawAfter("POST /v1/messages HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{\"a\":\r\n", closeWrite), status: 499, code: "client_closed_request", shape: an},

		// Answered by net/http before the gateway sees the request.
		{name: "nethttp/garbage request line", send: raw("GARBAGE\r\n\r\n"), status: bad, code: "400 Bad Request", shape: nh},
		{name: "nethttp/NUL in the request line", send: raw("POST /v1/chat\x00/completions HTTP/1.1\r\nHost: {host}\r\n\r\n"), status: bad, code: "400 Bad Request", shape: nh},
		{name: "nethttp/space in the path", send: raw("POST /v1/chat completions HTTP/1.1\r\nHost: {host}\r\n\r\n"), status: bad, code: "400 Bad Request", shape: nh},
		{name: "nethttp/invalid method", send: raw("P\xffST /v1/chat/completions HTTP/1.1\r\nHost: {host}\r\n\r\n"), status: bad, code: "400 Bad Request", shape: nh},
		{name: "nethttp/2 MB request target", send: raw("GET /v1/models/" + strings.Repeat("a", 2<<20) + " HTTP/1.1\r\nHost: {host}\r\n\r\n"), status: http.StatusRequestHeaderFieldsTooLarge, code: "431 Request Header Fields Too Large", shape: nh},
		// 417 with an empty body.
		{name: "nethttp/unknown Expect", send: raw("POST /v1/chat/completions HTTP/1.1\r\nHost: {host}\r\nExpect: teapot\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}"), status: http.StatusExpectationFailed, code: "", shape: nh},
	}

	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := envs[tc.env]
			resp, body := tc.send(t, e.srv.URL)
			checkHostile(t, tc, resp, body)
		})
	}
	for name, e := range map[string]*testEnv{"main": mainEnv, "strict": strict, "slow": slow} {
		require.Zero(t, e.oa.Count(), "%s: requests reached the OpenAI upstream: %v", name, recorded(e.oa.Requests()))
		require.Zero(t, e.an.Count(), "%s: requests reached the Anthropic upstream: %v", name, recorded(e.an.Requests()))
	}
	require.Zero(t, local.Count(), "requests reached the custom upstream: %v", recorded(local.Requests()))
}

// recorded describes upstream requests for a failure message.
func recorded(rs []providertest.Recorded) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.Path + " " + truncate(string(r.Body), 200)
	}
	return out
}

// checkHostile asserts the answer to one case.
func checkHostile(t *testing.T, tc hostileCase, resp *http.Response, body []byte) {
	t.Helper()
	require.Equal(t, tc.status, resp.StatusCode, "body: %s", truncate(string(body), 512))
	if tc.shape == hostileNetHTTP {
		require.Empty(t, resp.Header.Get(HeaderRequestID), "net/http's answer, not the gateway's")
		require.Contains(t, string(body), tc.code)
		return
	}
	require.Equal(t, "application/json", resp.Header.Get("Content-Type"))
	require.True(t, strings.HasPrefix(resp.Header.Get(HeaderRequestID), "req_"), "request id %q", resp.Header.Get(HeaderRequestID))
	require.Equal(t, "0", resp.Header.Get(HeaderAttempts), "no upstream attempt")
	require.True(t, json.Valid(body), "invalid JSON: %q", truncate(string(body), 512))
	require.True(t, utf8.Valid(body), "invalid UTF-8: %q", truncate(string(body), 512))
	require.Less(t, len(body), 4096, "the error echoes too much of the request")
	var top map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(body, &top))
	var inner map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(top["error"], &inner), "%s", body)
	var message string
	switch tc.shape {
	case hostileOpenAI:
		_, hasType := top["type"]
		require.False(t, hasType, "an OpenAI error has no top-level type: %s", body)
		require.Contains(t, inner, "param", "%s", body)
		v := decodeOpenAIError(t, body)
		require.Equal(t, tc.code, v.Error.Code, "%s", body)
		require.NotEmpty(t, v.Error.Type)
		if tc.param != "" {
			require.NotNil(t, v.Error.Param, "%s", body)
			require.Equal(t, tc.param, *v.Error.Param, "%s", body)
		}
		message = v.Error.Message
	case hostileAnthropic:
		v := decodeAnthropicError(t, body)
		require.Equal(t, tc.code, v.Error.Code, "%s", body)
		require.NotEmpty(t, v.Error.Type)
		message = v.Error.Message
	}
	require.NotEmpty(t, message)
	if tc.contains != "" {
		require.Contains(t, message, tc.contains)
	}
}

// manyHeaders returns n distinct header lines.
func manyHeaders(n int) string {
	var b strings.Builder
	for i := range n {
		b.WriteString("X-H-" + strconv.Itoa(i) + ": v\r\n")
	}
	return b.String()
}

// gzipped returns s gzip-compressed.
func gzipped(s string) string {
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	_, _ = w.Write([]byte(s))
	_ = w.Close()
	return b.String()
}

// trickle sends a body of JSON whitespace, one byte every 50 ms, until
// the connection fails or 100 bytes are sent.
func trickle(conn net.Conn) {
	for i := 0; i < 100; i++ {
		if _, err := conn.Write([]byte{' '}); err != nil {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// closeWrite half-closes the connection: the request body ends early but
// the response can still be read.
func closeWrite(conn net.Conn) { _ = conn.(*net.TCPConn).CloseWrite() }
