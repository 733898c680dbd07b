package main

import (
	"context"
	"math"
	"math/rand/v2"
	"strconv"
	"sync"
	"time"

	"github.com/fleetwatch/fleetwatch/agent/telemetry"
)

// BaseMetrics is how many metrics the synthetic collector always adds; the
// agent adds agent.collector_errors, --metrics adds sim.m0…, --stamp adds
// bench.sent_us.
const BaseMetrics = 8

// StampMetric carries the wall-clock publish time in µs since the epoch
// (exact in a float64 until the year 2255), so receivers can measure
// latency without a side channel.
const StampMetric = "bench.sent_us"

// synthetic produces random walks that look like a small Linux box.
type synthetic struct {
	rng      *rand.Rand
	extra    []string // names of the sim.m<i> metrics, built once
	interval time.Duration
	stamp    bool
	clock    *clock // nil: the agent uses the wall clock

	mu       sync.Mutex
	cpu, mem float64
	temp     float64
	uptime   float64
	disk     float64
	phase    float64
}

func newSynthetic(rng *rand.Rand, extra int, interval time.Duration, stamp bool, clk *clock) *synthetic {
	names := make([]string, extra)
	for i := range names {
		names[i] = "sim.m" + strconv.Itoa(i)
	}
	return &synthetic{
		rng: rng, extra: names, interval: interval, stamp: stamp, clock: clk,
		cpu: 5 + rng.Float64()*30, mem: 20 + rng.Float64()*50, temp: 40 + rng.Float64()*15,
		uptime: float64(rng.IntN(86400 * 30)), disk: 10 + rng.Float64()*70, phase: rng.Float64() * 2 * math.Pi,
	}
}

func (s *synthetic) Name() string { return "synthetic" }

func (s *synthetic) Collect(ctx context.Context, m telemetry.Metrics) error {
	if s.clock != nil {
		// A burst or replay reading: the clock decides its timestamp, and
		// past the count the collector holds the agent until it is stopped.
		s.clock.next(ctx)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	walk := func(v, step, lo, hi float64) float64 {
		return math.Min(hi, math.Max(lo, v+(s.rng.Float64()*2-1)*step))
	}
	s.cpu = walk(s.cpu, 6, 0.5, 100)
	s.mem = walk(s.mem, 1, 5, 98)
	s.temp = walk(s.temp+(s.cpu-30)*0.01, 0.6, 30, 85)
	s.disk = walk(s.disk, 0.01, 1, 99)
	s.uptime += s.interval.Seconds()
	s.phase += 0.05
	round := func(v float64) float64 { return math.Round(v*10) / 10 }
	m["cpu.percent"] = round(s.cpu)
	m["mem.used_percent"] = round(s.mem)
	m["load.1"] = math.Round(s.cpu/25*100) / 100
	m["temp.soc"] = round(s.temp)
	m["host.uptime_s"] = math.Round(s.uptime)
	m["disk.root.used_percent"] = round(s.disk)
	m["net.eth0.rx_bytes_per_s"] = math.Round(20000 + 15000*math.Sin(s.phase) + s.rng.Float64()*5000)
	m["net.eth0.tx_bytes_per_s"] = math.Round(8000 + 6000*math.Cos(s.phase) + s.rng.Float64()*2000)
	for i, name := range s.extra {
		m[name] = round(50 + 40*math.Sin(s.phase+float64(i)))
	}
	if s.stamp {
		// Last, so the stamp is as close to the publish as the agent allows:
		// encode and publish follow this call directly.
		m[StampMetric] = float64(time.Now().UnixMicro())
	}
	return nil
}

// clock numbers the readings of a burst or replay and gives each its
// timestamp: reading k (1-based) of n is stamped base + k·step, so the n
// readings end one step before the run started; the agent reads it through
// Agent.Now. Past n, timestamps follow the wall clock but never repeat a
// millisecond, since the store keys a sample by its timestamp.
type clock struct {
	base time.Time
	step time.Duration
	n    int64

	// window > 0 holds the next reading while pending() readings are
	// unacked: the hub's acks pace the run.
	window  uint64
	pending func() uint64

	mu       sync.Mutex
	k        int64
	cur      time.Time
	full     chan struct{} // closed when the n-th reading is taken
	released bool
}

func newClock(start time.Time, step time.Duration, n int64) *clock {
	return &clock{base: start.Add(-time.Duration(n+1) * step), step: step, n: n, cur: start, full: make(chan struct{})}
}

// release ends the run of n readings: later readings follow the wall clock
// at once.
func (c *clock) release() {
	c.mu.Lock()
	c.released = true
	c.mu.Unlock()
}

// next takes the next reading's timestamp. Past n, until released, it
// holds the agent until ctx is done (the driver stops it there); such
// readings are stamped with the wall clock.
func (c *clock) next(ctx context.Context) {
	for c.window > 0 && c.pending() >= c.window && ctx.Err() == nil {
		select {
		case <-time.After(2 * time.Millisecond):
		case <-ctx.Done():
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if ctx.Err() == nil && c.k < c.n && !c.released {
		c.k++
		c.cur = c.base.Add(time.Duration(c.k) * c.step)
		if c.k == c.n {
			close(c.full)
		}
		return
	}
	if !c.released {
		c.mu.Unlock()
		<-ctx.Done()
		c.mu.Lock()
	}
	c.cur = c.cur.Add(time.Millisecond)
	if now := time.Now(); now.After(c.cur) {
		c.cur = now
	}
}

// Now is the agent's clock: the timestamp of the reading being taken.
func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cur
}

// Range returns the first and last timestamps (Unix ms) of the n readings.
func (c *clock) Range() (from, to int64) {
	return c.base.Add(c.step).UnixMilli(), c.base.Add(time.Duration(c.n) * c.step).UnixMilli()
}
