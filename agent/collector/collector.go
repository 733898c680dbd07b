package collector

import (
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/fleetwatch/fleetwatch/agent"
	"github.com/fleetwatch/fleetwatch/agent/telemetry"
)

// Caps on per-instance series. With them a reading stays under ~300 metrics
// on any host, well inside telemetry.MaxMetrics.
const (
	MaxCores   = 64 // cpu.core.<n>.percent
	MaxMounts  = 16 // disk.<mount>.*
	MaxDevices = 16 // diskio.<dev>.*
	MaxIfaces  = 16 // net.<iface>.*
	MaxSensors = 16 // temp.<sensor>
	MaxZones   = 16 // temp.zone<n>

	// maxKey keeps the longest name (net.<key>.rx_packets_per_s) far below
	// telemetry.MaxMetricName even after a dedupe suffix.
	maxKey = 64
)

// Default returns the standard collectors in a fixed order, so readings and
// error logs look the same on every run.
func Default() []agent.Collector {
	return []agent.Collector{
		&CPU{},
		&Load{},
		&Memory{},
		&Disk{},
		&DiskIO{},
		&Network{},
		&Temperature{},
		&Host{},
	}
}

// put sets m[name] unless v is NaN or ±Inf, which the wire contract
// rejects: one odd sensor must not cost the whole reading. Percentages and
// rates are rounded to 0.01: the 15 digits of 9.547738693467336 are noise,
// cost bytes on the wire, and cost ~8× the storage of a rounded value.
func put(m telemetry.Metrics, name string, v float64) {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return
	}
	if rounded(name) {
		v = math.Round(v*100) / 100
	}
	m[name] = v
}

// rounded reports whether name is a computed ratio or rate.
func rounded(name string) bool {
	switch name {
	case "cpu.user", "cpu.system", "cpu.iowait", "cpu.steal":
		return true
	}
	return strings.HasSuffix(name, "percent") || strings.HasSuffix(name, "_per_s")
}

// Sanitize turns a mount point, device, interface or sensor name into a
// metric name segment: ASCII letters lowercased, every other byte outside
// [a-z0-9_] replaced by '_', surrounding underscores trimmed, cut to 64
// bytes. It may return "" (e.g. for "/"); callers skip or special-case that.
func Sanitize(s string) string {
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '_':
		case c >= 'A' && c <= 'Z':
			c += 'a' - 'A'
		default:
			c = '_'
		}
		b = append(b, c)
	}
	start, end := 0, len(b)
	for start < end && b[start] == '_' {
		start++
	}
	for end > start && b[end-1] == '_' {
		end--
	}
	b = b[start:end]
	if len(b) > maxKey {
		// Trim again so a cut name cannot end in '_'.
		b = b[:maxKey]
		for len(b) > 0 && b[len(b)-1] == '_' {
			b = b[:len(b)-1]
		}
	}
	return string(b)
}

// uniqueKey returns key, or key_2, key_3… when an earlier instance in the
// same reading already took it (e.g. two NVMe drives both named "nvme", or
// "/root" next to "/" → "root"). Instances come in a stable order, so the
// suffixes stay put from one reading to the next.
func uniqueKey(seen map[string]bool, key string) string {
	k := key
	for n := 2; seen[k]; n++ {
		k = key + "_" + strconv.Itoa(n)
	}
	seen[k] = true
	return k
}

// counterRate is the per-second rate of a monotonic counter between two
// samples. ok is false when there is no usable interval or the counter went
// backwards (reset, wrap on a 32-bit counter, device re-created): a skipped
// point is better than a huge bogus spike.
func counterRate(prev, cur uint64, elapsed time.Duration) (rate float64, ok bool) {
	if elapsed <= 0 || cur < prev {
		return 0, false
	}
	return float64(cur-prev) / elapsed.Seconds(), true
}

// percent is 100·part/total, 0 when total is 0 (no swap, empty fs).
func percent(part, total float64) float64 {
	if total <= 0 {
		return 0
	}
	return 100 * part / total
}

// nowFunc returns f, or time.Now when f is nil, so zero values work.
func nowFunc(f func() time.Time) func() time.Time {
	if f != nil {
		return f
	}
	return time.Now
}

// orDefault returns s, or def when s is empty.
func orDefault(s, def string) string {
	if s != "" {
		return s
	}
	return def
}
