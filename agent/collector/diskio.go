package collector

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/shirou/gopsutil/v3/disk"

	"github.com/fleetwatch/fleetwatch/agent/telemetry"
)

// skipBlockDev reports whether a block device is a loop or RAM disk, which
// only mirror other I/O (snaps, initramfs) and would crowd out real disks.
func skipBlockDev(name string) bool {
	return strings.HasPrefix(name, "loop") || strings.HasPrefix(name, "ram")
}

// ioSample is what DiskIO keeps of a device between collects.
type ioSample struct {
	read, write uint64 // bytes
}

// DiskIO reports read and write throughput per block device, as rates
// between two collects. The first Collect only takes a sample.
type DiskIO struct {
	// Now is the clock for rates; default time.Now.
	Now func() time.Time
	// ProcRoot is where procfs is mounted; default "/proc".
	ProcRoot string

	mu     sync.Mutex
	prev   map[string]ioSample // by device name
	prevAt time.Time
}

// Name implements agent.Collector.
func (*DiskIO) Name() string { return "diskio" }

// Collect implements agent.Collector.
func (d *DiskIO) Collect(ctx context.Context, m telemetry.Metrics) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	// /proc/diskstats directly: gopsutil's IOCounters also looks up udev
	// serial numbers and labels for every device on every call.
	b, err := os.ReadFile(filepath.Join(orDefault(d.ProcRoot, "/proc"), "diskstats"))
	now := nowFunc(d.Now)()
	if err != nil {
		return fmt.Errorf("read disk io counters: %w", err)
	}
	stats, err := parseDiskstats(string(b))
	if err != nil {
		// The devices parsed before a bad line are still good, but the
		// rates would cover only part of the disks.
		err = fmt.Errorf("read disk io counters: %w", err)
		if len(stats) == 0 {
			return err
		}
	}
	d.update(now, stats, m)
	return err
}

// parseDiskstats reads /proc/diskstats: fields 3, 6 and 10 are the device
// name and the sectors read and written, in 512-byte units whatever the
// device's block size.
func parseDiskstats(s string) (map[string]disk.IOCountersStat, error) {
	out := make(map[string]disk.IOCountersStat)
	for _, line := range strings.Split(s, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if len(f) < 14 {
			return out, fmt.Errorf("diskstats line %q: %d fields, want at least 14", line, len(f))
		}
		rd, err1 := strconv.ParseUint(f[5], 10, 64)
		wr, err2 := strconv.ParseUint(f[9], 10, 64)
		if err1 != nil || err2 != nil {
			return out, fmt.Errorf("diskstats line %q: bad sector counts", line)
		}
		out[f[2]] = disk.IOCountersStat{Name: f[2], ReadBytes: rd * 512, WriteBytes: wr * 512}
	}
	return out, nil
}

// update adds rates against the previous sample and keeps this one. Devices
// are taken in name order, so the cap keeps the same ones every time.
// The caller holds d.mu.
func (d *DiskIO) update(now time.Time, stats map[string]disk.IOCountersStat, m telemetry.Metrics) {
	names := make([]string, 0, len(stats))
	for name := range stats {
		if !skipBlockDev(name) {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	if len(names) > MaxDevices {
		names = names[:MaxDevices]
	}
	elapsed := now.Sub(d.prevAt)
	cur := make(map[string]ioSample, len(names))
	keys := make(map[string]bool, len(names))
	for _, name := range names {
		key := Sanitize(name)
		if key == "" {
			continue
		}
		key = uniqueKey(keys, key)
		s := ioSample{read: stats[name].ReadBytes, write: stats[name].WriteBytes}
		cur[name] = s
		p, ok := d.prev[name]
		if !ok || d.prevAt.IsZero() {
			continue
		}
		if r, ok := counterRate(p.read, s.read, elapsed); ok {
			put(m, "diskio."+key+".read_bytes_per_s", r)
		}
		if r, ok := counterRate(p.write, s.write, elapsed); ok {
			put(m, "diskio."+key+".write_bytes_per_s", r)
		}
	}
	d.prev, d.prevAt = cur, now
}
