package collector

import (
	"context"
	"fmt"
	"sort"
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
	stats, err := disk.IOCountersWithContext(ctx)
	now := nowFunc(d.Now)()
	if err != nil {
		// gopsutil returns the devices parsed before a bad line; they are
		// still good, but the rates would cover only part of the disks.
		err = fmt.Errorf("read disk io counters: %w", err)
		if len(stats) == 0 {
			return err
		}
	}
	d.update(now, stats, m)
	return err
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
