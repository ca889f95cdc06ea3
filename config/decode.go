package config

import (
	"encoding"
	"fmt"
	"iter"
	"math"
	"reflect"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// decoder walks a YAML node tree into a Go value, collecting every problem
// with its field path instead of stopping at the first.
type decoder struct {
	getenv func(string) string
	lines  map[string]int    // field path → line
	raws   map[string]string // field path → scalar text before ${env:} expansion
	bad    map[string]bool   // field paths that could not be decoded
	env    map[string]string // variables expanded: name → value
	errs   []*fieldError
	unset  []*fieldError // unset variables, reported by requireVariables
	nfail  int           // problems so far, unset variables included
}

// fieldError is one problem with one field.
type fieldError struct {
	path string
	line int
	msg  string
}

func (d *decoder) fail(path string, line int, format string, args ...any) {
	d.bad[path] = true
	d.nfail++
	d.errs = append(d.errs, &fieldError{path: path, line: line, msg: fmt.Sprintf(format, args...)})
}

// requireVariables reports the unset variables, except those of disabled
// providers: a disabled provider needs no key.
func (d *decoder) requireVariables(f *File) {
	for _, e := range d.unset {
		if i, ok := providerIndex(e.path); ok && i < len(f.Providers) && f.Providers[i].Disabled {
			continue
		}
		d.bad[e.path] = true
		d.errs = append(d.errs, e)
	}
}

// providerIndex returns i when path is "providers[i]" or under it.
func providerIndex(path string) (int, bool) {
	rest, ok := strings.CutPrefix(path, "providers[")
	if !ok {
		return 0, false
	}
	end := strings.IndexByte(rest, ']')
	if end < 0 {
		return 0, false
	}
	i, err := strconv.Atoi(rest[:end])
	return i, err == nil
}

// failAt reports a problem found after decoding, at the line of its path
// (or of its closest parent when the field is absent).
func (d *decoder) failAt(path, format string, args ...any) {
	d.fail(path, lineOf(d.lines, path), format, args...)
}

// lineOf returns the line of path, or of its closest enclosing field that
// lines has; 0 when none has one.
func lineOf(lines map[string]int, path string) int {
	for p := range enclosing(path) {
		if l, ok := lines[p]; ok {
			return l
		}
	}
	return 0
}

// enclosing yields path and then each field that encloses it:
// "providers[1].models[0].id", "providers[1].models[0]",
// "providers[1].models", "providers[1]", "providers".
func enclosing(path string) iter.Seq[string] {
	return func(yield func(string) bool) {
		for path != "" && yield(path) {
			i := strings.LastIndexAny(path, ".[")
			if i < 0 {
				return
			}
			path = path[:i]
		}
	}
}

// show quotes the value of the field at path for an error message. When
// the value came from ${env:...} references it shows the text as written,
// never the expanded value, which may be secret.
func (d *decoder) show(path, value string) string {
	if raw, ok := d.raws[path]; ok && raw != value {
		return strconv.Quote(raw)
	}
	return strconv.Quote(value)
}

var (
	durationType        = reflect.TypeFor[time.Duration]()
	textUnmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()
)

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	}
	return "a scalar"
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.Tag == "!!null"
}

func join(path, field string) string {
	if path == "" {
		return field
	}
	return path + "." + field
}

