package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/<pid>/stat:
// 100 on every Linux architecture Go supports (sysconf needs cgo).
const clockTicks = 100

// ProcStatus is what /proc/<pid>/status says about memory. RSS counts
// the hub's mmapped bbolt file as it is touched (RssFile); RssAnon is its
// heap, stacks and buffers, what a connection costs.
type ProcStatus struct {
	RSSKB   int64
	AnonKB  int64
	FileKB  int64
	Threads int
}

// parseStatus reads VmRSS and Threads from a /proc/<pid>/status text.
func parseStatus(text string) (ProcStatus, error) {
	var st ProcStatus
	found := false
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		f := strings.Fields(v)
		if len(f) == 0 {
			continue
		}
		switch k {
		case "VmRSS":
			n, err := strconv.ParseInt(f[0], 10, 64)
			if err != nil {
				return st, fmt.Errorf("parse VmRSS %q: %w", v, err)
			}
			st.RSSKB, found = n, true
		case "RssAnon":
			st.AnonKB, _ = strconv.ParseInt(f[0], 10, 64)
		case "RssFile":
			st.FileKB, _ = strconv.ParseInt(f[0], 10, 64)
		case "Threads":
			st.Threads, _ = strconv.Atoi(f[0])
		}
	}
	if !found {
		return st, errors.New("parse status: no VmRSS (a zombie or kernel thread?)")
	}
	return st, nil
}

// parseStatTicks returns utime+stime from a /proc/<pid>/stat line. The
// command name in parentheses may hold spaces and parentheses, so fields
// are counted from the last ')'.
func parseStatTicks(line string) (int64, error) {
	i := strings.LastIndexByte(line, ')')
	if i < 0 {
		return 0, fmt.Errorf("parse stat: no ')' in %q", tail(line, 80))
	}
	f := strings.Fields(line[i+1:])
	// f[0] is field 3 (state); utime and stime are fields 14 and 15.
	if len(f) < 13 {
		return 0, fmt.Errorf("parse stat: %d fields after the name", len(f))
	}
	u, err1 := strconv.ParseInt(f[11], 10, 64)
	s, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("parse stat: %w", err)
	}
	return u + s, nil
}

func readStatus(pid int) (ProcStatus, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return ProcStatus{}, fmt.Errorf("read status of %d: %w", pid, err)
	}
	return parseStatus(string(b))
}

// cpuTime returns the CPU time pid has used so far: the sum of its
// threads' schedstat run times (ns) where the kernel has them, since the
// agent uses a few ms a second and stat's 10 ms ticks are too coarse;
// utime+stime otherwise.
func cpuTime(pid int) (time.Duration, error) {
	if d, err := schedTime(pid); err == nil {
		return d, nil
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("read stat of %d: %w", pid, err)
	}
	t, err := parseStatTicks(string(b))
	if err != nil {
		return 0, err
	}
	return time.Duration(t) * time.Second / clockTicks, nil
}

// schedTime sums the first field of /proc/<pid>/task/*/schedstat. Threads
// that exited are missing from the sum; Go programs keep their threads.
func schedTime(pid int) (time.Duration, error) {
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return 0, err
	}
	var sum int64
	for _, t := range tasks {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/schedstat", pid, t.Name()))
		if err != nil {
			return 0, err
		}
		ns, err := parseSchedstat(string(b))
		if err != nil {
			return 0, err
		}
		sum += ns
	}
	return time.Duration(sum), nil
}

// parseSchedstat returns the run time (ns) from a schedstat line.
func parseSchedstat(line string) (int64, error) {
	f := strings.Fields(line)
	if len(f) < 1 {
		return 0, errors.New("parse schedstat: empty")
	}
	ns, err := strconv.ParseInt(f[0], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("parse schedstat: %w", err)
	}
	return ns, nil
}

// writeBytes reads write_bytes from /proc/<pid>/io: what reached (or will
// reach) the block device on the process's behalf, fsynced or not.
func writeBytes(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/io", pid))
	if err != nil {
		return 0, fmt.Errorf("read io of %d: %w", pid, err)
	}
	return parseIOWrite(string(b))
}

func parseIOWrite(text string) (int64, error) {
	for _, line := range strings.Split(text, "\n") {
		if v, ok := strings.CutPrefix(line, "write_bytes:"); ok {
			return strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		}
	}
	return 0, errors.New("parse io: no write_bytes")
}

func rssKB(pid int) int64 {
	st, err := readStatus(pid)
	if err != nil {
		return 0
	}
	return st.RSSKB
}

func pidAlive(pid int) bool {
	return syscall.Kill(pid, 0) == nil && rssKB(pid) > 0
}

// Usage is a process's CPU and memory over a window.
type Usage struct {
	CPU        time.Duration // used in the window
	Wall       time.Duration
	RSSMeanKB  float64
	RSSMaxKB   int64
	AnonMaxKB  int64 // RssAnon at its highest
	AnonMeanKB float64
	FileMaxKB  int64
	Samples    int
	CPUPercent float64 // of one core
	DiskWrite  int64   // bytes the process caused to be written to storage
}

