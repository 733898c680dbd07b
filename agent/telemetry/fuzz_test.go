package telemetry_test

import (
	"errors"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"

	"github.com/fleetwatch/fleetwatch/agent/telemetry"
)

// addGoldenSeeds adds every testdata/v1 file to f's corpus via add.
func addGoldenSeeds(f *testing.F, add func(b []byte)) {
	f.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "v1", "*.json"))
	if err != nil || len(files) == 0 {
		f.Fatalf("no golden files to seed from: %v", err)
	}
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		add(b)
	}
}

// checkError fails unless err is a *telemetry.Error with a listed reason.
func checkError(t *testing.T, err error) {
	t.Helper()
	var te *telemetry.Error
	if !errors.As(err, &te) {
		t.Fatalf("error %v (%T) is not a *telemetry.Error", err, err)
	}
	if !slices.Contains(telemetry.Reasons, te.Reason) {
		t.Fatalf("Reason=%q is not in telemetry.Reasons", te.Reason)
	}
}

func FuzzDecodeTelemetry(f *testing.F) {
	addGoldenSeeds(f, func(b []byte) { f.Add(testDevice, b) })
	for _, s := range []string{
		env(rd(1, `{"a":1e400}`)),
		env(rd(1, `{"a":-0,"b":5e-324,"c":1e21}`), rd(2, `{"a.b":1}`)),
		envWith(`"first":2,"tags":{}`, rd(2, `{"a":1}`), rd(3, `{"a":1}`)),
		envWith(`"tags":{"k":"<\u2028>"}`, rd(1, `{"a":1}`)),
		env(rd(1, `{"a\u002eb":1}`)),
		env(rd(1, `{"a":1,"a":2}`)),
		env(rd(0, `{}`)),
		`{"readings":1}`,
		`{"a":1,"b":{"c":2}}`,
		`{"a" : -1.5E-7 }`,
		`{"a":NaN}`,
		`{"a":1`,
		`null`,
		``,
	} {
		f.Add(testDevice, []byte(s))
	}
	f.Add("pi kitchen", []byte(`{"a":1}`))

	f.Fuzz(func(t *testing.T, device string, payload []byte) {
		e, err := telemetry.DecodeTelemetry(device, payload, testNow)
		if err != nil {
			checkError(t, err)
			if !reflect.DeepEqual(e, telemetry.Envelope{}) {
				t.Fatalf("envelope with an error = %+v, want zero", e)
			}
			return
		}
		if err := e.Validate(device); err != nil {
			t.Fatalf("decoded envelope fails Validate: %v", err)
		}
		if e.V != telemetry.Version || e.Device != device {
			t.Fatalf("V=%d Device=%q, want %d %q", e.V, e.Device, telemetry.Version, device)
		}
		n := len(e.Readings)
		if n == 0 || n > telemetry.MaxReadings {
			t.Fatalf("%d readings, want 1..%d", n, telemetry.MaxReadings)
		}
		for i, r := range e.Readings {
			if len(r.Metrics) == 0 || len(r.Metrics) > telemetry.MaxMetrics {
				t.Fatalf("reading %d: %d metrics, want 1..%d", i, len(r.Metrics), telemetry.MaxMetrics)
			}
			for name, v := range r.Metrics {
				if !telemetry.ValidMetricName(name) {
					t.Fatalf("reading %d: invalid metric name %q", i, name)
				}
				if math.IsNaN(v) || math.IsInf(v, 0) {
					t.Fatalf("reading %d: %s=%v, want finite", i, name, v)
				}
			}
		}

		if e.Simple {
			r := e.Readings[0]
			if n != 1 || r.Seq != 0 || r.TS != testNow.UnixMilli() || e.Boot != "" || e.First != nil || e.Tags != nil {
				t.Fatalf("simple form decoded to %+v, want one reading stamped %d and no seq, boot, first or tags", e, testNow.UnixMilli())
			}
			b, err := r.Metrics.MarshalJSON()
			if err != nil {
				t.Fatalf("MarshalJSON: %v", err)
			}
			var m telemetry.Metrics
			if err := m.UnmarshalJSON(b); err != nil {
				t.Fatalf("UnmarshalJSON(%s): %v", b, err)
			}
			equalMetrics(t, m, r.Metrics)
			return
		}

		b, err := e.Encode()
		if err != nil {
			// Encode writes numbers in full ("1e20" takes 21 bytes) and
			// escapes '<' in tags as \u003c: at most 6 times the input.
			var te *telemetry.Error
			if errors.As(err, &te) && te.Reason == telemetry.ReasonTooLarge && len(payload) > telemetry.MaxPayload/6 {
				t.Skipf("re-encoded %d-byte payload: %v", len(payload), err)
			}
			t.Fatalf("Encode of a decoded envelope: %v", err)
		}
		again, err := telemetry.DecodeTelemetry(device, b, testNow)
		if err != nil {
			t.Fatalf("DecodeTelemetry(Encode()): %v\n%s", err, b)
		}
		// Encode omits empty tags; the hub reads a missing "tags" as "no
		// change" and {} as "no tags", which the agent never needs to send.
		want := e
		if len(want.Tags) == 0 {
			want.Tags = nil
		}
		if !reflect.DeepEqual(again, want) {
			t.Fatalf("decode(encode(e)) =\n%+v\nwant\n%+v", again, want)
		}
		for i := range e.Readings {
			equalMetrics(t, again.Readings[i].Metrics, e.Readings[i].Metrics)
		}
	})
}

