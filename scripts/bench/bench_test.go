package main

import (
	"bufio"
	"bytes"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	s := make([]float64, 100)
	for i := range s {
		s[i] = float64(i + 1) // 1..100
	}
	for _, tc := range []struct{ p, want float64 }{{50, 50}, {99, 99}, {100, 100}, {1, 1}, {0.1, 1}} {
		if got := percentile(s, tc.p); got != tc.want {
			t.Errorf("percentile(1..100, %g) = %g, want %g", tc.p, got, tc.want)
		}
	}
	if got := percentile([]float64{7}, 99); got != 7 {
		t.Errorf("one sample: got %g", got)
	}
	if !math.IsNaN(percentile(nil, 50)) {
		t.Error("no samples must give NaN, never a made-up 0")
	}
	d := distOf([]float64{3, 1, 2})
	if d.N != 3 || d.P50 != 2 || d.Max != 3 {
		t.Errorf("distOf = %+v", d)
	}
}

func TestParseStatus(t *testing.T) {
	text := "Name:\tfleetwatch-hub\nState:\tS (sleeping)\nVmPeak:\t 1234 kB\nVmRSS:\t   24816 kB\nThreads:\t9\n"
	st, err := parseStatus(text)
	if err != nil || st.RSSKB != 24816 || st.Threads != 9 {
		t.Fatalf("parseStatus = %+v, %v", st, err)
	}
	if _, err := parseStatus("Name:\tkworker\nThreads:\t1\n"); err == nil {
		t.Error("a status without VmRSS must be an error")
	}
}

func TestParseStatTicks(t *testing.T) {
	// The name holds spaces and a ')': fields count from the last ')'.
	line := "4242 (we(i)rd name) S 1 4242 4242 0 -1 4194560 500 0 0 0 123 45 0 0 20 0 9 0 1000 100000 2000 18446744073709551615\n"
	got, err := parseStatTicks(line)
	if err != nil || got != 168 {
		t.Fatalf("parseStatTicks = %d, %v; want 168", got, err)
	}
	if _, err := parseStatTicks("4242 (x) S 1"); err == nil {
		t.Error("a short line must be an error")
	}
	if n, err := parseIOWrite("rchar: 10\nwchar: 20\nwrite_bytes: 4096\ncancelled_write_bytes: 0\n"); err != nil || n != 4096 {
		t.Errorf("parseIOWrite = %d, %v", n, err)
	}
	if ns, err := parseSchedstat("3139368 589941 2\n"); err != nil || ns != 3139368 {
		t.Errorf("parseSchedstat = %d, %v", ns, err)
	}
}

func TestSnapshotTS(t *testing.T) {
	ws := []byte(`{"type":"fleet","id":12,"data":{"version":3,"ts":1764368400123,"devices":[`)
	if ts, ok := snapshotTS(ws[bytes.Index(ws, []byte(`"data":`)):]); !ok || ts != 1764368400123 {
		t.Errorf("ws: %d %v", ts, ok)
	}
	if _, ok := snapshotTS([]byte(`{"version":3,"t`)); ok {
		t.Error("a cut-off prefix must not parse")
	}
}

func TestReadSSE(t *testing.T) {
	big := strings.Repeat("x", 100_000) // a snapshot far larger than the reader's buffer
	stream := "retry: 2000\nid: 1\nevent: fleet\ndata: {\"version\":1,\"ts\":100," + big + "}\n\n" +
		": heartbeat\n\n" +
		"id: 2\nevent: reading\ndata: {\"device\":\"a\"}\n\n" +
		"id: 3\nevent: fleet\ndata: {\"version\":2,\"ts\":200," + big + "}\n\n"
	var got []string
	err := readSSE(bufio.NewReaderSize(strings.NewReader(stream), 4096), func(ev string, data []byte) {
		ts, _ := snapshotTS(data)
		got = append(got, ev+":"+string(rune('0'+ts/100)))
		if len(data) > 256 {
			t.Errorf("kept %d bytes of data, want ≤ 256", len(data))
		}
	})
	if err == nil {
		t.Fatal("want EOF at the end of the stream")
	}
	// The first event (the snapshot on connect) is skipped.
	if strings.Join(got, " ") != "reading:0 fleet:2" {
		t.Errorf("events = %q", got)
	}
}

func TestParseProm(t *testing.T) {
	m, err := parseProm(strings.NewReader("# HELP a x\n# TYPE a counter\na 12\nb{transport=\"ws\"} 3\nc 1.5e+06\n"))
	if err != nil {
		t.Fatal(err)
	}
	if m["a"] != 12 || m[`b{transport="ws"}`] != 3 || m["c"] != 1.5e6 {
		t.Errorf("parseProm = %v", m)
	}
}

