package telemetry_test

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"

	"github.com/fleetwatch/fleetwatch/agent/telemetry"
)

func TestValidMetricName(t *testing.T) {
	tests := []struct {
		name string
		ok   bool
	}{
		{"cpu", true},
		{"cpu.percent", true},
		{"cpu.core.0.percent", true},
		{"_", true},
		{"a._.b", true},
		{"0", true},
		{strings.Repeat("a", 128), true},
		{strings.Repeat("a.", 63) + "bc", true},
		{strings.Repeat("a", 129), false},
		{"", false},
		{".", false},
		{".cpu", false},
		{"cpu.", false},
		{"cpu..percent", false},
		{"CPU", false},
		{"cpu-percent", false},
		{"cpu percent", false},
		{"cpu/percent", false},
		{`cpu"`, false},
		{`cpu\u002e`, false},
		{"temp_°c", false},
		{"a\x00", false},
	}
	for _, tt := range tests {
		if got := telemetry.ValidMetricName(tt.name); got != tt.ok {
			t.Errorf("ValidMetricName(%q)=%v, want %v", tt.name, got, tt.ok)
		}
	}
}

// trickyFloats are values whose shortest JSON form is easy to get wrong.
var trickyFloats = []float64{
	0, math.Copysign(0, -1), 1, -1, 0.1, 0.2, 0.3, 1.0 / 3, 2.0 / 3, 12.5, 41.2, 100,
	1e-6, 1e-7, 9.99999e-7, -1e-7, 1.5e-9, 1e-10, 123456789e-15,
	1e20, 1e21, 9.999999999999999e20, -1e21, 1.5e300, 1e-300,
	5e-324, -5e-324, math.SmallestNonzeroFloat64, 2.2250738585072014e-308,
	math.MaxFloat64, -math.MaxFloat64, math.MaxInt64, math.MinInt64, 1 << 53, 1<<53 + 2,
	float64(math.MaxUint32), 8 << 30, 1764368400123,
}

func TestAppendFloat(t *testing.T) {
	check := func(t *testing.T, v float64) {
		t.Helper()
		want, err := json.Marshal(v)
		if err != nil {
			t.Fatalf("json.Marshal(%v): %v", v, err)
		}
		got := telemetry.AppendFloat(nil, v)
		if string(got) != string(want) {
			t.Fatalf("AppendFloat(%b)=%s, want %s as encoding/json writes it", v, got, want)
		}
		back, err := strconv.ParseFloat(string(got), 64)
		if err != nil || math.Float64bits(back) != math.Float64bits(v) {
			t.Fatalf("ParseFloat(%s)=%v, %v; want %v", got, back, err, v)
		}
	}
	t.Run("Tricky", func(t *testing.T) {
		for _, v := range trickyFloats {
			check(t, v)
		}
	})
	t.Run("Random", func(t *testing.T) {
		r := rand.New(rand.NewPCG(1, 2))
		for range 20000 {
			v := math.Float64frombits(r.Uint64()) // every exponent
			if math.IsNaN(v) || math.IsInf(v, 0) {
				continue
			}
			check(t, v)
			check(t, r.NormFloat64()*math.Pow(10, float64(r.IntN(50)-25))) // near the 'e' switch
		}
	})
	t.Run("Appends", func(t *testing.T) {
		if got, want := string(telemetry.AppendFloat([]byte(`"a":`), 1e-7)), `"a":1e-7`; got != want {
			t.Errorf("AppendFloat=%s, want %s", got, want)
		}
	})
}

