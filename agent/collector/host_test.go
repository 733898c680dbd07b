package collector

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/fleetwatch/fleetwatch/agent/telemetry"
)

func TestParseUptime(t *testing.T) {
	tests := []struct {
		in      string
		want    float64
		wantErr bool
	}{
		{"12345.67 4567.89\n", 12345.67, false},
		{"0.50 0.10", 0.5, false},
		{"", 0, true},
		{"abc 1", 0, true},
	}
	for _, tt := range tests {
		t.Run(strconv.Quote(tt.in), func(t *testing.T) {
			got, err := parseUptime(tt.in)
			if got != tt.want || (err != nil) != tt.wantErr {
				t.Errorf("parseUptime(%q) = %v, %v; want %v, error %v", tt.in, got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestParseThrottled(t *testing.T) {
	tests := []struct {
		in      string
		want    Throttled
		wantErr bool
	}{
		{"0\n", Throttled{}, false},
		{"50005\n", Throttled{Raw: 0x50005, UnderVoltage: true, Throttling: true, UnderVoltageOccurred: true, ThrottlingOccurred: true}, false},
		{"0x50000", Throttled{Raw: 0x50000, UnderVoltageOccurred: true, ThrottlingOccurred: true}, false},
		{"1", Throttled{Raw: 1, UnderVoltage: true}, false},
		{"80008", Throttled{Raw: 0x80008}, false}, // soft temp limit bits only
		{"", Throttled{}, true},
		{"zz", Throttled{}, true},
		{"100000000", Throttled{}, true}, // more than 32 bits
	}
	for _, tt := range tests {
		t.Run(strconv.Quote(tt.in), func(t *testing.T) {
			got, err := parseThrottled(tt.in)
			if got != tt.want || (err != nil) != tt.wantErr {
				t.Errorf("parseThrottled(%q) = %+v, %v; want %+v, error %v", tt.in, got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestIsPID(t *testing.T) {
	tests := []struct {
		in   string
		want bool
	}{
		{"1", true},
		{"4242", true},
		{"", false},
		{"self", false},
		{"12a", false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if got := isPID(tt.in); got != tt.want {
				t.Errorf("isPID(%q) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
}

// procTree makes a procfs fixture with n process dirs and some non-process
// entries.
func procTree(t *testing.T, n int) string {
	t.Helper()
	root := t.TempDir()
	for i := range n {
		if err := os.Mkdir(filepath.Join(root, strconv.Itoa(i+1)), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"self", "sys", "net"} {
		if err := os.Mkdir(filepath.Join(root, name), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	writeFile(t, filepath.Join(root, "uptime"), "3600.25 7000.00\n")
	return root
}

func TestCountProcs(t *testing.T) {
	// More than one Readdirnames batch.
	got, err := countProcs(procTree(t, 1300))
	if got != 1300 || err != nil {
		t.Errorf("countProcs() = %d, %v; want 1300, nil", got, err)
	}
	if _, err := countProcs(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Errorf("countProcs(missing dir): got nil error, want one")
	}
}

func TestHost_Collect(t *testing.T) {
	t.Run("raspberry pi", func(t *testing.T) {
		proc, sys := procTree(t, 3), t.TempDir()
		writeFile(t, filepath.Join(sys, cpuFreqFile), "1500000\n")
		writeFile(t, filepath.Join(sys, throttledFile), "50000\n")
		m := telemetry.Metrics{}
		if err := (&Host{ProcRoot: proc, SysRoot: sys}).Collect(t.Context(), m); err != nil {
			t.Fatal(err)
		}
		want := telemetry.Metrics{
			"host.uptime_s": 3600.25, "host.procs": 3, "cpu.freq_mhz": 1500,
			"rpi.throttled": 0x50000, "rpi.under_voltage": 0, "rpi.throttling": 0,
			"rpi.under_voltage_occurred": 1, "rpi.throttling_occurred": 1,
		}
		if fmt.Sprint(m) != fmt.Sprint(want) {
			t.Errorf("got %v, want %v", m, want)
		}
	})
	t.Run("plain vm without cpufreq or firmware", func(t *testing.T) {
		m := telemetry.Metrics{}
		if err := (&Host{ProcRoot: procTree(t, 2), SysRoot: t.TempDir()}).Collect(t.Context(), m); err != nil {
			t.Fatal(err)
		}
		want := telemetry.Metrics{"host.uptime_s": 3600.25, "host.procs": 2}
		if fmt.Sprint(m) != fmt.Sprint(want) {
			t.Errorf("got %v, want %v", m, want)
		}
	})
	t.Run("bad files keep the good metrics", func(t *testing.T) {
		proc, sys := procTree(t, 1), t.TempDir()
		writeFile(t, filepath.Join(proc, "uptime"), "soon\n")
		writeFile(t, filepath.Join(sys, throttledFile), "??\n")
		m := telemetry.Metrics{}
		err := (&Host{ProcRoot: proc, SysRoot: sys}).Collect(t.Context(), m)
		if err == nil {
			t.Errorf("got nil error, want one")
		}
		if got, want := fmt.Sprint(m), fmt.Sprint(telemetry.Metrics{"host.procs": 1}); got != want {
			t.Errorf("got %v, want %v", got, want)
		}
	})
}
