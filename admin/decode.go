package admin

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// MaxBody bounds a request body, in bytes; a longer one answers 413
// body_too_large.
const MaxBody = 64 << 10

// object is a request body: a JSON object's members by name, each decoded
// on demand, so that an absent member, a null one and a value differ.
type object map[string]json.RawMessage

// readObject reads r's body as a JSON object whose members are all in
// allowed. The body must be application/json (any charset parameter must be
// utf-8); an empty body without a Content-Type is the empty object, so
// "curl -X POST" works. Unknown members are refused (400, with the member
// as field), so are trailing data and duplicate members; member names are
// case-sensitive. Decoder messages are not passed on: they could quote the
// body, which may hold a provider key.
func readObject(w http.ResponseWriter, r *http.Request, allowed ...string) (object, *apiError) {
	ct := r.Header.Get("Content-Type")
	if ct != "" && !isJSON(ct) {
		return nil, &apiError{http.StatusUnsupportedMediaType, CodeUnsupportedMedia, "the body must be application/json", ""}
	}
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBody))
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return nil, &apiError{http.StatusRequestEntityTooLarge, CodeBodyTooLarge,
				"the body is larger than " + strconv.Itoa(MaxBody) + " bytes", ""}
		}
		return nil, badJSON("", "the body could not be read")
	}
	data = bytes.TrimSpace(data)
	if len(data) == 0 {
		if ct != "" {
			return nil, badJSON("", "the body is empty; send a JSON object")
		}
		return object{}, nil
	}
	if ct == "" {
		return nil, &apiError{http.StatusUnsupportedMediaType, CodeUnsupportedMedia, "the body must be application/json", ""}
	}
	if data[0] != '{' {
		return nil, badJSON("", "the body must be a JSON object")
	}
	var o object
	if err := json.Unmarshal(data, &o); err != nil {
		msg := "the body is not valid JSON"
		if se, ok := errors.AsType[*json.SyntaxError](err); ok {
			msg += " (at byte " + strconv.FormatInt(se.Offset, 10) + ")"
		}
		return nil, badJSON("", msg)
	}
	for name := range o {
		if !contains(allowed, name) {
			return nil, badJSON(name, "unknown field; expected one of: "+strings.Join(allowed, ", "))
		}
	}
	if dup := duplicateMember(data); dup != "" {
		return nil, badJSON(dup, "the field is given twice")
	}
	return o, nil
}

// isJSON reports whether a Content-Type is application/json (or a +json
// type), without a charset other than UTF-8.
func isJSON(ct string) bool {
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil || (mt != "application/json" && !(strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json"))) {
		return false
	}
	cs, ok := params["charset"]
	return !ok || strings.EqualFold(cs, "utf-8") || strings.EqualFold(cs, "utf8")
}

func contains(l []string, s string) bool {
	for _, v := range l {
		if v == s {
			return true
		}
	}
	return false
}

// duplicateMember returns the name of a top-level member given twice in
// data, a valid JSON object, or "".
func duplicateMember(data []byte) string {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.Token() // {
	seen := map[string]bool{}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return ""
		}
		name, _ := t.(string)
		if seen[name] {
			return name
		}
		seen[name] = true
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return ""
		}
	}
	return ""
}

// isNull reports whether a member's value is the literal null.
func isNull(v json.RawMessage) bool { return string(v) == "null" }

// str decodes the string member name: nil when absent, a pointer to "" when
// null.
func (o object) str(name string) (*string, *apiError) {
	v, ok := o[name]
	if !ok {
		return nil, nil
	}
	var s string
	if !isNull(v) && (v[0] != '"' || json.Unmarshal(v, &s) != nil) {
		return nil, badJSON(name, "must be a string")
	}
	return &s, nil
}

// int64 decodes the integer member name: nil when absent or null. A
// number with a fraction or an exponent, or beyond int64, is refused.
func (o object) int64(name string) (*int64, *apiError) {
	v, ok := o[name]
	if !ok || isNull(v) {
		return nil, nil
	}
	n, err := strconv.ParseInt(string(v), 10, 64)
	if err != nil {
		return nil, badJSON(name, "must be an integer")
	}
	return &n, nil
}

// list decodes the string-array member name: nil when absent, a pointer to
// an empty slice when null or [].
func (o object) list(name string) (*[]string, *apiError) {
	v, ok := o[name]
	if !ok {
		return nil, nil
	}
	l := []string{}
	if !isNull(v) && (v[0] != '[' || json.Unmarshal(v, &l) != nil) {
		return nil, badJSON(name, "must be an array of strings")
	}
	if l == nil { // "[]" decodes to an empty, non-nil slice; keep it so
		l = []string{}
	}
	return &l, nil
}

// time decodes the RFC 3339 timestamp member name: nil when absent, a
// pointer to the zero time when null.
func (o object) time(name string) (*time.Time, *apiError) {
	s, e := o.str(name)
	if e != nil {
		e.message = "must be an RFC 3339 timestamp (\"2027-01-31T00:00:00Z\") or null"
		return nil, e
	}
	if s == nil {
		return nil, nil
	}
	var t time.Time
	if !isNull(o[name]) {
		var err error
		if t, err = time.Parse(time.RFC3339, *s); err != nil {
			return nil, invalid(name, CodeInvalidTimestamp, "must be an RFC 3339 timestamp (\"2027-01-31T00:00:00Z\") or null")
		}
	}
	return &t, nil
}
