package collector

import (
	"bufio"
	"context"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fleetwatch/fleetwatch/agent/telemetry"
)

func TestCPUPercents(t *testing.T) {
	base := CPUTimes{User: 1000, Nice: 10, System: 500, Idle: 8000, Iowait: 100, Irq: 5, Softirq: 20, Steal: 0}
	tests := []struct {
		name      string
		prev, cur CPUTimes
		want      CPUPercents
		wantOK    bool
	}{
		{
			name: "mixed load",
			prev: base,
			// +100 ticks: user 30 (+nice 10), system 10 (+irq 5 +softirq 5), idle 30, iowait 5, steal 5
			cur:    CPUTimes{User: 1030, Nice: 20, System: 510, Idle: 8030, Iowait: 105, Irq: 10, Softirq: 25, Steal: 5},
			want:   CPUPercents{Busy: 65, User: 40, System: 20, Iowait: 5, Steal: 5},
			wantOK: true,
		},
		{
			name:   "all idle",
			prev:   base,
			cur:    CPUTimes{User: 1000, Nice: 10, System: 500, Idle: 8100, Iowait: 100, Irq: 5, Softirq: 20},
			want:   CPUPercents{},
			wantOK: true,
		},
		{
			name:   "since boot from zero",
			prev:   CPUTimes{},
			cur:    CPUTimes{User: 25, Idle: 75},
			want:   CPUPercents{Busy: 25, User: 25},
			wantOK: true,
		},
		{
			name:   "no tick elapsed",
			prev:   base,
			cur:    base,
			wantOK: false,
		},
		{
			name: "iowait going backwards counts as zero",
			prev: base,
			cur:  CPUTimes{User: 1050, Nice: 10, System: 500, Idle: 8050, Iowait: 90, Irq: 5, Softirq: 20},
			// deltas: user 50, idle 50, iowait -10 → 0
			want:   CPUPercents{Busy: 50, User: 50},
			wantOK: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := cpuPercents(tt.prev, tt.cur)
			if ok != tt.wantOK || !closeCPU(got, tt.want) {
				t.Errorf("cpuPercents() = %+v, %v; want %+v, %v", got, ok, tt.want, tt.wantOK)
			}
			if parts := got.User + got.System + got.Steal; math.Abs(parts-got.Busy) > 1e-9 {
				t.Errorf("user+system+steal = %v, want busy %v", parts, got.Busy)
			}
		})
	}
}

func closeCPU(a, b CPUPercents) bool {
	eq := func(x, y float64) bool { return math.Abs(x-y) < 1e-9 }
	return eq(a.Busy, b.Busy) && eq(a.User, b.User) && eq(a.System, b.System) && eq(a.Iowait, b.Iowait) && eq(a.Steal, b.Steal)
}

const procStat = `cpu  7208 3 5314 77538 708 1 229 2 9 0
cpu0 2949 0 2047 40361 39 0 82 0 0 0
cpu1 4258 3 3266 37176 668 1 147 2 9 0
cpu70 1 1 1 1 1 1 1 1 0 0
intr 123 4 5 6
ctxt 999
`

func TestParseProcStat(t *testing.T) {
	t.Run("modern kernel", func(t *testing.T) {
		total, cores, err := parseProcStat(bufio.NewReader(strings.NewReader(procStat)), nil)
		if err != nil {
			t.Fatal(err)
		}
		want := CPUTimes{User: 7208, Nice: 3, System: 5314, Idle: 77538, Iowait: 708, Irq: 1, Softirq: 229, Steal: 2}
		if total != want {
			t.Errorf("total = %+v, want %+v", total, want)
		}
		// cpu70 is past MaxCores and left out.
		if got, want := len(cores), 2; got != want {
			t.Fatalf("got %d cores, want %d", got, want)
		}
		if got, want := cores[1], (coreTimes{n: 1, t: CPUTimes{User: 4258, Nice: 3, System: 3266, Idle: 37176, Iowait: 668, Irq: 1, Softirq: 147, Steal: 2}}); got != want {
			t.Errorf("core 1 = %+v, want %+v", got, want)
		}
	})
	t.Run("old kernel with four columns", func(t *testing.T) {
		total, _, err := parseProcStat(bufio.NewReader(strings.NewReader("cpu 1 2 3 4\n")), nil)
		if got, want := total, (CPUTimes{User: 1, Nice: 2, System: 3, Idle: 4}); err != nil || got != want {
			t.Errorf("got %+v, %v; want %+v, nil", got, err, want)
		}
	})
	t.Run("no final newline", func(t *testing.T) {
		total, _, err := parseProcStat(bufio.NewReader(strings.NewReader("cpu 1 2 3 4 5")), nil)
		if got, want := total.Iowait, uint64(5); err != nil || got != want {
			t.Errorf("iowait = %d, %v; want %d, nil", got, err, want)
		}
	})
	errCases := []struct{ name, in string }{
		{"empty", ""},
		{"no cpu line", "intr 1 2 3\n"},
		{"short line", "cpu 1 2\n"},
		{"bad number", "cpu 1 2 x 4\n"},
		{"overflow", "cpu 99999999999999999999 2 3 4\n"},
	}
	for _, tt := range errCases {
		t.Run(tt.name, func(t *testing.T) {
			if _, _, err := parseProcStat(bufio.NewReader(strings.NewReader(tt.in)), nil); err == nil {
				t.Errorf("parseProcStat(%q): got nil error, want one", tt.in)
			}
		})
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestCPU_Collect(t *testing.T) {
	root := t.TempDir()
	stat := filepath.Join(root, "stat")
	c := &CPU{ProcRoot: root}

	writeFile(t, stat, "cpu  100 0 0 300 0 0 0 0 0 0\ncpu0 50 0 0 150 0 0 0 0 0 0\ncpu1 50 0 0 150 0 0 0 0 0 0\nintr 1\n")
	m := telemetry.Metrics{}
	if err := c.Collect(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	if got, want := m["cpu.percent"], 25.0; got != want {
		t.Errorf("first collect (since boot): cpu.percent = %v, want %v", got, want)
	}

	// +100 ticks per core: core 0 fully busy, core 1 idle.
	writeFile(t, stat, "cpu  200 0 0 400 0 0 0 0 0 0\ncpu0 150 0 0 150 0 0 0 0 0 0\ncpu1 50 0 0 250 0 0 0 0 0 0\nintr 1\n")
	m = telemetry.Metrics{}
	if err := c.Collect(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	want := telemetry.Metrics{
		"cpu.percent": 50, "cpu.user": 50, "cpu.system": 0, "cpu.iowait": 0, "cpu.steal": 0,
		"cpu.core.0.percent": 100, "cpu.core.1.percent": 0,
	}
	if len(m) != len(want) {
		t.Errorf("got %v, want %v", m, want)
	}
	for k, w := range want {
		if got, ok := m[k]; !ok || got != w {
			t.Errorf("%s = %v (present %v), want %v", k, got, ok, w)
		}
	}

	// Same counters again: no tick elapsed, nothing to report.
	m = telemetry.Metrics{}
	if err := c.Collect(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	if len(m) != 0 {
		t.Errorf("got %v, want no metrics", m)
	}

	t.Run("missing file", func(t *testing.T) {
		err := (&CPU{ProcRoot: t.TempDir()}).Collect(context.Background(), telemetry.Metrics{})
		if err == nil || !strings.HasPrefix(err.Error(), "read cpu times: ") {
			t.Errorf("got %v, want a read cpu times error", err)
		}
	})
}
