package collector

import (
	"context"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/fleetwatch/fleetwatch/agent/telemetry"
)

func TestSanitize(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"root mount is empty", "/", ""},
		{"nested mount", "/boot/firmware", "boot_firmware"},
		{"plain iface", "eth0", "eth0"},
		{"dash", "br-1a2b", "br_1a2b"},
		{"upper case", "WLAN0", "wlan0"},
		{"dots and spaces", "/mnt/My Disk.v2", "mnt_my_disk_v2"},
		{"non-ascii", "/mnt/dätä", "mnt_d__t"},
		{"only junk", "---", ""},
		{"keeps inner underscores", "__a__b__", "a__b"},
		{"cut to 64", "/" + strings.Repeat("ab", 40), strings.Repeat("ab", 32)},
		{"cut never ends in underscore", strings.Repeat("a", 63) + "-b", strings.Repeat("a", 63)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Sanitize(tt.in); got != tt.want {
				t.Errorf("Sanitize(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestUniqueKey(t *testing.T) {
	seen := map[string]bool{}
	var got []string
	for _, k := range []string{"nvme", "nvme", "root", "nvme"} {
		got = append(got, uniqueKey(seen, k))
	}
	want := []string{"nvme", "nvme_2", "root", "nvme_3"}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("key %d: got %q, want %q", i, got[i], want[i])
		}
	}
}

func TestCounterRate(t *testing.T) {
	tests := []struct {
		name      string
		prev, cur uint64
		elapsed   time.Duration
		want      float64
		wantOK    bool
	}{
		{"steady", 1000, 3000, 2 * time.Second, 1000, true},
		{"idle", 5, 5, time.Second, 0, true},
		{"sub-second", 0, 500, 500 * time.Millisecond, 1000, true},
		{"reset", 3000, 10, time.Second, 0, false},
		{"32-bit wrap", math.MaxUint32 - 5, 100, time.Second, 0, false},
		{"large 64-bit", 1 << 62, 1<<62 + 8, time.Second, 8, true},
		{"no time", 0, 10, 0, 0, false},
		{"clock backwards", 0, 10, -time.Second, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := counterRate(tt.prev, tt.cur, tt.elapsed)
			if got != tt.want || ok != tt.wantOK {
				t.Errorf("counterRate(%d, %d, %v) = %v, %v; want %v, %v", tt.prev, tt.cur, tt.elapsed, got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

func TestPut(t *testing.T) {
	m := telemetry.Metrics{}
	put(m, "a", 1.5)
	put(m, "nan", math.NaN())
	put(m, "inf", math.Inf(1))
	if got, want := len(m), 1; got != want {
		t.Fatalf("got %d metrics %v, want %d", got, m, want)
	}
	if got, want := m["a"], 1.5; got != want {
		t.Errorf("m[a] = %v, want %v", got, want)
	}
}

// TestDefault_Collect runs the standard set twice on this machine, as the
// agent would, and checks the reading against the wire contract.
func TestDefault_Collect(t *testing.T) {
	ctx := context.Background()
	cs := Default()
	var m telemetry.Metrics
	for round := range 2 {
		if round > 0 {
			time.Sleep(200 * time.Millisecond) // let the tick counters move
		}
		m = telemetry.Metrics{}
		for _, c := range cs {
			if err := c.Collect(ctx, m); err != nil {
				t.Errorf("round %d: %s: %v", round, c.Name(), err)
			}
		}
	}
	checks := []struct {
		name     string
		min, max float64
	}{
		{"cpu.percent", 0, 100},
		{"cpu.user", 0, 100},
		{"mem.total_bytes", 1, math.MaxFloat64},
		{"mem.used_percent", 0, 100},
		{"load.1", 0, math.MaxFloat64},
		{"host.uptime_s", 1e-9, math.MaxFloat64},
		{"host.procs", 1, math.MaxFloat64},
	}
	for _, c := range checks {
		got, ok := m[c.name]
		if !ok {
			t.Errorf("%s missing", c.name)
			continue
		}
		if got < c.min || got > c.max {
			t.Errorf("%s = %v, want in [%v, %v]", c.name, got, c.min, c.max)
		}
	}
	for name, v := range m {
		if !telemetry.ValidMetricName(name) {
			t.Errorf("invalid metric name %q", name)
		}
		if math.IsNaN(v) || math.IsInf(v, 0) {
			t.Errorf("%s = %v, want finite", name, v)
		}
	}
	if got, want := len(m), telemetry.MaxMetrics; got > want {
		t.Errorf("got %d metrics, want at most %d", got, want)
	}
	r := telemetry.Reading{Seq: 1, TS: time.Now().UnixMilli(), Metrics: m}
	env := telemetry.Envelope{V: telemetry.Version, Device: "test", Boot: "b1", Readings: []telemetry.Reading{r}}
	if _, err := env.Encode(); err != nil {
		t.Errorf("encode reading: %v", err)
	}
	t.Logf("%d metrics", len(m))
}

func BenchmarkDefault_Collect(b *testing.B) {
	ctx := context.Background()
	cs := Default()
	m := make(telemetry.Metrics, 256)
	for _, c := range cs {
		_ = c.Collect(ctx, m) // prime the stateful collectors
	}
	b.ReportAllocs()
	for b.Loop() {
		clear(m)
		for _, c := range cs {
			_ = c.Collect(ctx, m)
		}
	}
}

func TestPut_Rounding(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   float64
		want float64
	}{
		{"cpu.percent", 9.547738693467336, 9.55},
		{"cpu.core.1.percent", 99.999, 100},
		{"cpu.user", 1.234567, 1.23},
		{"mem.used_percent", 41.2049, 41.2},
		{"net.eth0.rx_bytes_per_s", 2195842.193819305, 2195842.19},
		{"mem.total_bytes", 25276026880, 25276026880},
		{"temp.soc", 48.312, 48.312},
		{"load.1", 0.4567, 0.4567},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := telemetry.Metrics{}
			put(m, tc.name, tc.in)
			if got := m[tc.name]; got != tc.want {
				t.Fatalf("put(%s, %v)=%v, want %v", tc.name, tc.in, got, tc.want)
			}
		})
	}
	m := telemetry.Metrics{}
	put(m, "cpu.percent", math.NaN())
	if _, ok := m["cpu.percent"]; ok {
		t.Fatal("NaN was stored")
	}
}
