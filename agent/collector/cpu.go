package collector

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"sync"

	"github.com/fleetwatch/fleetwatch/agent/telemetry"
)

// CPUTimes are the cumulative counters of one /proc/stat "cpu" line in
// USER_HZ ticks. Guest time is left out: the kernel already counts it in
// User and Nice. Only ratios of deltas are used, so the tick length (and
// sysconf(_SC_CLK_TCK)) never matters.
type CPUTimes struct {
	User, Nice, System, Idle, Iowait, Irq, Softirq, Steal uint64
}

// CPUPercents is how one CPU (or all of them) spent an interval, in percent.
// Busy = User + System + Steal; with Idle and Iowait they add up to 100.
type CPUPercents struct {
	Busy   float64
	User   float64 // user + nice (includes guest)
	System float64 // system + irq + softirq
	Iowait float64
	Steal  float64
}

// cpuPercents computes the percentages between two samples of the same CPU.
// A field that went backwards counts as 0 (iowait is known to decrease on
// some kernels, see proc(5)). ok is false when no tick elapsed.
func cpuPercents(prev, cur CPUTimes) (p CPUPercents, ok bool) {
	d := func(a, b uint64) float64 {
		if b < a {
			return 0
		}
		return float64(b - a)
	}
	user := d(prev.User, cur.User) + d(prev.Nice, cur.Nice)
	system := d(prev.System, cur.System) + d(prev.Irq, cur.Irq) + d(prev.Softirq, cur.Softirq)
	idle := d(prev.Idle, cur.Idle)
	iowait := d(prev.Iowait, cur.Iowait)
	steal := d(prev.Steal, cur.Steal)
	total := user + system + idle + iowait + steal
	if total == 0 {
		return CPUPercents{}, false
	}
	return CPUPercents{
		Busy:   percent(user+system+steal, total),
		User:   percent(user, total),
		System: percent(system, total),
		Iowait: percent(iowait, total),
		Steal:  percent(steal, total),
	}, true
}

// coreTimes is one per-core line of /proc/stat.
type coreTimes struct {
	n int
	t CPUTimes
}

// parseProcStat reads the leading "cpu" lines of /proc/stat: the total and
// the cores numbered below MaxCores, appended to cores. It stops at the
// first other line, so the long "intr" line is never read.
func parseProcStat(r *bufio.Reader, cores []coreTimes) (CPUTimes, []coreTimes, error) {
	var total CPUTimes
	found := false
	for {
		line, err := r.ReadSlice('\n')
		if !bytes.HasPrefix(line, []byte("cpu")) {
			break
		}
		if err != nil && err != io.EOF {
			return total, cores, err
		}
		label, t, perr := parseCPULine(line)
		if perr != nil {
			return total, cores, perr
		}
		if label == "" {
			total, found = t, true
		} else if n, aerr := strconv.Atoi(label); aerr == nil && n >= 0 && n < MaxCores {
			cores = append(cores, coreTimes{n: n, t: t})
		}
		if err == io.EOF {
			break
		}
	}
	if !found {
		return total, cores, errors.New("no cpu line in /proc/stat")
	}
	return total, cores, nil
}

// parseCPULine parses "cpu[N] user nice system idle [iowait irq softirq
// steal guest guest_nice]" and returns N ("" for the total line). Old
// kernels print fewer columns; the missing ones stay 0.
func parseCPULine(line []byte) (label string, t CPUTimes, err error) {
	fields := bytes.Fields(line)
	if len(fields) < 5 {
		return "", t, fmt.Errorf("short /proc/stat line %q", bytes.TrimSpace(line))
	}
	dst := []*uint64{&t.User, &t.Nice, &t.System, &t.Idle, &t.Iowait, &t.Irq, &t.Softirq, &t.Steal}
	for i, f := range fields[1:] {
		if i == len(dst) {
			break
		}
		v, ok := parseUint(f)
		if !ok {
			return "", t, fmt.Errorf("bad number %q in /proc/stat line %q", f, bytes.TrimSpace(line))
		}
		*dst[i] = v
	}
	return string(fields[0][len("cpu"):]), t, nil
}

// parseUint parses decimal digits without the string conversion
// strconv.ParseUint would need.
func parseUint(b []byte) (uint64, bool) {
	if len(b) == 0 {
		return 0, false
	}
	var v uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		d := uint64(c - '0')
		if v > (1<<64-1-d)/10 {
			return 0, false
		}
		v = v*10 + d
	}
	return v, true
}

// CPU reports CPU usage since the previous Collect. The first Collect
// reports the average since boot, so a value is there from the start.
//
// It reads /proc/stat itself rather than through gopsutil's cpu package,
// which needs an extra module (tklauser/go-sysconf) only to learn the tick
// length, and that cancels out of every percentage here.
type CPU struct {
	// ProcRoot is where procfs is mounted; default "/proc".
	ProcRoot string

	mu        sync.Mutex
	prev      CPUTimes
	prevCores [MaxCores]CPUTimes
	names     [MaxCores]string // cpu.core.<n>.percent, built once
	cores     []coreTimes      // scratch, reused between collects
	br        *bufio.Reader
}

// Name implements agent.Collector.
func (*CPU) Name() string { return "cpu" }

// Collect implements agent.Collector.
func (c *CPU) Collect(_ context.Context, m telemetry.Metrics) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	total, cores, err := c.read()
	if err != nil {
		return fmt.Errorf("read cpu times: %w", err)
	}
	c.update(total, cores, m)
	return nil
}

func (c *CPU) read() (CPUTimes, []coreTimes, error) {
	f, err := os.Open(filepath.Join(orDefault(c.ProcRoot, "/proc"), "stat"))
	if err != nil {
		return CPUTimes{}, nil, err
	}
	defer f.Close()
	if c.br == nil {
		c.br = bufio.NewReaderSize(f, 4096)
	} else {
		c.br.Reset(f)
	}
	total, cores, err := parseProcStat(c.br, c.cores[:0])
	c.cores = cores
	c.br.Reset(nil) // drop the closed file
	return total, cores, err
}

// update turns a sample into metrics against the previous one and keeps it.
// The caller holds c.mu.
func (c *CPU) update(total CPUTimes, cores []coreTimes, m telemetry.Metrics) {
	if p, ok := cpuPercents(c.prev, total); ok {
		put(m, "cpu.percent", p.Busy)
		put(m, "cpu.user", p.User)
		put(m, "cpu.system", p.System)
		put(m, "cpu.iowait", p.Iowait)
		put(m, "cpu.steal", p.Steal)
	}
	c.prev = total
	for _, ct := range cores {
		if p, ok := cpuPercents(c.prevCores[ct.n], ct.t); ok {
			if c.names[ct.n] == "" {
				c.names[ct.n] = "cpu.core." + strconv.Itoa(ct.n) + ".percent"
			}
			put(m, c.names[ct.n], p.Busy)
		}
		c.prevCores[ct.n] = ct.t
	}
}
