package collector

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/fleetwatch/fleetwatch/agent/telemetry"
)

// Sysfs files read by Host, relative to SysRoot.
const (
	cpuFreqFile   = "devices/system/cpu/cpu0/cpufreq/scaling_cur_freq"
	throttledFile = "devices/platform/soc/soc:firmware/get_throttled"
)

// parseUptime parses the first field of /proc/uptime ("12345.67 4567.89").
func parseUptime(s string) (float64, error) {
	f, _, _ := strings.Cut(strings.TrimSpace(s), " ")
	v, err := strconv.ParseFloat(f, 64)
	if err != nil {
		return 0, fmt.Errorf("parse uptime %q: %w", f, err)
	}
	return v, nil
}

// isPID reports whether a /proc entry name is a process id.
func isPID(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		if name[i] < '0' || name[i] > '9' {
			return false
		}
	}
	return true
}

// countProcs counts the numeric entries of procRoot, one per process
// (threads are not listed). Names are read in batches without stat-ing
// each entry, so a host with thousands of processes stays cheap.
func countProcs(procRoot string) (int, error) {
	f, err := os.Open(procRoot)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	n := 0
	for {
		names, err := f.Readdirnames(512)
		for _, name := range names {
			if isPID(name) {
				n++
			}
		}
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}

// Throttled is the Raspberry Pi firmware's get_throttled bitmask, decoded.
type Throttled struct {
	Raw                  uint32
	UnderVoltage         bool // bit 0: under-voltage now
	Throttling           bool // bit 2: throttled now
	UnderVoltageOccurred bool // bit 16: under-voltage since boot
	ThrottlingOccurred   bool // bit 18: throttled since boot
}

// parseThrottled parses the hex text of get_throttled ("50005\n", maybe
// with a 0x prefix) and decodes the bits we report.
func parseThrottled(s string) (Throttled, error) {
	t := strings.TrimPrefix(strings.TrimSpace(s), "0x")
	v, err := strconv.ParseUint(t, 16, 32)
	if err != nil {
		return Throttled{}, fmt.Errorf("parse throttled flags %q: %w", t, err)
	}
	raw := uint32(v)
	return Throttled{
		Raw:                  raw,
		UnderVoltage:         raw&(1<<0) != 0,
		Throttling:           raw&(1<<2) != 0,
		UnderVoltageOccurred: raw&(1<<16) != 0,
		ThrottlingOccurred:   raw&(1<<18) != 0,
	}, nil
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// readOptional reads a file that only some hardware has. ok is false and
// err nil when it does not exist.
func readOptional(path string) (s string, ok bool, err error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return "", false, nil
	}
	if err != nil {
		return "", false, err
	}
	return string(b), true, nil
}

// Host reports uptime, process count, CPU clock and Raspberry Pi power
// flags. It reads procfs and sysfs directly: each is one small file, where
// gopsutil would parse all of /proc/stat for the uptime.
type Host struct {
	// ProcRoot is where procfs is mounted; default "/proc".
	ProcRoot string
	// SysRoot is where sysfs is mounted; default "/sys".
	SysRoot string
	// ProcsEvery is how often processes are counted (a directory walk of
	// /proc); default DefaultProcsEvery. Between counts the last is reported.
	ProcsEvery time.Duration
	// Now is the clock for ProcsEvery; default time.Now.
	Now func() time.Time

	mu      sync.Mutex
	procs   int
	procsAt time.Time
}

// DefaultProcsEvery keeps the process count, an expensive call, at a low rate.
const DefaultProcsEvery = 15 * time.Second

// Name implements agent.Collector.
func (*Host) Name() string { return "host" }

// Collect implements agent.Collector. Missing cpufreq or Pi firmware files
// are normal and not errors.
func (h *Host) Collect(_ context.Context, m telemetry.Metrics) error {
	proc := orDefault(h.ProcRoot, "/proc")
	sys := orDefault(h.SysRoot, "/sys")
	var errs []error

	if b, err := os.ReadFile(filepath.Join(proc, "uptime")); err != nil {
		errs = append(errs, fmt.Errorf("read uptime: %w", err))
	} else if up, err := parseUptime(string(b)); err != nil {
		errs = append(errs, fmt.Errorf("read uptime: %w", err))
	} else {
		put(m, "host.uptime_s", up)
	}

	h.mu.Lock()
	now := nowFunc(h.Now)()
	every := h.ProcsEvery
	if every <= 0 {
		every = DefaultProcsEvery
	}
	if h.procsAt.IsZero() || now.Sub(h.procsAt) >= every || now.Before(h.procsAt) {
		if n, err := countProcs(proc); err != nil {
			errs = append(errs, fmt.Errorf("count processes: %w", err))
		} else {
			h.procs, h.procsAt = n, now
		}
	}
	if !h.procsAt.IsZero() {
		put(m, "host.procs", float64(h.procs))
	}
	h.mu.Unlock()

	if s, ok, err := readOptional(filepath.Join(sys, cpuFreqFile)); err != nil {
		errs = append(errs, fmt.Errorf("read cpu frequency: %w", err))
	} else if ok {
		if khz, err := strconv.ParseUint(strings.TrimSpace(s), 10, 64); err != nil {
			errs = append(errs, fmt.Errorf("read cpu frequency: %w", err))
		} else {
			put(m, "cpu.freq_mhz", float64(khz)/1000)
		}
	}

	if s, ok, err := readOptional(filepath.Join(sys, throttledFile)); err != nil {
		errs = append(errs, fmt.Errorf("read throttled flags: %w", err))
	} else if ok {
		if t, err := parseThrottled(s); err != nil {
			errs = append(errs, fmt.Errorf("read throttled flags: %w", err))
		} else {
			put(m, "rpi.throttled", float64(t.Raw))
			put(m, "rpi.under_voltage", b2f(t.UnderVoltage))
			put(m, "rpi.throttling", b2f(t.Throttling))
			put(m, "rpi.under_voltage_occurred", b2f(t.UnderVoltageOccurred))
			put(m, "rpi.throttling_occurred", b2f(t.ThrottlingOccurred))
		}
	}
	return errors.Join(errs...)
}
