package redaction_test

import (
	"fmt"

	"github.com/llmgate/gateway/redaction"
)

func Example() {
	r, err := redaction.Compile([]redaction.Rule{
		{Preset: redaction.PresetEmail},
		{Preset: redaction.PresetPaymentCard},
		{Name: "ticket", From: `TICKET-(\d+)`, To: "ticket #$1"},
	})
	if err != nil {
		panic(err)
	}
	out, counts := r.Text("Mail jane@example.com about TICKET-42, card 4111 1111 1111 1111 (not 4111 1111 1111 1112).")
	fmt.Println(out)
	for i, name := range r.Names() {
		fmt.Printf("%s: %d\n", name, counts.Get(i))
	}
	// Output:
	// Mail [EMAIL] about ticket #42, card [CARD] (not 4111 1111 1111 1112).
	// email: 1
	// payment_card: 1
	// ticket: 1
}

func ExampleCompile() {
	_, err := redaction.Compile([]redaction.Rule{
		{From: `x*`},
		{Preset: "passport"},
		{From: `(a)b`, To: "$1x"},
	})
	fmt.Println(err)
	// Output:
	// redaction: rule 0 (rule 0): pattern matches the empty string
	// redaction: rule 1 (passport): unknown preset "passport" (known: api_key, email, payment_card, us_ssn, phone, ip_address)
	// redaction: rule 2 (rule 2): replacement refers to a group the pattern lacks: $1x (write ${1}x for group 1 followed by x)
}

func ExampleRedactor_JSON() {
	r, err := redaction.Compile([]redaction.Rule{{Preset: redaction.PresetUSSSN, To: "***-**-****"}})
	if err != nil {
		panic(err)
	}
	body := []byte(`{"messages":[{"role":"user","content":"My SSN is 078\u002d05-1120."}]}`)
	out, counts, err := r.JSON(body)
	if err != nil {
		panic(err)
	}
	fmt.Println(string(out), counts.Total())
	// Output:
	// {"messages":[{"role":"user","content":"My SSN is ***-**-****."}]} 1
}

func ExampleStream() {
	r, err := redaction.Compile([]redaction.Rule{{Preset: redaction.PresetEmail}})
	if err != nil {
		panic(err)
	}
	s := r.NewStream(redaction.AcrossChunks)
	for _, chunk := range []string{"Write to jane.do", "e@exam", "ple.com today", "."} {
		fmt.Printf("%q -> %q\n", chunk, s.Feed([]byte(chunk)))
	}
	fmt.Printf("end -> %q\n", s.Flush())
	// Output:
	// "Write to jane.do" -> "Write to "
	// "e@exam" -> ""
	// "ple.com today" -> "[EMAIL] "
	// "." -> ""
	// end -> "today."
}

func ExampleEventStream() {
	r, err := redaction.Compile([]redaction.Rule{{Preset: redaction.PresetPhone}})
	if err != nil {
		panic(err)
	}
	s := r.NewEventStream(redaction.Anthropic, redaction.AcrossChunks)
	for _, data := range []string{
		`{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Call 415-555"}}`,
		`{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"-2671 now, or +1"}}`,
		`{"type":"content_block_stop","index":0}`,
	} {
		pre, out, err := s.Event([]byte(data))
		if err != nil {
			panic(err)
		}
		if pre != nil {
			fmt.Printf("event: %s\ndata: %s\n", redaction.Anthropic.DeltaEvent(), pre)
		}
		fmt.Printf("data: %s\n", out)
	}
	// Output:
	// data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Call "}}
	// data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"[PHONE] now, or "}}
	// event: content_block_delta
	// data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"+1"}}
	// data: {"type":"content_block_stop","index":0}
}
