package telemetry

import (
	"bytes"
	"encoding/json"
	"math"
	"sort"
	"strconv"
)

// Metrics maps metric names to values. Its JSON decoder is strict where
// encoding/json is lenient: null, strings, booleans, nested values and
// duplicate names are errors instead of zeros or "last one wins".
type Metrics map[string]float64

// ValidMetricName reports whether name matches ^[a-z0-9_]+(\.[a-z0-9_]+)*$
// and is at most MaxMetricName bytes.
func ValidMetricName(name string) bool {
	if name == "" || len(name) > MaxMetricName {
		return false
	}
	prevDot := true // a name may not start with a dot
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '_':
			prevDot = false
		case c == '.':
			if prevDot {
				return false
			}
			prevDot = true
		default:
			return false
		}
	}
	return !prevDot
}

// MarshalJSON writes the metrics with sorted names so that the same reading
// always encodes to the same bytes.
func (m Metrics) MarshalJSON() ([]byte, error) {
	names := make([]string, 0, len(m))
	for name := range m {
		names = append(names, name)
	}
	sort.Strings(names)
	b := make([]byte, 0, 2+len(m)*24)
	b = append(b, '{')
	for i, name := range names {
		v := m[name]
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, errorf(ReasonBadValue, "metric %q: value %v is not finite", name, v)
		}
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendQuote(b, name)
		b = append(b, ':')
		b = AppendFloat(b, v)
	}
	return append(b, '}'), nil
}

// AppendFloat appends v the way encoding/json writes a float64, so encoded
// readings round-trip exactly and stay short.
func AppendFloat(b []byte, v float64) []byte {
	abs := math.Abs(v)
	format := byte('f')
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, v, format, -1, 64)
	if format == 'e' {
		// clean up e-09 to e-9, as encoding/json does
		n := len(b)
		if n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}

// UnmarshalJSON parses a flat object of finite numbers. It is called by
// encoding/json with syntactically valid JSON.
func (m *Metrics) UnmarshalJSON(data []byte) error {
	out, err := parseMetrics(data)
	if err != nil {
		return err
	}
	*m = out
	return nil
}

// parseMetrics parses a flat JSON object of numbers. It checks syntax too,
// since it also runs on raw payloads in the simple form.
func parseMetrics(data []byte) (Metrics, error) {
	p := scanner{data: data}
	p.space()
	if !p.consume('{') {
		if bytes.Equal(bytes.TrimSpace(data), []byte("null")) {
			return nil, errorf(ReasonNoMetrics, "metrics is null")
		}
		return nil, errorf(ReasonBadJSON, "metrics: want a JSON object")
	}
	m := make(Metrics, 16)
	p.space()
	if p.consume('}') {
		return m, p.end()
	}
	for {
		p.space()
		name, err := p.name()
		if err != nil {
			return nil, err
		}
		p.space()
		if !p.consume(':') {
			return nil, errorf(ReasonBadJSON, "metrics: want ':' after %q", name)
		}
		p.space()
		v, err := p.number(name)
		if err != nil {
			return nil, err
		}
		if _, dup := m[name]; dup {
			return nil, errorf(ReasonDuplicateMetric, "metric %q appears twice", name)
		}
		if len(m) == MaxMetrics {
			return nil, errorf(ReasonTooManyMetrics, "more than %d metrics in one reading", MaxMetrics)
		}
		m[name] = v
		p.space()
		if p.consume(',') {
			continue
		}
		if p.consume('}') {
			return m, p.end()
		}
		return nil, errorf(ReasonBadJSON, "metrics: want ',' or '}' after %q", name)
	}
}

type scanner struct {
	data []byte
	i    int
}

func (p *scanner) space() {
	for p.i < len(p.data) {
		switch p.data[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

func (p *scanner) consume(c byte) bool {
	if p.i < len(p.data) && p.data[p.i] == c {
		p.i++
		return true
	}
	return false
}

func (p *scanner) end() error {
	p.space()
	if p.i != len(p.data) {
		return errorf(ReasonBadJSON, "metrics: trailing data after object")
	}
	return nil
}

// name reads a quoted metric name. Valid names need no escapes, so a
// backslash or any byte outside the name alphabet is an invalid name.
func (p *scanner) name() (string, error) {
	if !p.consume('"') {
		return "", errorf(ReasonBadJSON, "metrics: want a quoted name at byte %d", p.i)
	}
	start := p.i
	for p.i < len(p.data) && p.data[p.i] != '"' {
		if p.data[p.i] == '\\' {
			p.i++ // skip the escaped byte so an escaped quote does not end the name
		}
		p.i++
	}
	if p.i >= len(p.data) {
		return "", errorf(ReasonBadJSON, "metrics: unterminated name")
	}
	raw := p.data[start:p.i]
	p.i++
	if !ValidMetricName(string(raw)) {
		return "", errorf(ReasonBadMetricName, "metric name %q must match [a-z0-9_]+(.[a-z0-9_]+)* and be at most %d bytes", truncate(string(raw), 140), MaxMetricName)
	}
	return string(raw), nil
}

func (p *scanner) number(name string) (float64, error) {
	start := p.i
	for p.i < len(p.data) {
		c := p.data[p.i]
		if (c >= '0' && c <= '9') || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E' {
			p.i++
			continue
		}
		break
	}
	tok := p.data[start:p.i]
	if len(tok) == 0 || !validJSONNumber(tok) {
		return 0, errorf(ReasonBadValue, "metric %q: value is not a number", name)
	}
	v, err := strconv.ParseFloat(string(tok), 64)
	if err != nil || math.IsInf(v, 0) || math.IsNaN(v) {
		return 0, errorf(ReasonBadValue, "metric %q: value %s is not a finite float64", name, tok)
	}
	return v, nil
}

// validJSONNumber checks the JSON number grammar, which is stricter than
// strconv.ParseFloat (no "+1", "1.", ".5", "01", "0x1", "Inf").
func validJSONNumber(s []byte) bool {
	i := 0
	if i < len(s) && s[i] == '-' {
		i++
	}
	if i >= len(s) {
		return false
	}
	if s[i] == '0' {
		i++
	} else if s[i] >= '1' && s[i] <= '9' {
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
	} else {
		return false
	}
	if i < len(s) && s[i] == '.' {
		i++
		d := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		if i == d {
			return false
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		d := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		if i == d {
			return false
		}
	}
	return i == len(s)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

var _ json.Marshaler = Metrics(nil)