// decode stores node n into v; path names v in errors.
func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string) {
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) == 1 {
			d.decode(n.Content[0], v, path)
		}
		return
	case yaml.AliasNode:
		d.decode(n.Alias, v, path)
		return
	}
	if path != "" {
		d.lines[path] = n.Line
	}
	if isNull(n) {
		return // keep the zero value
	}
	t := v.Type()
	switch {
	case t.Kind() == reflect.Pointer:
		p := reflect.New(t.Elem())
		before := d.nfail
		d.decode(n, p.Elem(), path)
		if d.nfail == before {
			v.Set(p) // only a value that decoded counts as set
		}
	case t == durationType:
		s, ok := d.scalar(n, path, "a duration")
		if !ok {
			return
		}
		dur, err := time.ParseDuration(s)
		if err != nil {
			d.fail(path, n.Line, "%q is not a duration (use Go syntax such as 90s, 3m or 1h30m)", n.Value)
			return
		}
		v.SetInt(int64(dur))
	case reflect.PointerTo(t).Implements(textUnmarshalerType):
		// The scalar's text as written (Percent, Dollars): a number is
		// never read as a float.
		s, ok := d.scalar(n, path, "a scalar")
		if !ok {
			return
		}
		if err := v.Addr().Interface().(encoding.TextUnmarshaler).UnmarshalText([]byte(s)); err != nil {
			d.fail(path, n.Line, "%s %v", d.show(path, s), err)
		}
	case t.Kind() == reflect.String:
		s, ok := d.scalar(n, path, "a string")
		if ok {
			v.SetString(s)
		}
	case t.Kind() == reflect.Bool:
		s, ok := d.scalar(n, path, "a boolean")
		if !ok {
			return
		}
		b, err := strconv.ParseBool(s)
		if err != nil {
			d.fail(path, n.Line, "%q is not a boolean (true or false)", n.Value)
			return
		}
		v.SetBool(b)
	case t.Kind() == reflect.Int || t.Kind() == reflect.Int64:
		s, ok := d.scalar(n, path, "an integer")
		if !ok {
			return
		}
		i, err := strconv.ParseInt(strings.ReplaceAll(s, "_", ""), 0, t.Bits())
		if err != nil {
			d.fail(path, n.Line, "%q is not an integer", n.Value)
			return
		}
		v.SetInt(i)
	case t.Kind() == reflect.Float64:
		s, ok := d.scalar(n, path, "a number")
		if !ok {
			return
		}
		f, err := strconv.ParseFloat(strings.ReplaceAll(s, "_", ""), 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			d.fail(path, n.Line, "%q is not a number", n.Value)
			return
		}
		v.SetFloat(f)
	case t.Kind() == reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			d.fail(path, n.Line, "expected a list, got %s", kindName(n))
			return
		}
		s := reflect.MakeSlice(t, len(n.Content), len(n.Content))
		for i, item := range n.Content {
			d.decode(item, s.Index(i), path+"["+strconv.Itoa(i)+"]")
		}
		v.Set(s)
	case t.Kind() == reflect.Map:
		if n.Kind != yaml.MappingNode {
			d.fail(path, n.Line, "expected a mapping, got %s", kindName(n))
			return
		}
		m := reflect.MakeMapWithSize(t, len(n.Content)/2)
		for _, merged := range mergedNodes(n) {
			tmp := reflect.New(t).Elem()
			d.decode(merged, tmp, path)
			for it := tmp.MapRange(); it.Next(); {
				m.SetMapIndex(it.Key(), it.Value())
			}
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, val := n.Content[i], n.Content[i+1]
			switch {
			case isMergeKey(k):
			case k.Kind != yaml.ScalarNode:
				d.fail(path, k.Line, "map keys must be strings")
			default:
				elem := reflect.New(t.Elem()).Elem()
				d.decode(val, elem, join(path, k.Value))
				m.SetMapIndex(reflect.ValueOf(k.Value).Convert(t.Key()), elem)
			}
		}
		v.Set(m)
	case t.Kind() == reflect.Struct:
		if n.Kind != yaml.MappingNode {
			d.fail(path, n.Line, "expected a mapping, got %s", kindName(n))
			return
		}
		for _, merged := range mergedNodes(n) {
			d.decode(merged, v, path)
		}
		fields := yamlFields(t)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, val := n.Content[i], n.Content[i+1]
			if isMergeKey(k) {
				continue
			}
			idx, ok := fields[k.Value]
			if !ok {
				msg := "unknown field"
				if s := suggest(k.Value, fields); s != "" {
					msg += fmt.Sprintf("; did you mean %q?", s)
				}
				d.fail(join(path, k.Value), k.Line, "%s", msg)
				continue
			}
			d.decode(val, v.Field(idx), join(path, k.Value))
		}
	case t.Kind() == reflect.Interface:
		v.Set(reflect.ValueOf(d.anyValue(n, path)))
	default:
		d.fail(path, n.Line, "unsupported field type %s", t) // a bug in Config
	}
}

func isMergeKey(k *yaml.Node) bool {
	return k.Kind == yaml.ScalarNode && k.Tag == "!!merge"
}

// mergedNodes returns the mappings merged into n with YAML merge keys
// ("<<: *defaults" or "<<: [*a, *b]"), to be decoded before n's own keys,
// which override them as a whole (a merge is shallow). Of several merged
// mappings the first wins, so they are returned last to first.
func mergedNodes(n *yaml.Node) []*yaml.Node {
	var out []*yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		if k, val := n.Content[i], n.Content[i+1]; isMergeKey(k) {
			if val.Kind == yaml.SequenceNode {
				for j := len(val.Content) - 1; j >= 0; j-- {
					out = append(out, val.Content[j])
				}
			} else {
				out = append(out, val)
			}
		}
	}
	return out
}