// equalMetrics compares bit for bit, so that -0 and 0 differ.
func equalMetrics(t *testing.T, got, want telemetry.Metrics) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d metrics, want %d", len(got), len(want))
	}
	for name, w := range want {
		if v, ok := got[name]; !ok || math.Float64bits(v) != math.Float64bits(w) {
			t.Fatalf("%s=%v (present %v), want %v", name, v, ok, w)
		}
	}
}

func FuzzDecodeStatus(f *testing.F) {
	addGoldenSeeds(f, func(b []byte) { f.Add(b) })
	for _, s := range []string{
		`{"v":1,"state":"online","boot":"b","hostname":"<\u2028>","interval_ms":-1}`,
		`{"v":1,"state":"offline","reason":"timeout","boot":"b","model":"x"}`,
		`{"v":1,"state":"online","boot":"b","reason":"lost"}`,
		`{"v":1,"state":"online","boot":"b","started":253402300800000}`,
		`{"v":2}`,
		`null`,
		`[`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		s, err := telemetry.DecodeStatus(payload)
		if err != nil {
			checkError(t, err)
			if s != (telemetry.Status{}) {
				t.Fatalf("status with an error = %+v, want zero", s)
			}
			return
		}
		if s.State != telemetry.StateOnline && s.State != telemetry.StateOffline {
			t.Fatalf("State=%q, want online or offline", s.State)
		}
		b, err := s.Encode()
		if err != nil {
			t.Fatalf("Encode of a decoded status: %v", err)
		}
		again, err := telemetry.DecodeStatus(b)
		if err != nil {
			t.Fatalf("DecodeStatus(Encode()): %v\n%s", err, b)
		}
		if again != s {
			t.Fatalf("decode(encode(s)) = %+v, want %+v", again, s)
		}
	})
}

func FuzzDecodeAck(f *testing.F) {
	addGoldenSeeds(f, func(b []byte) { f.Add(b) })
	f.Add([]byte(`{"v":1,"boot":"b","seq":18446744073709551615}`))
	f.Add([]byte(`{"v":1,"boot":"b","seq":-1}`))
	f.Fuzz(func(t *testing.T, payload []byte) {
		a, err := telemetry.DecodeAck(payload)
		if err != nil {
			checkError(t, err)
			return
		}
		if err := telemetry.ValidateBootID(a.Boot); err != nil || a.V != telemetry.Version {
			t.Fatalf("decoded ack %+v: V=%d, boot %v", a, a.V, err)
		}
		again, err := telemetry.DecodeAck(a.Encode())
		if err != nil || again != a {
			t.Fatalf("decode(encode(%+v)) = %+v, %v", a, again, err)
		}
	})
}
