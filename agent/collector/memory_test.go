package collector

import (
	"testing"

	"github.com/fleetwatch/fleetwatch/agent/telemetry"
)

func TestMemUsage(t *testing.T) {
	tests := []struct {
		name             string
		total, available uint64
		want             MemUsage
	}{
		{"quarter used", 4 << 30, 3 << 30, MemUsage{Total: 4 << 30, Used: 1 << 30, Available: 3 << 30, UsedPercent: 25}},
		{"all free", 1000, 1000, MemUsage{Total: 1000, Available: 1000}},
		{"available above total is clamped", 1000, 1200, MemUsage{Total: 1000, Available: 1000}},
		{"no total", 0, 0, MemUsage{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := memUsage(tt.total, tt.available); got != tt.want {
				t.Errorf("memUsage(%d, %d) = %+v, want %+v", tt.total, tt.available, got, tt.want)
			}
		})
	}
}

func TestPercent(t *testing.T) {
	tests := []struct {
		name              string
		part, total, want float64
	}{
		{"half", 5, 10, 50},
		{"zero total", 5, 0, 0},
		{"full", 3, 3, 100},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := percent(tt.part, tt.total); got != tt.want {
				t.Errorf("percent(%v, %v) = %v, want %v", tt.part, tt.total, got, tt.want)
			}
		})
	}
}

func TestSwapUsage(t *testing.T) {
	tests := []struct {
		name                  string
		total, free           uint64
		wantUsed, wantPercent float64
	}{
		{"no swap", 0, 0, 0, 0},
		{"half used", 2048, 1024, 1024, 50},
		{"unused", 2048, 2048, 0, 0},
		{"free above total", 100, 150, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			used, pct := swapUsage(tt.total, tt.free)
			if used != tt.wantUsed || pct != tt.wantPercent {
				t.Errorf("swapUsage(%d, %d) = %v, %v; want %v, %v", tt.total, tt.free, used, pct, tt.wantUsed, tt.wantPercent)
			}
		})
	}
}

func TestMemory_Collect(t *testing.T) {
	m := telemetry.Metrics{}
	if err := (Memory{}).Collect(t.Context(), m); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"mem.total_bytes", "mem.used_bytes", "mem.available_bytes", "mem.used_percent", "swap.total_bytes", "swap.used_bytes", "swap.used_percent"} {
		if _, ok := m[name]; !ok {
			t.Errorf("%s missing", name)
		}
	}
	if got, want := m["mem.used_bytes"]+m["mem.available_bytes"], m["mem.total_bytes"]; got != want {
		t.Errorf("used + available = %v, want total %v", got, want)
	}
}