// scalar returns the text of a scalar node, with ${env:NAME} expanded.
func (d *decoder) scalar(n *yaml.Node, path, want string) (string, bool) {
	if n.Kind != yaml.ScalarNode {
		d.fail(path, n.Line, "expected %s, got %s", want, kindName(n))
		return "", false
	}
	d.raws[path] = n.Value
	return d.expand(n.Value, path, n.Line)
}

// anyValue decodes free-form data (metadata), expanding strings.
func (d *decoder) anyValue(n *yaml.Node, path string) any {
	switch n.Kind {
	case yaml.AliasNode:
		return d.anyValue(n.Alias, path)
	case yaml.MappingNode:
		m := make(map[string]any, len(n.Content)/2)
		for _, merged := range mergedNodes(n) {
			if mm, ok := d.anyValue(merged, path).(map[string]any); ok {
				for k, v := range mm {
					m[k] = v
				}
			}
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			if k := n.Content[i]; !isMergeKey(k) {
				m[k.Value] = d.anyValue(n.Content[i+1], join(path, k.Value))
			}
		}
		return m
	case yaml.SequenceNode:
		s := make([]any, len(n.Content))
		for i, item := range n.Content {
			s[i] = d.anyValue(item, path+"["+strconv.Itoa(i)+"]")
		}
		return s
	}
	var x any
	if err := n.Decode(&x); err != nil {
		d.fail(path, n.Line, "invalid value")
		return nil
	}
	if s, ok := x.(string); ok {
		x, _ = d.expand(s, path, n.Line)
	}
	return x
}

// expand replaces every ${env:NAME} in s with the variable's value. It never
// prints the value, only the reference.
func (d *decoder) expand(s, path string, line int) (string, bool) {
	const open = "${env:"
	if !strings.Contains(s, open) {
		return s, true
	}
	var b strings.Builder
	ok := true
	for {
		i := strings.Index(s, open)
		if i < 0 {
			b.WriteString(s)
			break
		}
		b.WriteString(s[:i])
		rest := s[i+len(open):]
		j := strings.IndexByte(rest, '}')
		if j < 0 {
			d.fail(path, line, "unterminated ${env:...} reference")
			return "", false
		}
		name := rest[:j]
		switch {
		case !validEnvName(name):
			d.fail(path, line, "${env:%s} is not a valid variable reference", name)
			ok = false
		case d.getenv(name) == "":
			d.nfail++
			d.unset = append(d.unset, &fieldError{path: path, line: line, msg: fmt.Sprintf("${env:%s} is not set", name)})
			ok = false
		default:
			v := d.getenv(name)
			d.env[name] = v
			b.WriteString(v)
		}
		s = rest[j+1:]
	}
	return b.String(), ok
}

func validEnvName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '_' || 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || i > 0 && '0' <= c && c <= '9' {
			continue
		}
		return false
	}
	return true
}

// yamlFields maps the yaml names of t's fields to their indexes.
func yamlFields(t reflect.Type) map[string]int {
	m := map[string]int{}
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if f.IsExported() && name != "" && name != "-" {
			m[name] = i
		}
	}
	return m
}

// suggest returns the known field closest to name, if one is close: at
// most two edits away, or a prefix of it or the other way round.
func suggest(name string, fields map[string]int) string {
	name = strings.ToLower(name)
	best, bestDist := "", -1
	for f := range fields {
		d := editDistance(name, f)
		if d > 2 && !strings.HasPrefix(name, f) && !strings.HasPrefix(f, name) {
			continue
		}
		if bestDist < 0 || d < bestDist || d == bestDist && f < best {
			best, bestDist = f, d
		}
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

var (
	logLevels  = []string{"debug", "info", "warn", "error"}
	logFormats = []string{"text", "json"}
	modalities = []string{"text", "image", "audio", "video", "file", "embedding"}
)

// validPort reports whether s is a port number (0 picks a free port).
func validPort(s string) bool {
	n, err := strconv.Atoi(s)
	return err == nil && n >= 0 && n <= 65535
}

func oneOf(v string, allowed []string) bool {
	for _, a := range allowed {
		if strings.EqualFold(v, a) {
			return true
		}
	}
	return false
}
