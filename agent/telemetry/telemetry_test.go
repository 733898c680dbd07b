package telemetry_test

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fleetwatch/fleetwatch/agent/telemetry"
)

// env returns an envelope payload of testDevice and testBoot with readings,
// each a JSON object such as rd returns.
func env(readings ...string) string {
	return `{"v":1,"device":"` + testDevice + `","boot":"` + testBoot + `","readings":[` + strings.Join(readings, ",") + `]}`
}

// envWith is env with extra top-level members (`"k":v,...`) before readings.
func envWith(extra string, readings ...string) string {
	return `{"v":1,"device":"` + testDevice + `","boot":"` + testBoot + `",` + extra + `,"readings":[` + strings.Join(readings, ",") + `]}`
}

// rd returns a reading at testTS with metrics, a JSON object.
func rd(seq int, metrics string) string {
	return fmt.Sprintf(`{"seq":%d,"ts":%d,"metrics":%s}`, seq, testTS, metrics)
}

const okMetrics = `{"cpu.percent":12.5}`

// readingsJSON returns n readings with seq 1..n.
func readingsJSON(n int) []string {
	rs := make([]string, n)
	for i := range rs {
		rs[i] = rd(i+1, okMetrics)
	}
	return rs
}

// metricsJSON returns a metrics object of n names m0..m<n-1> with value i.
func metricsJSON(n int) string {
	var b strings.Builder
	b.WriteByte('{')
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `"m%d":%d`, i, i)
	}
	b.WriteByte('}')
	return b.String()
}

func metricsN(n int) telemetry.Metrics {
	m := make(telemetry.Metrics, n)
	for i := range n {
		m["m"+strconv.Itoa(i)] = float64(i)
	}
	return m
}

func tagsJSON(n int) string {
	var b strings.Builder
	b.WriteString(`"tags":{`)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `"t%d":"v"`, i)
	}
	b.WriteByte('}')
	return b.String()
}

// errName turns a reason such as "bad_seq" into a subtest name "ErrBadSeq".
func errName(reason string) string {
	var b strings.Builder
	b.WriteString("Err")
	for part := range strings.SplitSeq(reason, "_") {
		if part != "" {
			b.WriteString(strings.ToUpper(part[:1]) + part[1:])
		}
	}
	return b.String()
}

// reasonOf returns the Reason of err, which must be a *telemetry.Error.
func reasonOf(t *testing.T, err error) string {
	t.Helper()
	if err == nil {
		return ""
	}
	var te *telemetry.Error
	if !errors.As(err, &te) {
		t.Fatalf("error %v (%T) is not a *telemetry.Error", err, err)
	}
	if te.Error() == "" {
		t.Errorf("error with reason %q has an empty message", te.Reason)
	}
	return te.Reason
}

