package telemetry_test

import (
	"math/rand/v2"
	"testing"

	"github.com/fleetwatch/fleetwatch/agent/telemetry"
)

// realisticNames are 30 metrics a Raspberry Pi agent reports each interval.
var realisticNames = []string{
	"agent.collector_errors",
	"cpu.percent", "cpu.user", "cpu.system", "cpu.iowait", "cpu.steal", "cpu.freq_mhz",
	"cpu.core.0.percent", "cpu.core.1.percent", "cpu.core.2.percent", "cpu.core.3.percent",
	"load.1", "load.5", "load.15",
	"mem.total_bytes", "mem.used_bytes", "mem.available_bytes", "mem.used_percent",
	"swap.used_percent", "temp.soc", "host.uptime_s", "host.procs", "rpi.throttled",
	"disk.root.used_bytes", "disk.root.free_bytes", "disk.root.used_percent",
	"diskio.mmcblk0.read_bytes_per_s", "diskio.mmcblk0.write_bytes_per_s",
	"net.eth0.rx_bytes_per_s", "net.eth0.tx_bytes_per_s",
}

// realisticMetrics returns the 30 metrics of realisticNames with values as
// collectors produce them: percentages and rates at full float precision,
// byte counts as large integers. seed varies the values.
func realisticMetrics(seed int) telemetry.Metrics {
	r := rand.New(rand.NewPCG(uint64(seed), 7))
	m := make(telemetry.Metrics, len(realisticNames))
	for i, name := range realisticNames {
		switch {
		case i == 0:
			m[name] = 0
		case i%3 == 0:
			m[name] = float64(r.Int64N(8 << 30)) // bytes, counts
		default:
			m[name] = r.Float64() * 100 // 12.345678901234567
		}
	}
	return m
}

func benchEnvelope(readings int) telemetry.Envelope {
	e := telemetry.Envelope{V: telemetry.Version, Device: testDevice, Boot: testBoot, Tags: map[string]string{"site": "home"}}
	for i := range readings {
		e.Readings = append(e.Readings, telemetry.Reading{Seq: uint64(1000 + i), TS: testTS + int64(i)*5000, Metrics: realisticMetrics(i)})
	}
	return e
}

var benchSizes = []struct {
	name     string
	readings int
}{
	{"Single30Metrics", 1},
	{"Batch100", 100},
}

func BenchmarkDecodeTelemetry(b *testing.B) {
	for _, bs := range benchSizes {
		b.Run(bs.name, func(b *testing.B) {
			e := benchEnvelope(bs.readings)
			payload, err := e.Encode()
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(len(payload)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := telemetry.DecodeTelemetry(testDevice, payload, testNow); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*bs.readings)/b.Elapsed().Seconds(), "readings/s")
		})
	}
}

func BenchmarkEnvelope_Encode(b *testing.B) {
	for _, bs := range benchSizes {
		b.Run(bs.name, func(b *testing.B) {
			e := benchEnvelope(bs.readings)
			payload, err := e.Encode()
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(len(payload)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := e.Encode(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*bs.readings)/b.Elapsed().Seconds(), "readings/s")
		})
	}
}
