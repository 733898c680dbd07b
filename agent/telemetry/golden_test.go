package telemetry_test

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/fleetwatch/fleetwatch/agent/telemetry"
)

var update = flag.Bool("update", false, "rewrite golden files")

// Values shared by the golden files and the tables.
const (
	testDevice = "pi-kitchen"
	testBoot   = "20251128T222000-3f9a1c7e5b20" // as fleetwatch-agent's newBootID makes them
	testTS     = int64(1764368400123)           // 2025-11-28T22:20:00.123Z
)

// testNow is the receive time the hub stamps simple readings with.
var testNow = time.UnixMilli(1764368401000)

func ptr[T any](v T) *T { return &v }

// goldenCase is one file of testdata/v1: value encodes to the file's bytes
// (plus a trailing newline) and the file decodes back to value.
type goldenCase struct {
	file   string
	value  any
	encode func() ([]byte, error)
	decode func([]byte) (any, error)
}

func decodeTelemetry(b []byte) (any, error) { return telemetry.DecodeTelemetry(testDevice, b, testNow) }
func decodeStatus(b []byte) (any, error)    { return telemetry.DecodeStatus(b) }
func decodeAck(b []byte) (any, error)       { return telemetry.DecodeAck(b) }

func goldenCases() []goldenCase {
	contract := telemetry.Envelope{
		V: telemetry.Version, Device: testDevice, Boot: testBoot,
		Readings: []telemetry.Reading{{Seq: 41, TS: testTS, Metrics: telemetry.Metrics{"cpu.percent": 12.5, "mem.used_percent": 41.2}}},
		Tags:     map[string]string{"site": "home"},
	}
	first := contract
	first.First = ptr(uint64(40))
	first.Readings = []telemetry.Reading{
		{Seq: 42, TS: testTS + 1000, Metrics: telemetry.Metrics{"cpu.percent": 3, "temp.soc": 48.3}},
		{Seq: 41, TS: testTS, Metrics: telemetry.Metrics{"cpu.percent": 12.5, "temp.soc": 47.8}},
	}
	simple := telemetry.Envelope{
		V: telemetry.Version, Device: testDevice, Simple: true,
		Readings: []telemetry.Reading{{TS: testNow.UnixMilli(), Metrics: telemetry.Metrics{"temperature": 21.5, "humidity": 40}}},
	}
	online := telemetry.Status{
		V: telemetry.Version, State: telemetry.StateOnline, Boot: testBoot,
		AgentVersion: "v0.3.1", Hostname: "pi-kitchen", OS: "linux",
		Platform: "debian 12.8", Arch: "arm64", Model: "Raspberry Pi 4 Model B Rev 1.4",
		IntervalMS: 1000, Started: 1764368400000, HostBoot: 1764361200000,
	}
	ack := telemetry.Ack{V: telemetry.Version, Boot: testBoot, Seq: 41}

	envelope := func(e telemetry.Envelope) func() ([]byte, error) { return e.Encode }
	status := func(s telemetry.Status) func() ([]byte, error) { return s.Encode }
	return []goldenCase{
		{"envelope.json", contract, envelope(contract), decodeTelemetry},
		{"envelope_first.json", first, envelope(first), decodeTelemetry},
		// Third-party devices write the simple form by hand; this is the
		// form Metrics encodes to.
		{"simple.json", simple, func() ([]byte, error) { return simple.Readings[0].Metrics.MarshalJSON() }, decodeTelemetry},
		{"status_online.json", online, status(online), decodeStatus},
		{"status_offline_lost.json", telemetry.Offline(telemetry.ReasonLost), status(telemetry.Offline(telemetry.ReasonLost)), decodeStatus},
		{"status_offline_shutdown.json", telemetry.Offline(telemetry.ReasonShutdown), status(telemetry.Offline(telemetry.ReasonShutdown)), decodeStatus},
		{"ack.json", ack, func() ([]byte, error) { return ack.Encode(), nil }, decodeAck},
	}
}

func TestGolden(t *testing.T) {
	for _, tc := range goldenCases() {
		t.Run(tc.file, func(t *testing.T) {
			path := filepath.Join("testdata", "v1", tc.file)
			got, err := tc.encode()
			if err != nil {
				t.Fatalf("encode: %v", err)
			}
			got = append(got, '\n')
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			t.Run("Encode", func(t *testing.T) {
				if !bytes.Equal(got, want) {
					t.Errorf("encoded\n%s\nwant (%s)\n%s", got, path, want)
				}
			})
			t.Run("Decode", func(t *testing.T) {
				v, err := tc.decode(want)
				if err != nil {
					t.Fatalf("decode %s: %v", path, err)
				}
				if !reflect.DeepEqual(v, tc.value) {
					t.Errorf("decoded %s\n%#v\nwant\n%#v", path, v, tc.value)
				}
			})
		})
	}
}

// TestGolden_Files makes sure no golden file is left without a case.
func TestGolden_Files(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "v1", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	known := map[string]bool{}
	for _, tc := range goldenCases() {
		known[tc.file] = true
	}
	for _, f := range files {
		if !known[filepath.Base(f)] {
			t.Errorf("%s has no case in goldenCases", f)
		}
	}
	if got, want := len(files), len(known); got != want {
		t.Errorf("%d golden files, want %d", got, want)
	}
}