func TestDecodeTelemetry_Errors(t *testing.T) {
	long := func(n int) string { return strings.Repeat("a", n) }
	tests := []struct {
		reason  string
		name    string
		device  string // topic device; testDevice when empty
		payload string
	}{
		{telemetry.ReasonBadJSON, "not json", "", `readings`},
		{telemetry.ReasonBadJSON, "truncated", "", env(rd(1, okMetrics))[:60]},
		{telemetry.ReasonBadJSON, "trailing data", "", env(rd(1, okMetrics)) + "x"},
		{telemetry.ReasonBadJSON, "NaN literal", "", env(rd(1, `{"a":NaN}`))},
		{telemetry.ReasonBadJSON, "Infinity literal", "", env(rd(1, `{"a":Infinity}`))},
		{telemetry.ReasonBadJSON, "readings not an array", "", `{"v":1,"device":"pi-kitchen","boot":"b","readings":{}}`},
		{telemetry.ReasonBadJSON, "negative seq", "", env(`{"seq":-1,"ts":1,"metrics":{"a":1}}`)},
		{telemetry.ReasonBadJSON, "fractional ts", "", env(`{"seq":1,"ts":1.5,"metrics":{"a":1}}`)},
		{telemetry.ReasonBadJSON, "metrics an array", "", env(rd(1, `[1]`))},
		{telemetry.ReasonBadJSON, "simple form not an object", "", `[1,2]`},
		{telemetry.ReasonBadJSON, "simple form trailing data", "", `{"a":1}{}`},
		{telemetry.ReasonBadJSON, "simple form unterminated", "", `{"a":1`},
		{telemetry.ReasonBadJSON, "simple form empty", "", ``},
		{telemetry.ReasonBadJSON, "simple form NaN", "", `{"temperature":NaN}`},
		{telemetry.ReasonBadJSON, "simple form leading plus", "", `{"temperature":+1}`},
		{telemetry.ReasonBadJSON, "simple form leading zero", "", `{"temperature":01}`},
		{telemetry.ReasonBadJSON, "simple form hex", "", `{"temperature":0x1}`},

		{telemetry.ReasonBadVersion, "missing v", "", `{"device":"pi-kitchen","boot":"b","readings":[` + rd(1, okMetrics) + `]}`},
		{telemetry.ReasonBadVersion, "v=2", "", strings.Replace(env(rd(1, okMetrics)), `"v":1`, `"v":2`, 1)},
		{telemetry.ReasonBadVersion, "v=0", "", strings.Replace(env(rd(1, okMetrics)), `"v":1`, `"v":0`, 1)},

		{telemetry.ReasonBadDevice, "missing", "", `{"v":1,"boot":"b","readings":[` + rd(1, okMetrics) + `]}`},
		{telemetry.ReasonBadDevice, "empty", "", `{"v":1,"device":"","boot":"b","readings":[` + rd(1, okMetrics) + `]}`},
		{telemetry.ReasonBadDevice, "bad chars", "pi kitchen!", `{"v":1,"device":"pi kitchen!","boot":"b","readings":[` + rd(1, okMetrics) + `]}`},
		{telemetry.ReasonBadDevice, "too long", long(65), `{"v":1,"device":"` + long(65) + `","boot":"b","readings":[` + rd(1, okMetrics) + `]}`},
		{telemetry.ReasonBadDevice, "starts with dash", "-pi", `{"v":1,"device":"-pi","boot":"b","readings":[` + rd(1, okMetrics) + `]}`},
		{telemetry.ReasonBadDevice, "slash", "pi/x", `{"v":1,"device":"pi/x","boot":"b","readings":[` + rd(1, okMetrics) + `]}`},
		{telemetry.ReasonBadDevice, "simple form on a bad topic device", "pi kitchen", `{"a":1}`},

		{telemetry.ReasonDeviceMismatch, "other device", "pi-garage", env(rd(1, okMetrics))},
		{telemetry.ReasonDeviceMismatch, "case differs", "Pi-Kitchen", env(rd(1, okMetrics))},

		{telemetry.ReasonBadBoot, "missing", "", `{"v":1,"device":"pi-kitchen","readings":[` + rd(1, okMetrics) + `]}`},
		{telemetry.ReasonBadBoot, "empty", "", `{"v":1,"device":"pi-kitchen","boot":"","readings":[` + rd(1, okMetrics) + `]}`},
		{telemetry.ReasonBadBoot, "too long", "", `{"v":1,"device":"pi-kitchen","boot":"` + long(65) + `","readings":[` + rd(1, okMetrics) + `]}`},
		{telemetry.ReasonBadBoot, "slash", "", `{"v":1,"device":"pi-kitchen","boot":"a/b","readings":[` + rd(1, okMetrics) + `]}`},
		{telemetry.ReasonBadBoot, "space", "", `{"v":1,"device":"pi-kitchen","boot":"a b","readings":[` + rd(1, okMetrics) + `]}`},

		{telemetry.ReasonNoReadings, "empty", "", env()},
		{telemetry.ReasonNoReadings, "null", "", `{"v":1,"device":"pi-kitchen","boot":"b","readings":null}`},

		{telemetry.ReasonTooManyReadings, "1001", "", env(readingsJSON(telemetry.MaxReadings + 1)...)},

		{telemetry.ReasonBadSeq, "missing", "", env(`{"ts":1,"metrics":{"a":1}}`)},
		{telemetry.ReasonBadSeq, "null", "", env(`{"seq":null,"ts":1,"metrics":{"a":1}}`)},
		{telemetry.ReasonBadSeq, "zero", "", env(rd(0, okMetrics))},
		{telemetry.ReasonBadSeq, "duplicate", "", env(rd(7, okMetrics), rd(8, okMetrics), rd(7, okMetrics))},
		{telemetry.ReasonBadSeq, "below first", "", envWith(`"first":5`, rd(5, okMetrics), rd(4, okMetrics))},

		{telemetry.ReasonBadTimestamp, "missing", "", env(`{"seq":1,"metrics":{"a":1}}`)},
		{telemetry.ReasonBadTimestamp, "zero", "", env(`{"seq":1,"ts":0,"metrics":{"a":1}}`)},
		{telemetry.ReasonBadTimestamp, "negative", "", env(`{"seq":1,"ts":-1764368400123,"metrics":{"a":1}}`)},
		{telemetry.ReasonBadTimestamp, "after year 9999", "", env(fmt.Sprintf(`{"seq":1,"ts":%d,"metrics":{"a":1}}`, int64(telemetry.MaxTimestamp)+1))},

		{telemetry.ReasonNoMetrics, "empty", "", env(rd(1, `{}`))},
		{telemetry.ReasonNoMetrics, "null", "", env(rd(1, `null`))},
		{telemetry.ReasonNoMetrics, "missing", "", env(`{"seq":1,"ts":1}`)},
		{telemetry.ReasonNoMetrics, "simple form empty object", "", `{}`},
		{telemetry.ReasonNoMetrics, "simple form null", "", `null`},

		{telemetry.ReasonTooManyMetrics, "513", "", env(rd(1, metricsJSON(telemetry.MaxMetrics+1)))},
		{telemetry.ReasonTooManyMetrics, "simple form 513", "", metricsJSON(telemetry.MaxMetrics + 1)},

		{telemetry.ReasonBadMetricName, "uppercase", "", env(rd(1, `{"CPU.percent":1}`))},
		{telemetry.ReasonBadMetricName, "leading dot", "", env(rd(1, `{".cpu":1}`))},
		{telemetry.ReasonBadMetricName, "double dot", "", env(rd(1, `{"cpu..percent":1}`))},
		{telemetry.ReasonBadMetricName, "trailing dot", "", env(rd(1, `{"cpu.":1}`))},
		{telemetry.ReasonBadMetricName, "only a dot", "", env(rd(1, `{".":1}`))},
		{telemetry.ReasonBadMetricName, "empty", "", env(rd(1, `{"":1}`))},
		{telemetry.ReasonBadMetricName, "dash", "", env(rd(1, `{"cpu-percent":1}`))},
		{telemetry.ReasonBadMetricName, "space", "", env(rd(1, `{"cpu percent":1}`))},
		{telemetry.ReasonBadMetricName, "129 bytes", "", env(rd(1, `{"`+long(129)+`":1}`))},
		{telemetry.ReasonBadMetricName, "escaped dot", "", env(rd(1, `{"cpu\u002epercent":1}`))},
		{telemetry.ReasonBadMetricName, "escaped letter", "", env(rd(1, `{"\u0061":1}`))},
		{telemetry.ReasonBadMetricName, "escaped quote", "", env(rd(1, `{"a\"b":1}`))},
		{telemetry.ReasonBadMetricName, "escaped newline", "", env(rd(1, `{"a\nb":1}`))},
		{telemetry.ReasonBadMetricName, "non-ascii", "", env(rd(1, `{"temp.cpu_°c":1}`))},
		{telemetry.ReasonBadMetricName, "simple form uppercase", "", `{"Temperature":21.5}`},

		{telemetry.ReasonBadValue, "null", "", env(rd(1, `{"a":null}`))},
		{telemetry.ReasonBadValue, "string", "", env(rd(1, `{"a":"1"}`))},
		{telemetry.ReasonBadValue, "true", "", env(rd(1, `{"a":true}`))},
		{telemetry.ReasonBadValue, "false", "", env(rd(1, `{"a":false}`))},
		{telemetry.ReasonBadValue, "nested object", "", env(rd(1, `{"a":{"b":1}}`))},
		{telemetry.ReasonBadValue, "array", "", env(rd(1, `{"a":[1]}`))},
		{telemetry.ReasonBadValue, "1e400", "", env(rd(1, `{"a":1e400}`))},
		{telemetry.ReasonBadValue, "-1e400", "", env(rd(1, `{"a":-1e400}`))},
		{telemetry.ReasonBadValue, "simple form string", "", `{"temperature":"21.5"}`},
		{telemetry.ReasonBadValue, "simple form 1e999", "", `{"temperature":1e999}`},

		{telemetry.ReasonDuplicateMetric, "envelope", "", env(rd(1, `{"a":1,"b":2,"a":1}`))},
		{telemetry.ReasonDuplicateMetric, "simple form", "", `{"a":1,"a":2}`},

		{telemetry.ReasonBadTags, "too many", "", envWith(tagsJSON(telemetry.MaxTags+1), rd(1, okMetrics))},
		{telemetry.ReasonBadTags, "uppercase key", "", envWith(`"tags":{"Site":"home"}`, rd(1, okMetrics))},
		{telemetry.ReasonBadTags, "dash in key", "", envWith(`"tags":{"my-site":"home"}`, rd(1, okMetrics))},
		{telemetry.ReasonBadTags, "empty key", "", envWith(`"tags":{"":"home"}`, rd(1, okMetrics))},
		{telemetry.ReasonBadTags, "65-byte key", "", envWith(`"tags":{"`+long(65)+`":"home"}`, rd(1, okMetrics))},
		{telemetry.ReasonBadTags, "control char value", "", envWith(`"tags":{"site":"ho\u0001me"}`, rd(1, okMetrics))},
		{telemetry.ReasonBadTags, "newline value", "", envWith(`"tags":{"site":"ho\nme"}`, rd(1, okMetrics))},
		{telemetry.ReasonBadTags, "DEL value", "", envWith(`"tags":{"site":"ho`+"\x7f"+`me"}`, rd(1, okMetrics))},
		{telemetry.ReasonBadTags, "invalid UTF-8 value", "", envWith(`"tags":{"site":"ho`+"\xff"+`me"}`, rd(1, okMetrics))},
		{telemetry.ReasonBadTags, "129-byte value", "", envWith(`"tags":{"site":"`+long(129)+`"}`, rd(1, okMetrics))},

		{telemetry.ReasonTooLarge, "envelope", "", env(rd(1, okMetrics)) + strings.Repeat(" ", telemetry.MaxPayload)},
		{telemetry.ReasonTooLarge, "simple form", "", `{"a":1}` + strings.Repeat(" ", telemetry.MaxPayload)},
	}

	covered := map[string]bool{}
	for _, tt := range tests {
		covered[tt.reason] = true
		t.Run(errName(tt.reason)+"/"+tt.name, func(t *testing.T) {
			device := tt.device
			if device == "" {
				device = testDevice
			}
			e, err := telemetry.DecodeTelemetry(device, []byte(tt.payload), testNow)
			if err == nil {
				t.Fatalf("DecodeTelemetry(%.80q) = %+v, want error %s", tt.payload, e, tt.reason)
			}
			if got, want := reasonOf(t, err), tt.reason; got != want {
				t.Errorf("Reason=%q, want %q (err: %v)", got, want, err)
			}
			if !reflect.DeepEqual(e, telemetry.Envelope{}) {
				t.Errorf("envelope with an error = %+v, want zero", e)
			}
		})
	}

	// Every reason that a telemetry payload can break must have a case.
	notTelemetry := map[string]bool{telemetry.ReasonBadTopic: true, telemetry.ReasonBadStatus: true, telemetry.ReasonBadAck: true}
	for _, r := range telemetry.Reasons {
		if !covered[r] && !notTelemetry[r] {
			t.Errorf("reason %q has no case", r)
		}
	}
}