func TestMetrics_MarshalJSON(t *testing.T) {
	t.Run("Sorted", func(t *testing.T) {
		m := telemetry.Metrics{"mem.used_percent": 41.2, "cpu.percent": 12.5, "cpu": 1, "a_b": 1e-7, "z": -0.5}
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := string(b), `{"a_b":1e-7,"cpu":1,"cpu.percent":12.5,"mem.used_percent":41.2,"z":-0.5}`; got != want {
			t.Errorf("Marshal=%s, want %s", got, want)
		}
	})
	t.Run("Empty", func(t *testing.T) {
		for _, m := range []telemetry.Metrics{nil, {}} {
			b, err := m.MarshalJSON()
			if err != nil || string(b) != "{}" {
				t.Errorf("MarshalJSON(%#v)=%s, %v; want {}, nil", m, b, err)
			}
		}
	})
	t.Run("DeterministicAndLikeEncodingJSON", func(t *testing.T) {
		r := rand.New(rand.NewPCG(3, 4))
		for range 50 {
			m := telemetry.Metrics{}
			for range r.IntN(telemetry.MaxMetrics) {
				m["m"+strconv.Itoa(r.IntN(1000))+"."+strconv.Itoa(r.IntN(10))] = r.NormFloat64() * math.Pow(10, float64(r.IntN(60)-30))
			}
			first, err := m.MarshalJSON()
			if err != nil {
				t.Fatal(err)
			}
			// encoding/json sorts map keys too: the bytes must match.
			want, err := json.Marshal(map[string]float64(m))
			if err != nil {
				t.Fatal(err)
			}
			if string(first) != string(want) {
				t.Fatalf("MarshalJSON=\n%s\nwant\n%s", first, want)
			}
			for range 5 {
				again, _ := m.MarshalJSON()
				if string(again) != string(first) {
					t.Fatalf("MarshalJSON is not deterministic:\n%s\n%s", again, first)
				}
			}
		}
	})
	t.Run("RoundTrip", func(t *testing.T) {
		m := telemetry.Metrics{}
		for i, v := range trickyFloats {
			m["v"+strconv.Itoa(i)] = v
		}
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		var got telemetry.Metrics
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatalf("Unmarshal(%s): %v", b, err)
		}
		if len(got) != len(m) {
			t.Fatalf("len=%d, want %d", len(got), len(m))
		}
		for name, v := range m {
			if math.Float64bits(got[name]) != math.Float64bits(v) {
				t.Errorf("%s=%v, want %v", name, got[name], v)
			}
		}
	})
	for _, tt := range []struct {
		name string
		v    float64
	}{{"NaN", math.NaN()}, {"+Inf", math.Inf(1)}, {"-Inf", math.Inf(-1)}} {
		t.Run("ErrBadValue/"+tt.name, func(t *testing.T) {
			m := telemetry.Metrics{"a": 1, "b": tt.v}
			b, err := m.MarshalJSON()
			if got, want := reasonOf(t, err), telemetry.ReasonBadValue; got != want {
				t.Fatalf("MarshalJSON(%v)=%s, %v; want reason %q", m, b, err, want)
			}
			if _, err := json.Marshal(m); err == nil {
				t.Errorf("json.Marshal(%v): no error, want one", m)
			}
		})
	}
}

