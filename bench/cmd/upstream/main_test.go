package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestIsStream(t *testing.T) {
	for body, want := range map[string]bool{
		`{"model":"m","stream":true}`:                           true,
		`{"model":"m", "stream" : true }`:                       true,
		`{"model":"m","stream":false}`:                          false,
		`{"model":"m"}`:                                         false,
		`{"stream_options":{"include_usage":true}}`:             false,
		`{"stream":false,"stream_options":{"include_usage":1}}`: false,
	} {
		if got := isStream([]byte(body)); got != want {
			t.Errorf("isStream(%s) = %v, want %v", body, got, want)
		}
	}
}

func TestServer(t *testing.T) {
	s := &server{def: build(params{events: 3, delay: time.Millisecond, size: 100}), cache: map[string]*profile{}}
	srv := httptest.NewServer(s)
	defer srv.Close()

	t.Run("json", func(t *testing.T) {
		resp, err := http.Post(srv.URL+"/v1/chat/completions", "application/json", strings.NewReader(`{"model":"m"}`))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var v struct {
			Choices []struct {
				Message struct{ Content string }
			}
			Usage struct {
				TotalTokens int `json:"total_tokens"`
			}
		}
		if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
			t.Fatal(err)
		}
		if len(v.Choices) != 1 || len(v.Choices[0].Message.Content) != 100 || v.Usage.TotalTokens == 0 {
			t.Fatalf("response = %+v", v)
		}
	})

	for _, tc := range []struct {
		name   string
		query  string
		chunks int
	}{{"stream", "", 3}, {"stream with query", "?events=7&delay=0s", 7}} {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := http.Post(srv.URL+"/prefix/v1/chat/completions"+tc.query, "application/json",
				strings.NewReader(`{"model":"m","stream":true,"stream_options":{"include_usage":true}}`))
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
				t.Fatalf("Content-Type %q", ct)
			}
			body, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			events := bytes.Split(bytes.TrimSuffix(body, []byte("\n\n")), []byte("\n\n"))
			if len(events) != tc.chunks+4 {
				t.Fatalf("%d events, want %d:\n%s", len(events), tc.chunks+4, body)
			}
			for i, ev := range events {
				data, ok := bytes.CutPrefix(ev, []byte("data: "))
				if !ok {
					t.Fatalf("event %d is not a data event: %q", i, ev)
				}
				if i == len(events)-1 {
					if string(data) != "[DONE]" {
						t.Fatalf("last event %q", data)
					}
					continue
				}
				if !json.Valid(data) {
					t.Fatalf("event %d is not JSON: %s", i, data)
				}
			}
			if !bytes.Contains(events[len(events)-2], []byte(`"choices":[],"usage":{"prompt_tokens"`)) {
				t.Fatalf("no usage chunk before [DONE]: %s", events[len(events)-2])
			}
		})
	}

	t.Run("bad query", func(t *testing.T) {
		resp, err := http.Post(srv.URL+"/v1/chat/completions?events=x", "application/json", strings.NewReader(`{}`))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("status %d", resp.StatusCode)
		}
	})
}
