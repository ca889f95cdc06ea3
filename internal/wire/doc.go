// Package wire holds the JSON shapes of the OpenAI chat completions API and
// the Anthropic Messages API that llmgate reads, writes or translates:
// requests, JSON responses, stream chunks and events, usage and errors.
//
// The types are plain structs for encoding/json. Fields whose JSON type is a
// union (a string or an array of parts, a string or an object) are
// json.RawMessage and are interpreted by the code that uses them. Field
// order follows the order the upstream APIs use, so marshalled values read
// like the real thing and are deterministic. Fields that a translation
// writes but must not omit when empty are pointers or carry no omitempty.
//
// The zero value of every type is an empty value of that shape. Values are
// not safe for concurrent mutation; they hold no hidden state.
package wire