func TestMetrics_UnmarshalJSON(t *testing.T) {
	tests := []struct {
		in     string
		want   telemetry.Metrics
		reason string
	}{
		{`{}`, telemetry.Metrics{}, ""},
		{` { "a" : 1 , "b.c":-2.5e-3 } `, telemetry.Metrics{"a": 1, "b.c": -0.0025}, ""},
		{`{"a":0,"b":-0,"c":0.0,"d":0e5,"e":1E+2,"f":1e-2}`, telemetry.Metrics{"a": 0, "b": 0, "c": 0, "d": 0, "e": 100, "f": 0.01}, ""},
		{`{"a":123456789012345678901234567890}`, telemetry.Metrics{"a": 1.2345678901234568e29}, ""},
		{`{"a":4.9e-324}`, telemetry.Metrics{"a": 5e-324}, ""},
		{`{"a":1e-400}`, telemetry.Metrics{"a": 0}, ""}, // underflows to 0, which is finite
		{`null`, nil, telemetry.ReasonNoMetrics},
		{`[]`, nil, telemetry.ReasonBadJSON},
		{`{"a":1,}`, nil, telemetry.ReasonBadJSON},
		{`{"a" 1}`, nil, telemetry.ReasonBadJSON},
		{`{a:1}`, nil, telemetry.ReasonBadJSON},
		{`{"a":1} x`, nil, telemetry.ReasonBadJSON},
		{`{"a`, nil, telemetry.ReasonBadJSON},
		{`{"a\`, nil, telemetry.ReasonBadJSON},
		{`{"a":1`, nil, telemetry.ReasonBadJSON},
		{`{"A":1}`, nil, telemetry.ReasonBadMetricName},
		{`{"a\"":1}`, nil, telemetry.ReasonBadMetricName},
		{`{"a":+1}`, nil, telemetry.ReasonBadValue},
		{`{"a":01}`, nil, telemetry.ReasonBadValue},
		{`{"a":1.}`, nil, telemetry.ReasonBadValue},
		{`{"a":.5}`, nil, telemetry.ReasonBadValue},
		{`{"a":1e}`, nil, telemetry.ReasonBadValue},
		{`{"a":1e+}`, nil, telemetry.ReasonBadValue},
		{`{"a":-}`, nil, telemetry.ReasonBadValue},
		{`{"a":--1}`, nil, telemetry.ReasonBadValue},
		{`{"a":1-1}`, nil, telemetry.ReasonBadValue},
		{`{"a":0x10}`, nil, telemetry.ReasonBadJSON},
		{`{"a":Inf}`, nil, telemetry.ReasonBadValue},
		{`{"a":1e309}`, nil, telemetry.ReasonBadValue},
		{`{"a":"1"}`, nil, telemetry.ReasonBadValue},
		{`{"a":1,"a":1}`, nil, telemetry.ReasonDuplicateMetric},
	}
	for _, tt := range tests {
		var got telemetry.Metrics
		err := got.UnmarshalJSON([]byte(tt.in))
		if gotReason := reasonOf(t, err); gotReason != tt.reason {
			t.Errorf("UnmarshalJSON(%s): Reason=%q, want %q (err: %v)", tt.in, gotReason, tt.reason, err)
			continue
		}
		if tt.reason != "" {
			if got != nil {
				t.Errorf("UnmarshalJSON(%s) with an error set %v, want it untouched", tt.in, got)
			}
			continue
		}
		if len(got) != len(tt.want) {
			t.Errorf("UnmarshalJSON(%s)=%v, want %v", tt.in, got, tt.want)
			continue
		}
		for name, w := range tt.want {
			if v, ok := got[name]; !ok || v != w {
				t.Errorf("UnmarshalJSON(%s): %s=%v, want %v", tt.in, name, v, w)
			}
		}
	}
}

func TestValidateMetrics(t *testing.T) {
	tests := []struct {
		name   string
		m      telemetry.Metrics
		reason string
	}{
		{"OK", telemetry.Metrics{"a": 1, "b.c": -math.MaxFloat64}, ""},
		{"OK/512", metricsN(telemetry.MaxMetrics), ""},
		{"nil", nil, telemetry.ReasonNoMetrics},
		{"empty", telemetry.Metrics{}, telemetry.ReasonNoMetrics},
		{"513", metricsN(telemetry.MaxMetrics + 1), telemetry.ReasonTooManyMetrics},
		{"bad name", telemetry.Metrics{"a": 1, "B": 2}, telemetry.ReasonBadMetricName},
		{"NaN", telemetry.Metrics{"a": math.NaN()}, telemetry.ReasonBadValue},
		{"+Inf", telemetry.Metrics{"a": math.Inf(1)}, telemetry.ReasonBadValue},
		{"-Inf", telemetry.Metrics{"a": math.Inf(-1)}, telemetry.ReasonBadValue},
	}
	for _, tt := range tests {
		name := tt.name
		if tt.reason != "" {
			name = errName(tt.reason) + "/" + tt.name
		}
		t.Run(name, func(t *testing.T) {
			err := telemetry.ValidateMetrics(tt.m)
			if got, want := reasonOf(t, err), tt.reason; got != want {
				t.Errorf("ValidateMetrics: Reason=%q, want %q (err: %v)", got, want, err)
			}
		})
	}
}
