package boltstore_test

import (
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"

	"github.com/fleetwatch/fleetwatch/agent/telemetry"
	"github.com/fleetwatch/fleetwatch/hub"
	"github.com/fleetwatch/fleetwatch/hub/boltstore"
)

var (
	benchHours   = flag.Float64("pi.hours", 1, "hours of workload BenchmarkStore_PiWorkload stores")
	benchDevices = flag.Int("pi.devices", 100, "devices in BenchmarkStore_PiWorkload")
	benchPart    = flag.Duration("pi.partition", 0, "raw partition length in BenchmarkStore_PiWorkload (0: the default, retention/8)")
	benchCommit  = flag.Duration("pi.commit", 500*time.Millisecond, "simulated commit interval in BenchmarkStore_PiWorkload")
	benchJitter  = flag.Bool("pi.jitter", false, "stamp readings with 0–4 ms of scheduler jitter, as agents before scheduled stamps did")
)

// piDevice generates the 30 metrics a Pi agent reports each second, shaped
// like the real collectors' output (calibrated on the agent's own readings
// on the 2-core VM: 1.1 B/sample over its 44 series): busy CPU percentages
// and page-granular byte gauges, bursty disk and network rates, smooth
// loads, slow percentages, a temperature in the SoC sensor's steps,
// counters and constants; all rounded as the collectors round, and stamped
// on the agent's schedule (-pi.jitter adds 0–4 ms of scheduler jitter).
type piDevice struct {
	rng  *rand.Rand
	vals [30]float64
	seq  uint64
}

// The kinds of the 30 metrics, in order.
const (
	kindBusy  = iota // CPU percentages: a fast random walk, 0.01
	kindBytes        // memory and disk bytes: kB steps
	kindBurst        // active rates: idle or a burst, 0.01
	kindLoad         // load averages: a slow walk, 0.01
	kindSlow         // slowly moving percentages and temperature
	kindCount        // process count, uptime
	kindConst        // totals, idle-interface rates, errors
)

var piKinds = [30]int{
	kindBusy, kindBusy, kindBusy, kindBusy, kindBusy, // cpu.percent, user, system, iowait, core
	kindBytes, kindBytes, kindBytes, kindBytes, // mem.used, mem.available, disk.used, disk.free
	kindBurst, kindBurst, kindBurst, // diskio.write, net.rx, net.tx
	kindLoad, kindLoad, kindLoad,
	kindSlow, kindSlow, kindSlow, kindSlow, // mem.used_percent, disk.used_percent, swap, temp
	kindCount, kindCount,
	kindConst, kindConst, kindConst, kindConst, kindConst, kindConst, kindConst, kindConst, kindConst,
}

var piMetrics = func() (names [30]string) {
	for i := range names {
		names[i] = fmt.Sprintf("pi.metric_%02d", i)
	}
	return names
}()

func newPiDevice(seed uint64) *piDevice {
	d := &piDevice{rng: rand.New(rand.NewPCG(seed, seed*7+1))}
	for i, k := range piKinds {
		switch k {
		case kindBytes:
			d.vals[i] = float64(d.rng.IntN(1<<20)) * 4096
		case kindCount:
			d.vals[i] = float64(d.rng.IntN(1e6))
		default:
			d.vals[i] = float64(d.rng.IntN(50) + 10)
		}
	}
	return d
}

// round rounds as the collectors do: to a decimal, by an exact power of ten
// (v/0.01 would give 12.340000000000002, which no longer compresses).
func round(v, step float64) float64 { return math.Round(v/step) / math.Round(1/step) }

func (d *piDevice) reading(ts int64) telemetry.Reading {
	r := d.rng
	m := make(telemetry.Metrics, 30)
	for i, k := range piKinds {
		v := &d.vals[i]
		switch k {
		case kindBusy:
			*v = math.Min(100, math.Max(0, *v+r.NormFloat64()*2))
			m[piMetrics[i]] = round(*v, 0.01)
		case kindBytes:
			*v += float64((r.IntN(4000) - 2000) * 1024) // /proc/meminfo counts kB
			m[piMetrics[i]] = *v
		case kindBurst:
			if r.IntN(4) == 0 {
				m[piMetrics[i]] = round(math.Abs(r.NormFloat64())*20000, 0.01)
			} else {
				m[piMetrics[i]] = round(math.Abs(r.NormFloat64())*300, 0.01)
			}
		case kindLoad:
			*v = math.Min(8, math.Max(0, *v/10+r.NormFloat64()*0.01)) * 10
			m[piMetrics[i]] = round(*v/10, 0.01)
		case kindSlow:
			*v += r.NormFloat64() * 0.02
			m[piMetrics[i]] = round(*v, 0.1)
		case kindCount:
			*v++
			m[piMetrics[i]] = *v
		case kindConst:
			m[piMetrics[i]] = *v
		}
	}
	d.seq++
	if *benchJitter {
		ts += int64(r.IntN(5))
	}
	return telemetry.Reading{Seq: d.seq, TS: ts, Metrics: m}
}