func TestCountSyncs(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.log")
	log := "10 100.5 fdatasync(3) = 0\n11 101.0 fsync(3 <unfinished ...>\n11 101.1 <... fsync resumed>) = 0\n10 150.0 fdatasync(3) = 0\n"
	if err := os.WriteFile(path, []byte(log), 0o644); err != nil {
		t.Fatal(err)
	}
	n, err := countSyncs(path, time.Unix(100, 0), time.Unix(102, 0))
	if err != nil || n != 2 {
		t.Errorf("countSyncs = %d, %v; want 2 (resumed lines are not calls)", n, err)
	}
}

func TestMarkdown(t *testing.T) {
	r := &Report{
		Machine: Machine{CPU: "AMD EPYC", Cores: 2, MemoryGiB: 23.5, Kernel: "6.18", Go: "go1.26.8", Mosquitto: "2.0.11", Date: "2026-11-29"},
		Sizes:   map[string]any{"text": "tiny"},
		Rows: []Row{
			{Name: "query", Figure: "p99 1 | 2 ms", Baseline: "—", Goal: "≤ 5 ms", Verdict: Meets},
			notRun("agent", "≤ 8 MB", "node-exporter missing"),
		},
	}
	var buf bytes.Buffer
	r.Markdown(&buf)
	out := buf.String()
	for _, want := range []string{
		"| row | figure | baseline (same run) | goal | verdict |",
		`| query | p99 1 \| 2 ms | — | ≤ 5 ms | meets |`,
		"| agent | not measured | — | ≤ 8 MB | n/a: node-exporter missing |",
		"AMD EPYC, 2 cores",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("markdown lacks %q:\n%s", want, out)
		}
	}
	r.Rows[0].Values = map[string]float64{"p99_ms": math.NaN(), "p50_ms": 1}
	path := filepath.Join(t.TempDir(), "r.json")
	if err := r.WriteJSON(path); err != nil {
		t.Fatalf("a NaN must not break the JSON: %v", err)
	}
}

func TestJudge(t *testing.T) {
	if v, why := judge(need(true, "a"), need(true, "b")); v != Meets || why != "" {
		t.Errorf("all hold: %s %q", v, why)
	}
	v, why := judge(need(false, "ratio %.1f < 0.9", 0.5), need(true, "b"), need(false, "c"))
	if v != Misses || why != "ratio 0.5 < 0.9; c" {
		t.Errorf("misses: %s %q", v, why)
	}
	r := Row{Why: why}
	r.caveat("judged at K=200")
	if r.Why != "ratio 0.5 < 0.9; c; judged at K=200" {
		t.Errorf("caveat: %q", r.Why)
	}
}

func TestRunBudget(t *testing.T) {
	for _, tc := range []struct {
		profile, env string
		want         time.Duration
	}{
		{"default", "", 10 * time.Minute},
		{"full", "", 45 * time.Minute},
		{"smoke", "", 3 * time.Minute},
		{"full", "90s", 90 * time.Second},
		{"default", "garbage", 10 * time.Minute},
	} {
		if got := runBudget(tc.profile, tc.env); got != tc.want {
			t.Fatalf("runBudget(%q, %q)=%s, want %s", tc.profile, tc.env, got, tc.want)
		}
	}
}

func TestDeliveryOf(t *testing.T) {
	key := func(le string) string {
		return `fleetwatch_live_delivery_seconds_bucket{transport="ws",le="` + le + `"}`
	}
	m0 := map[string]float64{key("0.05"): 10, key("0.1"): 10, key("0.25"): 10, key("+Inf"): 10}
	tests := []struct {
		name string
		m1   map[string]float64
		want hubDelivery
	}{
		{"all within 50 ms", map[string]float64{key("0.05"): 110, key("0.1"): 110, key("0.25"): 110, key("+Inf"): 110},
			hubDelivery{N: 100, Within100: 1, P50: 50, P99: 50}},
		{"2% past 100 ms", map[string]float64{key("0.05"): 60, key("0.1"): 108, key("0.25"): 110, key("+Inf"): 110},
			hubDelivery{N: 100, Within100: 0.98, P50: 50, P99: 250}},
		{"past the last bound", map[string]float64{key("0.05"): 10, key("0.1"): 10, key("0.25"): 10, key("+Inf"): 20},
			hubDelivery{N: 10, Within100: 0, P50: -1, P99: -1}},
		{"nothing in the window", m0, hubDelivery{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := deliveryOf(m0, tt.m1, "ws"); got != tt.want {
				t.Errorf("deliveryOf = %+v, want %+v", got, tt.want)
			}
		})
	}
}
