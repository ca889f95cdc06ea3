package sse_test

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/llmgate/gateway/internal/sse"
)

func ExampleReader() {
	// CR, LF and CRLF line endings, a keep-alive comment, a multi-line
	// data field and a final event without its blank line.
	stream := ": keep-alive\r\r" +
		"event: message_start\r\ndata: {\"a\":\r\ndata: 1}\r\n\r\n" +
		"data: [DONE]"
	r := sse.NewReader(strings.NewReader(stream), 0)
	for {
		ev, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			fmt.Println("error:", err)
			return
		}
		if ev.IsComment() {
			fmt.Printf("comment %q\n", ev.Raw)
			continue
		}
		fmt.Printf("event=%q data=%q raw=%q\n", ev.Name, ev.Data, ev.Raw)
	}
	// Output:
	// comment ": keep-alive\r\r"
	// event="message_start" data="{\"a\":\n1}" raw="event: message_start\r\ndata: {\"a\":\r\ndata: 1}\r\n\r\n"
	// event="" data="[DONE]" raw="data: [DONE]\n\n"
}

func ExampleAppendEvent() {
	b := sse.AppendEvent(nil, "content_block_delta", []byte("line one\nline two"))
	fmt.Printf("%q\n", b)
	// Output:
	// "event: content_block_delta\ndata: line one\ndata: line two\n\n"
}

func ExampleWriter() {
	rec := httptest.NewRecorder()
	handler := func(w http.ResponseWriter, _ *http.Request) {
		sse.SetHeaders(w.Header())
		sw := sse.NewWriter(w)
		_ = sw.WriteEvent("ping", []byte("{}"))
		_ = sw.Write([]byte(": pass-through block\n\n"))
		_ = sw.Flush()
	}
	handler(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	fmt.Println(rec.Header().Get("Content-Type"), rec.Flushed)
	fmt.Print(rec.Body.String())
	// Output:
	// text/event-stream true
	// event: ping
	// data: {}
	//
	// : pass-through block
}