// BenchmarkStore_PiWorkload stores -pi.hours of 100 devices × 30 metrics at
// 1 s, committed every 500 ms as the hub does, and reports the file's size
// per sample (bbolt's high-water mark, everything included: chunks, WAL,
// rollups, index, free pages) and the commit throughput.
func BenchmarkStore_PiWorkload(b *testing.B) {
	devices := *benchDevices
	for b.Loop() {
		start := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC).UnixMilli()
		secs := int(*benchHours * 3600)
		clk := newClock(start)
		s, err := boltstore.Open(filepath.Join(b.TempDir(), "fleetwatch.db"), boltstore.Options{Now: clk.Now, Partitions: [3]time.Duration{*benchPart}})
		if err != nil {
			b.Fatal(err)
		}
		devs := make([]*piDevice, devices)
		for i := range devs {
			devs[i] = newPiDevice(uint64(i + 1))
		}
		var busy time.Duration
		samples := 0
		every := max(int64(benchCommit.Milliseconds()), 1)
		var batch *hub.Batch
		commit := func(at int64) {
			if batch == nil {
				return
			}
			clk.Set(at)
			t := time.Now()
			if _, err := s.Commit(batch); err != nil {
				b.Fatal(err)
			}
			busy += time.Since(t)
			batch = nil
		}
		// Device i reports at its phase, i*1000/devices ms into each
		// second; a commit holds what arrived in its interval, as the
		// hub's writer does.
		for ms := int64(0); ms < int64(secs)*1000; ms += 1000 / int64(devices) {
			i := int(ms % 1000 * int64(devices) / 1000)
			if batch == nil {
				batch = &hub.Batch{}
			}
			e := &telemetry.Envelope{V: 1, Device: fmt.Sprintf("pi-%03d", i), Boot: "b1"}
			e.Readings = []telemetry.Reading{devs[i].reading(start + ms)}
			batch.Envelopes = append(batch.Envelopes, e)
			samples += 30
			if next := ms + 1000/int64(devices); next/every != ms/every {
				commit(start + ms)
			}
		}
		commit(start + int64(secs)*1000)
		file, live, err := s.Size()
		if err != nil {
			b.Fatal(err)
		}
		if u, err := s.Usage(); err == nil {
			b.Logf("bytes by bucket (allocated, used, keys): %v", u)
		}
		kept, err := s.RawSamples()
		if err != nil {
			b.Fatal(err)
		}
		// Per sample still held: retention has dropped the oldest ones
		// once the run is longer than the raw retention.
		b.ReportMetric(float64(file)/float64(kept), "B/kept-sample")
		b.ReportMetric(float64(kept), "kept-samples")
		b.ReportMetric(float64(file)/float64(samples), "B/sample")
		b.ReportMetric(float64(live)/float64(samples), "live-B/sample")
		b.ReportMetric(float64(samples)/busy.Seconds(), "samples/s")
		b.ReportMetric(float64(samples), "samples")
		if err := s.Close(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkStore_Ingest commits a large fleet's second, 2000 devices × 30
// metrics, per commit: the store's own ceiling, single writer.
func BenchmarkStore_Ingest(b *testing.B) {
	const devices = 2000
	start := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC).UnixMilli()
	clk := newClock(start)
	s, err := boltstore.Open(filepath.Join(b.TempDir(), "fleetwatch.db"), boltstore.Options{Now: clk.Now})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	devs := make([]*piDevice, devices)
	names := make([]string, devices)
	for i := range devs {
		devs[i], names[i] = newPiDevice(uint64(i+1)), fmt.Sprintf("pi-%04d", i)
	}
	sec := 0
	var samples int
	for b.Loop() {
		b.StopTimer()
		batch := &hub.Batch{}
		for i, d := range devs {
			e := &telemetry.Envelope{V: 1, Device: names[i], Boot: "b1", Readings: []telemetry.Reading{d.reading(start + int64(sec)*1000)}}
			batch.Envelopes = append(batch.Envelopes, e)
		}
		clk.Set(start + int64(sec)*1000)
		sec++
		b.StartTimer()
		if _, err := s.Commit(batch); err != nil {
			b.Fatal(err)
		}
		samples += devices * 30
	}
	b.ReportMetric(float64(samples)/b.Elapsed().Seconds(), "samples/s")
}

// BenchmarkStore_Query24h reads one series' last 24 h at 1 s (86,400
// samples in sealed chunks and the open head) as raw samples, and as the
// dashboard's default 1000 buckets.
func BenchmarkStore_Query24h(b *testing.B) {
	start := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC).UnixMilli()
	clk := newClock(start)
	s, err := boltstore.Open(filepath.Join(b.TempDir(), "fleetwatch.db"), boltstore.Options{Now: clk.Now})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	d := newPiDevice(1)
	const day = 86_400
	for sec := 0; sec < day; sec += 60 { // a minute per commit to load quickly
		e := &telemetry.Envelope{V: 1, Device: "pi-000", Boot: "b1"}
		for i := range 60 {
			e.Readings = append(e.Readings, d.reading(start+int64(sec+i)*1000))
		}
		clk.Set(start + int64(sec+60)*1000)
		if _, err := s.Commit(&hub.Batch{Envelopes: []*telemetry.Envelope{e}}); err != nil {
			b.Fatal(err)
		}
	}
	q := hub.HistoryQuery{Device: "pi-000", Metrics: []string{piMetrics[0]}, From: start, To: start + day*1000}
	for _, tc := range []struct {
		name   string
		points int
		check  func(hub.Series) bool
	}{
		{"raw", hub.MaxHistoryPoints, func(s hub.Series) bool { return len(s.Points) == day }},
		{"buckets", hub.DefaultHistoryPoints, func(s hub.Series) bool { return s.Step > 0 && len(s.Buckets) > 0 }},
	} {
		b.Run(tc.name, func(b *testing.B) {
			q.Points = tc.points
			for b.Loop() {
				got, err := s.History(q)
				if err != nil || !tc.check(got[0]) {
					b.Fatalf("History: %d points, %d buckets, %v", len(got[0].Points), len(got[0].Buckets), err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/query")
		})
	}
}