func TestDecodeTelemetry_OK(t *testing.T) {
	long := func(c string, n int) string { return strings.Repeat(c, n) }
	one := func(seq uint64, m telemetry.Metrics) []telemetry.Reading {
		return []telemetry.Reading{{Seq: seq, TS: testTS, Metrics: m}}
	}
	base := telemetry.Envelope{V: 1, Device: testDevice, Boot: testBoot, Readings: one(1, telemetry.Metrics{"cpu.percent": 12.5})}
	with := func(f func(e *telemetry.Envelope)) telemetry.Envelope {
		e := base
		f(&e)
		return e
	}
	readings := func(n int) []telemetry.Reading {
		rs := make([]telemetry.Reading, n)
		for i := range rs {
			rs[i] = telemetry.Reading{Seq: uint64(i + 1), TS: testTS, Metrics: telemetry.Metrics{"cpu.percent": 12.5}}
		}
		return rs
	}
	tags := func(n int) map[string]string {
		m := map[string]string{}
		for i := range n {
			m["t"+strconv.Itoa(i)] = "v"
		}
		return m
	}
	device64 := "P" + long("i", 62) + "9"

	tests := []struct {
		name    string
		device  string
		payload string
		want    telemetry.Envelope
	}{
		{"OK/one reading", "", env(rd(1, okMetrics)), base},
		{"OK/1000 readings", "", env(readingsJSON(telemetry.MaxReadings)...), with(func(e *telemetry.Envelope) { e.Readings = readings(1000) })},
		{"OK/512 metrics", "", env(rd(1, metricsJSON(telemetry.MaxMetrics))), with(func(e *telemetry.Envelope) { e.Readings = one(1, metricsN(512)) })},
		{"OK/128-byte metric name", "", env(rd(1, `{"`+long("a.", 63)+`bc":1}`)), with(func(e *telemetry.Envelope) {
			e.Readings = one(1, telemetry.Metrics{long("a.", 63) + "bc": 1})
		})},
		{"OK/64-byte device id", device64, `{"v":1,"device":"` + device64 + `","boot":"` + testBoot + `","readings":[` + rd(1, okMetrics) + `]}`,
			with(func(e *telemetry.Envelope) { e.Device = device64 })},
		{"OK/64-byte boot id", "", `{"v":1,"device":"pi-kitchen","boot":"` + long("a:", 32) + `","readings":[` + rd(1, okMetrics) + `]}`,
			with(func(e *telemetry.Envelope) { e.Boot = long("a:", 32) })},
		{"OK/32 tags", "", envWith(tagsJSON(telemetry.MaxTags), rd(1, okMetrics)), with(func(e *telemetry.Envelope) { e.Tags = tags(32) })},
		{"OK/tag value printable unicode", "", envWith(`"tags":{"room":"Küche <1> & \u2028"}`, rd(1, okMetrics)),
			with(func(e *telemetry.Envelope) { e.Tags = map[string]string{"room": "Küche <1> & \u2028"} })},
		{"OK/empty tags", "", envWith(`"tags":{}`, rd(1, okMetrics)), with(func(e *telemetry.Envelope) { e.Tags = map[string]string{} })},
		{"OK/first equals lowest seq", "", envWith(`"first":5`, rd(6, okMetrics), rd(5, okMetrics)), with(func(e *telemetry.Envelope) {
			e.First = ptr(uint64(5))
			e.Readings = append(one(6, telemetry.Metrics{"cpu.percent": 12.5}), one(5, telemetry.Metrics{"cpu.percent": 12.5})...)
		})},
		{"OK/max seq", "", env(`{"seq":18446744073709551615,"ts":1764368400123,"metrics":{"cpu.percent":12.5}}`), with(func(e *telemetry.Envelope) {
			e.Readings = one(math.MaxUint64, telemetry.Metrics{"cpu.percent": 12.5})
		})},
		{"OK/ts bounds", "", env(`{"seq":1,"ts":1,"metrics":{"a":1}}`, fmt.Sprintf(`{"seq":2,"ts":%d,"metrics":{"a":2}}`, int64(telemetry.MaxTimestamp))),
			with(func(e *telemetry.Envelope) {
				e.Readings = []telemetry.Reading{{Seq: 1, TS: 1, Metrics: telemetry.Metrics{"a": 1}}, {Seq: 2, TS: telemetry.MaxTimestamp, Metrics: telemetry.Metrics{"a": 2}}}
			})},
		{"OK/number forms", "", env(rd(1, `{"a":-0,"b":1E2,"c":-1.5e-7,"d":1.7976931348623157e308,"e":5e-324,"f":0.1}`)), with(func(e *telemetry.Envelope) {
			e.Readings = one(1, telemetry.Metrics{"a": math.Copysign(0, -1), "b": 100, "c": -1.5e-7, "d": math.MaxFloat64, "e": 5e-324, "f": 0.1})
		})},
		{"OK/unknown keys ignored", "", `{"v":1,"x_future":{"a":[1,null]},"device":"pi-kitchen","boot":"` + testBoot +
			`","readings":[{"seq":1,"ts":1764368400123,"unit":"%","metrics":{"cpu.percent":12.5}}],"extra":null}`, base},
		{"OK/whitespace", "", "\n{ \"v\" : 1 ,\t\"device\":\"pi-kitchen\", \"boot\":\"" + testBoot +
			"\",\r\n \"readings\" : [ { \"seq\":1, \"ts\":1764368400123, \"metrics\" : { \"cpu.percent\" : 12.5 } } ] }\n", base},
		{"OK/simple form stamped with now", "", `{"temperature":21.5,"humidity":40}`, telemetry.Envelope{
			V: 1, Device: testDevice, Simple: true,
			Readings: []telemetry.Reading{{TS: testNow.UnixMilli(), Metrics: telemetry.Metrics{"temperature": 21.5, "humidity": 40}}},
		}},
		{"OK/simple form whitespace and exponents", "", " {\n\"a.b\" :\t-1.25E+3 , \"c\":0e0 }\r\n", telemetry.Envelope{
			V: 1, Device: testDevice, Simple: true,
			Readings: []telemetry.Reading{{TS: testNow.UnixMilli(), Metrics: telemetry.Metrics{"a.b": -1250, "c": 0}}},
		}},
		{"OK/simple form 512 metrics", "", metricsJSON(telemetry.MaxMetrics), telemetry.Envelope{
			V: 1, Device: testDevice, Simple: true,
			Readings: []telemetry.Reading{{TS: testNow.UnixMilli(), Metrics: metricsN(512)}},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			device := tt.device
			if device == "" {
				device = testDevice
			}
			got, err := telemetry.DecodeTelemetry(device, []byte(tt.payload), testNow)
			if err != nil {
				t.Fatalf("DecodeTelemetry(%.80q): %v", tt.payload, err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("DecodeTelemetry(%.80q) =\n%+v\nwant\n%+v", tt.payload, got, tt.want)
			}
			// DeepEqual takes -0 == 0; the sign must survive too.
			for i, r := range got.Readings {
				for name, v := range r.Metrics {
					if w := tt.want.Readings[i].Metrics[name]; math.Signbit(v) != math.Signbit(w) {
						t.Errorf("reading %d: %s=%v, want %v", i, name, v, w)
					}
				}
			}
		})
	}
}

func TestDecodeTelemetry_SimpleNow(t *testing.T) {
	t.Run("ErrBadTs", func(t *testing.T) {
		for _, now := range []time.Time{{}, time.UnixMilli(0), time.UnixMilli(telemetry.MaxTimestamp + 1)} {
			_, err := telemetry.DecodeTelemetry(testDevice, []byte(`{"a":1}`), now)
			if got, want := reasonOf(t, err), telemetry.ReasonBadTimestamp; got != want {
				t.Errorf("now=%v: Reason=%q, want %q", now, got, want)
			}
		}
	})
	for _, now := range []int64{1, testTS, telemetry.MaxTimestamp} {
		e, err := telemetry.DecodeTelemetry(testDevice, []byte(`{"a":1}`), time.UnixMilli(now))
		if err != nil {
			t.Fatalf("now=%d: %v", now, err)
		}
		if got, want := e.Readings[0].TS, now; got != want {
			t.Errorf("TS=%d, want %d", got, want)
		}
		if !e.Simple || e.Readings[0].Seq != 0 || e.Boot != "" {
			t.Errorf("now=%d: Simple=%v Seq=%d Boot=%q, want true, 0, \"\"", now, e.Simple, e.Readings[0].Seq, e.Boot)
		}
	}
}

func TestEnvelope_Encode(t *testing.T) {
	valid := func() telemetry.Envelope {
		return telemetry.Envelope{V: 1, Device: testDevice, Boot: testBoot,
			Readings: []telemetry.Reading{{Seq: 1, TS: testTS, Metrics: telemetry.Metrics{"a": 1}}}}
	}
	t.Run("OK", func(t *testing.T) {
		e := valid()
		e.Tags = map[string]string{"room": "<kitchen> & more"}
		b, err := e.Encode()
		if err != nil {
			t.Fatal(err)
		}
		got, err := telemetry.DecodeTelemetry(testDevice, b, testNow)
		if err != nil {
			t.Fatalf("decode %s: %v", b, err)
		}
		if !reflect.DeepEqual(got, e) {
			t.Errorf("round trip = %+v, want %+v", got, e)
		}
	})
	t.Run("OmitsEmptyTagsAndFirst", func(t *testing.T) {
		e := valid()
		e.Tags = map[string]string{}
		b, err := e.Encode()
		if err != nil {
			t.Fatal(err)
		}
		if got, want := string(b), `{"v":1,"device":"pi-kitchen","boot":"`+testBoot+`","readings":[{"seq":1,"ts":1764368400123,"metrics":{"a":1}}]}`; got != want {
			t.Errorf("Encode=%s, want %s", got, want)
		}
	})
	tests := []struct {
		reason string
		name   string
		modify func(e *telemetry.Envelope)
	}{
		{telemetry.ReasonBadVersion, "zero", func(e *telemetry.Envelope) { e.V = 0 }},
		{telemetry.ReasonBadDevice, "empty", func(e *telemetry.Envelope) { e.Device = "" }},
		{telemetry.ReasonBadBoot, "empty", func(e *telemetry.Envelope) { e.Boot = "" }},
		{telemetry.ReasonNoReadings, "nil", func(e *telemetry.Envelope) { e.Readings = nil }},
		{telemetry.ReasonBadSeq, "zero", func(e *telemetry.Envelope) { e.Readings[0].Seq = 0 }},
		{telemetry.ReasonBadSeq, "below first", func(e *telemetry.Envelope) { e.First = ptr(uint64(2)) }},
		{telemetry.ReasonBadTimestamp, "zero", func(e *telemetry.Envelope) { e.Readings[0].TS = 0 }},
		{telemetry.ReasonNoMetrics, "nil", func(e *telemetry.Envelope) { e.Readings[0].Metrics = nil }},
		{telemetry.ReasonBadMetricName, "uppercase", func(e *telemetry.Envelope) { e.Readings[0].Metrics["A"] = 1 }},
		{telemetry.ReasonBadValue, "NaN", func(e *telemetry.Envelope) { e.Readings[0].Metrics["a"] = math.NaN() }},
		{telemetry.ReasonBadValue, "+Inf", func(e *telemetry.Envelope) { e.Readings[0].Metrics["a"] = math.Inf(1) }},
		{telemetry.ReasonBadValue, "-Inf", func(e *telemetry.Envelope) { e.Readings[0].Metrics["a"] = math.Inf(-1) }},
		{telemetry.ReasonBadTags, "bad key", func(e *telemetry.Envelope) { e.Tags = map[string]string{"A": "b"} }},
		{telemetry.ReasonTooLarge, "300 readings of 30 metrics", func(e *telemetry.Envelope) {
			e.Readings = make([]telemetry.Reading, 300)
			for i := range e.Readings {
				e.Readings[i] = telemetry.Reading{Seq: uint64(i + 1), TS: testTS, Metrics: realisticMetrics(i)}
			}
		}},
	}
	for _, tt := range tests {
		t.Run(errName(tt.reason)+"/"+tt.name, func(t *testing.T) {
			e := valid()
			tt.modify(&e)
			b, err := e.Encode()
			if err == nil {
				t.Fatalf("Encode = %.80s, want error %s", b, tt.reason)
			}
			if b != nil {
				t.Errorf("Encode returned %d bytes with an error, want none", len(b))
			}
			if got, want := reasonOf(t, err), tt.reason; got != want {
				t.Errorf("Reason=%q, want %q (err: %v)", got, want, err)
			}
		})
	}
}

func TestError(t *testing.T) {
	seen := map[string]bool{}
	for _, r := range telemetry.Reasons {
		if seen[r] {
			t.Errorf("reason %q listed twice", r)
		}
		seen[r] = true
		for _, c := range r {
			if !(c >= 'a' && c <= 'z' || c == '_') {
				t.Errorf("reason %q is not lower_snake", r)
				break
			}
		}
	}
	// A reason an error can carry but Reasons lacks would never show up
	// as a zero counter in the hub's /metrics.
	for _, r := range []string{
		telemetry.ReasonBadTopic, telemetry.ReasonTooLarge, telemetry.ReasonBadJSON, telemetry.ReasonBadVersion,
		telemetry.ReasonBadDevice, telemetry.ReasonDeviceMismatch, telemetry.ReasonBadBoot, telemetry.ReasonNoReadings,
		telemetry.ReasonTooManyReadings, telemetry.ReasonBadSeq, telemetry.ReasonBadTimestamp, telemetry.ReasonNoMetrics,
		telemetry.ReasonTooManyMetrics, telemetry.ReasonBadMetricName, telemetry.ReasonBadValue,
		telemetry.ReasonDuplicateMetric, telemetry.ReasonBadTags, telemetry.ReasonBadStatus, telemetry.ReasonBadAck,
	} {
		if !seen[r] {
			t.Errorf("Reasons lacks %q", r)
		}
	}
	err := error(&telemetry.Error{Reason: telemetry.ReasonBadSeq, Msg: "seq 3 appears twice"})
	if got, want := err.Error(), "seq 3 appears twice"; got != want {
		t.Errorf("Error()=%q, want %q", got, want)
	}
}