// Meter samples a process's RSS once a second and its CPU time at both
// ends of the window.
type Meter struct {
	pid   int
	start time.Time
	cpu0  time.Duration
	io0   int64
	stop  chan struct{}
	done  chan struct{}

	mu   sync.Mutex
	sum  int64
	n    int
	max  int64
	anon int64
	file int64
	asum int64
	err  error
}

// StartMeter begins a window for pid.
func StartMeter(pid int) (*Meter, error) {
	cpu0, err := cpuTime(pid)
	if err != nil {
		return nil, err
	}
	io0, _ := writeBytes(pid) // 0 where /proc/<pid>/io is not readable
	m := &Meter{pid: pid, start: time.Now(), cpu0: cpu0, io0: io0, stop: make(chan struct{}), done: make(chan struct{})}
	m.sample()
	go func() {
		defer close(m.done)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-m.stop:
				return
			case <-t.C:
				m.sample()
			}
		}
	}()
	return m, nil
}

func (m *Meter) sample() {
	st, err := readStatus(m.pid)
	m.mu.Lock()
	defer m.mu.Unlock()
	if err != nil {
		m.err = err
		return
	}
	m.sum += st.RSSKB
	m.n++
	m.max = max(m.max, st.RSSKB)
	m.anon = max(m.anon, st.AnonKB)
	m.asum += st.AnonKB
	m.file = max(m.file, st.FileKB)
}

// Stop ends the window.
func (m *Meter) Stop() (Usage, error) {
	close(m.stop)
	<-m.done
	m.sample()
	cpu1, err := cpuTime(m.pid)
	if err != nil {
		return Usage{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.n == 0 {
		return Usage{}, fmt.Errorf("meter %d: no samples: %w", m.pid, m.err)
	}
	u := Usage{CPU: cpu1 - m.cpu0, Wall: time.Since(m.start), RSSMeanKB: float64(m.sum) / float64(m.n), RSSMaxKB: m.max, AnonMaxKB: m.anon, FileMaxKB: m.file, Samples: m.n,
		AnonMeanKB: float64(m.asum) / float64(m.n)}
	u.CPUPercent = 100 * u.CPU.Seconds() / u.Wall.Seconds()
	if io1, err := writeBytes(m.pid); err == nil && m.io0 > 0 {
		u.DiskWrite = io1 - m.io0
	}
	return u, nil
}

// Machine is the host the figures come from.
type Machine struct {
	CPU       string  `json:"cpu"`
	Cores     int     `json:"cores"`
	MemoryGiB float64 `json:"memory_gib"`
	Kernel    string  `json:"kernel"`
	Go        string  `json:"go"`
	Mosquitto string  `json:"mosquitto"`
	Date      string  `json:"date"`
}

func machine(ctx context.Context, mosquittoBin string) Machine {
	m := Machine{Cores: runtime.NumCPU(), Go: runtime.Version(), Date: time.Now().UTC().Format("2006-01-02 15:04 UTC"), CPU: "unknown"}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if f := strings.Fields(line); len(f) >= 2 && f[0] == "MemTotal:" {
				kb, _ := strconv.ParseFloat(f[1], 64)
				m.MemoryGiB = kb / (1 << 20)
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	if out, err := goVersion(ctx); err == nil {
		m.Go = out
	}
	if mosquittoBin != "" {
		m.Mosquitto = mosquittoVersion(mosquittoBin)
	}
	return m
}

// errMemory is the cause of a run the memory guard stopped.
var errMemory = errors.New("memory guard")

// memoryGuard cancels ctx when the machine's available memory falls under
// a tenth of its total: a hub or sim that cannot keep up grows its queues
// without bound, and a benchmark must not take the machine down with it.
func memoryGuard(parent context.Context, log *slog.Logger) (context.Context, func()) {
	ctx, cancel := context.WithCancelCause(parent)
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
			}
			total, avail, err := meminfo()
			if err == nil && avail < total/10 {
				log.Error("memory guard: stopping the run", "available_mb", avail>>10, "total_mb", total>>10)
				cancel(fmt.Errorf("%w: only %d of %d MB available", errMemory, avail>>10, total>>10))
				return
			}
		}
	}()
	return ctx, func() { close(done); cancel(nil) }
}

// meminfo returns MemTotal and MemAvailable in KB.
func meminfo() (total, avail int64, err error) {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0, 0, fmt.Errorf("read meminfo: %w", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		v, _ := strconv.ParseInt(f[1], 10, 64)
		switch f[0] {
		case "MemTotal:":
			total = v
		case "MemAvailable:":
			avail = v
		}
	}
	if total == 0 {
		return 0, 0, errors.New("read meminfo: no MemTotal")
	}
	return total, avail, nil
}
