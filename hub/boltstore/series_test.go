package boltstore_test

import (
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fleetwatch/fleetwatch/agent/telemetry"
	"github.com/fleetwatch/fleetwatch/hub"
	"github.com/fleetwatch/fleetwatch/hub/boltstore"
)

// clock is a settable hub clock for retention tests.
type clock struct{ ms atomic.Int64 }

func newClock(ms int64) *clock {
	c := &clock{}
	c.ms.Store(ms)
	return c
}

func (c *clock) Now() time.Time      { return time.UnixMilli(c.ms.Load()) }
func (c *clock) Set(ms int64)        { c.ms.Store(ms) }
func (c *clock) Add(d time.Duration) { c.ms.Add(d.Milliseconds()) }

// walk returns n readings of one device at 1 s from seq first, with a
// random walk rounded to 0.01 in cpu.percent and a counter in net.rx.
func walk(first uint64, n int, start int64, rng *rand.Rand) []telemetry.Reading {
	out := make([]telemetry.Reading, n)
	v := 20.0
	for i := range out {
		v = math.Round((v+rng.NormFloat64())*100) / 100
		seq := first + uint64(i)
		out[i] = telemetry.Reading{Seq: seq, TS: start + int64(i)*1000, Metrics: telemetry.Metrics{
			cpuMetric: v, "net.rx": float64(seq * 1500),
		}}
	}
	return out
}

func env(device, boot string, rs ...telemetry.Reading) *telemetry.Envelope {
	return &telemetry.Envelope{V: telemetry.Version, Device: device, Boot: boot, Readings: rs}
}

// commitEach commits readings in batches of per readings per commit.
func commitEach(tb testing.TB, s *boltstore.Store, device, boot string, rs []telemetry.Reading, per int) {
	tb.Helper()
	for len(rs) > 0 {
		n := min(per, len(rs))
		commitEnvs(tb, s, env(device, boot, rs[:n]...))
		rs = rs[n:]
	}
}

func wantPoints(rs []telemetry.Reading, metric string) []hub.Point {
	out := make([]hub.Point, 0, len(rs))
	for _, r := range rs {
		if v, ok := r.Metrics[metric]; ok {
			out = append(out, hub.Point{TS: r.TS, Value: v})
		}
	}
	slices.SortFunc(out, func(a, b hub.Point) int { return int(a.TS - b.TS) })
	return out
}

func TestStore_Chunks(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	rs := walk(1, 1000, t0, rng)
	path := filepath.Join(t.TempDir(), "fleetwatch.db")
	o := testOptions()
	o.MaxChunkPoints = 64
	s := mustOpenWith(t, path, o)
	commitEach(t, s, "pi-a", "b1", rs, 7)

	check := func(t *testing.T, s *boltstore.Store) {
		t.Helper()
		for _, m := range []string{cpuMetric, "net.rx"} {
			got, more := mustHistory(t, s, "pi-a", m, 0, t0+1e7, 100_000)
			if want := wantPoints(rs, m); more || !slices.Equal(got, want) {
				t.Errorf("%s: got %d points (more=%v), want %d; first diff at %d", m, len(got), more, len(want), firstDiff(got, want))
			}
		}
	}
	t.Run("open", func(t *testing.T) { check(t, s) })
	t.Run("after crash", func(t *testing.T) {
		// A copy taken after the last commit is what a SIGKILL leaves:
		// the open chunks exist only in the WAL.
		crashed := copyFile(t, path)
		c := mustOpenWith(t, crashed, o)
		check(t, c)
	})
	t.Run("after reopen", func(t *testing.T) {
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		s = mustOpenWith(t, path, o)
		check(t, s)
		// And it keeps going: more readings after the reopen.
		more := walk(1001, 200, t0+1_000_000, rng)
		commitEach(t, s, "pi-a", "b1", more, 13)
		rs = append(rs, more...)
		check(t, s)
	})
}

func firstDiff(a, b []hub.Point) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

func copyFile(tb testing.TB, path string) string {
	tb.Helper()
	dst := filepath.Join(tb.TempDir(), "copy.db")
	in, err := os.Open(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		tb.Fatal(err)
	}
	if err := out.Close(); err != nil {
		tb.Fatal(err)
	}
	return dst
}

func TestStore_Backfill(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	rs := walk(1, 900, t0, rng)
	o := testOptions()
	o.MaxChunkPoints = 50
	s := mustOpenWith(t, filepath.Join(t.TempDir(), "fleetwatch.db"), o)

	// Live readings 601..900 arrive first, newest first within each batch
	// as an agent sends them; then the backlog 1..600, oldest first, as a
	// replay after an outage, interleaved with redeliveries.
	live, backlog := rs[600:], rs[:600]
	for i := len(live); i > 0; i -= 20 {
		batch := slices.Clone(live[max(i-20, 0):i])
		slices.Reverse(batch)
		commitEnvs(t, s, env("pi-a", "b1", batch...))
	}
	for i := 0; i < len(backlog); i += 37 {
		res := commitEnvs(t, s, env("pi-a", "b1", backlog[i:min(i+37, len(backlog))]...))
		if i > 0 {
			again := commitEnvs(t, s, env("pi-a", "b1", backlog[i-1]))
			if again.Duplicates != 1 || again.Stored != 0 {
				t.Fatalf("redelivery of seq %d: %+v, want one duplicate", backlog[i-1].Seq, again)
			}
		}
		if want := uint64(min(i+37, 600)); len(res.Acks) != 1 || res.Acks[0].Ack.Seq != max(want, 0) && want < 600 {
			t.Fatalf("after backlog up to %d: acks %+v", want, res.Acks)
		}
	}
	res := commitEnvs(t, s, env("pi-a", "b1", backlog[0]))
	if got, want := res.Acks[0].Ack.Seq, uint64(900); got != want {
		t.Errorf("final ack = %d, want %d", got, want)
	}
	got, _ := mustHistory(t, s, "pi-a", cpuMetric, 0, t0+1e7, 100_000)
	if want := wantPoints(rs, cpuMetric); !slices.Equal(got, want) {
		t.Errorf("history: %d points, want %d; first diff at %d", len(got), len(want), firstDiff(got, want))
	}

	t.Run("a second sample at the same instant is dropped", func(t *testing.T) {
		r := rs[10]
		r.Seq = 10_000
		r.Metrics = telemetry.Metrics{cpuMetric: -1}
		commitEnvs(t, s, env("pi-a", "b2", r))
		got, _ := mustHistory(t, s, "pi-a", cpuMetric, r.TS, r.TS, 10)
		if want := []hub.Point{{TS: r.TS, Value: rs[10].Metrics[cpuMetric]}}; !slices.Equal(got, want) {
			t.Errorf("history at %d = %v, want %v", r.TS, got, want)
		}
	})
}

// bruteBuckets aggregates raw points into aligned buckets of step.
func bruteBuckets(pts []hub.Point, step int64) []hub.Bucket {
	var out []hub.Bucket
	for _, p := range pts {
		ts := p.TS / step * step
		if n := len(out); n > 0 && out[n-1].TS == ts {
			b := &out[n-1]
			b.Avg += p.Value
			b.Count++
			b.Min, b.Max = min(b.Min, p.Value), max(b.Max, p.Value)
			continue
		}
		out = append(out, hub.Bucket{TS: ts, Avg: p.Value, Min: p.Value, Max: p.Value, Count: 1})
	}
	for i := range out {
		out[i].Avg /= float64(out[i].Count)
	}
	return out
}

func checkBuckets(tb testing.TB, got, want []hub.Bucket) {
	tb.Helper()
	if len(got) != len(want) {
		tb.Fatalf("got %d buckets, want %d", len(got), len(want))
	}
	for i := range got {
		g, w := got[i], want[i]
		if g.TS != w.TS || g.Count != w.Count || g.Min != w.Min || g.Max != w.Max || math.Abs(g.Avg-w.Avg) > 1e-4*math.Max(1, math.Abs(w.Avg)) {
			tb.Fatalf("bucket %d = %+v, want %+v", i, g, w)
		}
	}
}

func TestStore_HistoryTiers(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	start := t0 - 6*3_600_000 // six hours at 1 s, ending at t0
	rs := walk(1, 6*3600, start, rng)
	o := testOptions()
	s := mustOpenWith(t, filepath.Join(t.TempDir(), "fleetwatch.db"), o)
	commitEach(t, s, "pi-a", "b1", rs, 60)
	raw := wantPoints(rs, cpuMetric)
	last := raw[len(raw)-1].TS

	tests := []struct {
		name     string
		from, to int64
		points   int
		wantRes  string
		wantStep int64
	}{
		{"raw when it fits", last - 99_000, last, 100, hub.ResolutionRaw, 0},
		{"raw buckets under a minute", last - 3_600_000 + 1, last, 400, hub.ResolutionRaw, 10_000},
		{"minute tier", start, last, 100, hub.Resolution1m, 4 * 60_000},
		{"hour tier", start - 200*3_600_000, last, 100, hub.Resolution1h, 3 * 3_600_000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := mustSeries(t, s, hub.HistoryQuery{Device: "pi-a", Metrics: []string{cpuMetric}, From: tt.from, To: tt.to, Points: tt.points})
			if got.Resolution != tt.wantRes || got.Step != tt.wantStep {
				t.Fatalf("resolution, step = %s, %d; want %s, %d", got.Resolution, got.Step, tt.wantRes, tt.wantStep)
			}
			var in []hub.Point
			for _, p := range raw {
				if p.TS >= tt.from && p.TS <= tt.to {
					in = append(in, p)
				}
			}
			if tt.wantStep == 0 {
				if !slices.Equal(got.Points, in) {
					t.Errorf("raw points differ at %d", firstDiff(got.Points, in))
				}
				return
			}
			if len(got.Buckets) > tt.points {
				t.Errorf("%d buckets, want at most %d", len(got.Buckets), tt.points)
			}
			// Rollups hold whole minutes (hours): compare with raw points
			// from the start of the first bucket.
			var whole []hub.Point
			for _, p := range raw {
				if p.TS >= tt.from/tt.wantStep*tt.wantStep && p.TS <= tt.to {
					whole = append(whole, p)
				}
			}
			if tt.wantRes == hub.ResolutionRaw {
				whole = in
			}
			checkBuckets(t, got.Buckets, bruteBuckets(whole, tt.wantStep))
		})
	}

	t.Run("backfill updates rollups", func(t *testing.T) {
		// A second boot's readings land in an old hour at new instants.
		var extra []telemetry.Reading
		for i := range 30 {
			extra = append(extra, telemetry.Reading{Seq: uint64(i + 1), TS: start + 3_600_000 + int64(i)*1000 + 500, Metrics: telemetry.Metrics{cpuMetric: 1000}})
		}
		commitEnvs(t, s, env("pi-a", "b2", extra...))
		all := wantPoints(append(slices.Clone(rs), extra...), cpuMetric)
		got := mustSeries(t, s, hub.HistoryQuery{Device: "pi-a", Metrics: []string{cpuMetric}, From: start, To: last, Points: 100})
		checkBuckets(t, got.Buckets, bruteBuckets(all, got.Step))
	})
}

func TestStore_HistoryGaps(t *testing.T) {
	s := MustOpenStore(t)
	var rs []telemetry.Reading
	for i := range 100 {
		ts := t0 + int64(i)*1000
		if i >= 50 {
			ts += 60_000 // a minute-long outage after the 50th reading
		}
		rs = append(rs, telemetry.Reading{Seq: uint64(i + 1), TS: ts, Metrics: telemetry.Metrics{cpuMetric: 1}})
	}
	commitEnvs(t, s, env("pi-a", "b1", rs...))
	got := mustSeries(t, s, hub.HistoryQuery{Device: "pi-a", Metrics: []string{cpuMetric}, From: t0, To: t0 + 159_000, Points: 1000, Interval: 1000})
	want := []hub.Gap{{From: t0 + 49_000, To: t0 + 110_000}}
	if !slices.Equal(got.Gaps, want) {
		t.Errorf("raw gaps = %v, want %v", got.Gaps, want)
	}
	got = mustSeries(t, s, hub.HistoryQuery{Device: "pi-a", Metrics: []string{cpuMetric}, From: t0, To: t0 + 159_000, Points: 16, Interval: 1000})
	if len(got.Gaps) != 1 || got.Gaps[0].From > t0+60_000 || got.Gaps[0].To < t0+100_000 {
		t.Errorf("bucket gaps = %v (step %d), want one around the outage", got.Gaps, got.Step)
	}
	got = mustSeries(t, s, hub.HistoryQuery{Device: "pi-a", Metrics: []string{"no.such"}, From: t0, To: t0 + 1000, Points: 10})
	if want := []hub.Gap{{From: t0, To: t0 + 1000}}; len(got.Points) != 0 || !slices.Equal(got.Gaps, want) {
		t.Errorf("unknown metric = %+v, want no points and gap %v", got, want)
	}
}

func TestStore_Completeness(t *testing.T) {
	s := MustOpenStore(t)
	rs := walk(1, 100, t0, rand.New(rand.NewPCG(7, 8)))
	// 1..40 arrive, then 61..100: 41..60 are a gap the hub sees.
	commitEnvs(t, s, env("pi-a", "b1", rs[:40]...))
	commitEnvs(t, s, env("pi-a", "b1", rs[60:]...))
	c, err := s.Completeness("pi-a", t0, t0+1e6)
	if err != nil {
		t.Fatal(err)
	}
	if c.Expected != 100 || c.Stored != 80 || c.Missing != 20 {
		t.Errorf("completeness = %+v, want expected 100, stored 80, missing 20", c)
	}
	if len(c.Gaps) != 1 || c.Gaps[0].FirstSeq != 41 || c.Gaps[0].LastSeq != 60 || c.Gaps[0].Open != 20 || c.Gaps[0].Before != rs[39].TS || c.Gaps[0].After != rs[60].TS {
		t.Fatalf("gaps = %+v, want one open gap 41..60 between %d and %d", c.Gaps, rs[39].TS, rs[60].TS)
	}
	// The agent replays 41..50, then declares 51..60 lost.
	commitEnvs(t, s, env("pi-a", "b1", rs[40:50]...))
	first := uint64(61)
	e := env("pi-a", "b1", rs[60])
	e.First = &first
	commitEnvs(t, s, e)
	c, err = s.Completeness("pi-a", t0, t0+1e6)
	if err != nil {
		t.Fatal(err)
	}
	g := c.Gaps[0]
	if c.Stored != 90 || c.Missing != 10 || g.Filled != 10 || g.Lost != 10 || g.Open != 0 || g.Closed == 0 {
		t.Errorf("after backfill and loss: %+v, gap %+v; want stored 90, filled 10, lost 10, closed", c, g)
	}
}

func TestStore_Retention(t *testing.T) {
	clk := newClock(t0)
	o := boltstore.Options{
		LockTimeout: testLock, Now: clk.Now,
		RawRetention: 10 * time.Minute, MinuteRetention: 40 * time.Minute, HourRetention: 16 * time.Hour,
		MaxChunkPoints: 60,
	}
	s := mustOpenWith(t, filepath.Join(t.TempDir(), "fleetwatch.db"), o)
	rng := rand.New(rand.NewPCG(9, 10))
	var seq uint64
	var sizes []int64
	const devices, perCommit = 50, 30
	for cycle := range 40 { // 40 raw retentions of ten minutes
		for range 600 / perCommit {
			var envs []*telemetry.Envelope
			for d := range devices {
				e := env(fmt.Sprintf("dev-%02d", d), "b1")
				for i := range perCommit {
					ts := clk.Now().UnixMilli() + int64(i)*1000
					e.Readings = append(e.Readings, telemetry.Reading{Seq: seq + uint64(i) + 1, TS: ts, Metrics: telemetry.Metrics{
						cpuMetric: math.Round(rng.Float64()*10000) / 100, "mem.used": float64(rng.IntN(1 << 20)), "disk.used": float64(rng.IntN(1 << 20)),
					}})
				}
				envs = append(envs, e)
			}
			seq += perCommit
			commitEnvs(t, s, envs...)
			clk.Add(perCommit * time.Second)
		}
		file, live, err := s.Size()
		if err != nil {
			t.Fatal(err)
		}
		if cycle >= 10 {
			sizes = append(sizes, file)
		}
		if cycle == 39 {
			st := s.Stats()
			t.Logf("after %d retention cycles: file %d B, live %d B (%.2f×); free pages %d, pending %d", cycle+1, file, live, float64(file)/float64(live), st.FreePageN, st.PendingPageN)
			if ratio := float64(file) / float64(live); ratio > 1.25 {
				t.Errorf("file/live = %.2f, want ≤ 1.25", ratio)
			}
		}
	}
	if growth := float64(sizes[len(sizes)-1]) / float64(sizes[0]); growth > 1.1 {
		t.Errorf("file grew %.2f× over %d steady-state cycles (%v), want it to stop growing", growth, len(sizes), sizes)
	}
	// Raw points older than the retention are gone; rollups remain.
	now := clk.Now().UnixMilli()
	got, _ := mustHistory(t, s, "dev-00", cpuMetric, now-30*60_000, now-20*60_000, 100_000)
	if len(got) != 0 {
		t.Errorf("%d raw points older than the raw retention, want 0", len(got))
	}
	ser := mustSeries(t, s, hub.HistoryQuery{Device: "dev-00", Metrics: []string{cpuMetric}, From: now - 25*60_000, To: now - 20*60_000, Points: 5})
	if ser.Resolution != hub.Resolution1m || len(ser.Buckets) == 0 {
		t.Errorf("old range = %s with %d buckets, want 1m rollups", ser.Resolution, len(ser.Buckets))
	}
	// Readings older than the raw retention are acked but not stored.
	res := commitEnvs(t, s, env("dev-00", "b9", telemetry.Reading{Seq: 1, TS: now - 11*60_000, Metrics: telemetry.Metrics{cpuMetric: 1}}))
	if res.Dropped != 1 || res.Stored != 0 || len(res.Acks) != 1 {
		t.Errorf("expired reading: %+v, want dropped and acked", res)
	}
}

func TestStore_Compact(t *testing.T) {
	clk := newClock(t0)
	o := boltstore.Options{LockTimeout: testLock, Now: clk.Now, MaxChunkPoints: 30,
		Partitions: [3]time.Duration{10 * time.Minute}, MaxHeadAge: time.Minute}
	path := filepath.Join(t.TempDir(), "fleetwatch.db")
	s := mustOpenWith(t, path, o)
	rng := rand.New(rand.NewPCG(11, 12))
	all := map[string][]telemetry.Reading{}
	for sec := 0; sec < 3600; sec += 10 {
		var envs []*telemetry.Envelope
		for d := range 3 {
			dev := fmt.Sprintf("pi-%d", d)
			rs := walk(uint64(sec+1), 10, t0+int64(sec)*1000, rng)
			all[dev] = append(all[dev], rs...)
			envs = append(envs, env(dev, "b1", rs...))
		}
		clk.Set(t0 + int64(sec+10)*1000)
		commitEnvs(t, s, envs...)
	}
	_, before, err := s.Size()
	if err != nil {
		t.Fatal(err)
	}
	// An hour later every partition is closed; each sweep compacts some.
	for range 30 {
		clk.Add(time.Minute)
		commitEnvs(t, s)
	}
	_, after, err := s.Size()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("live bytes before compaction %d, after %d", before, after)
	if after >= before {
		t.Errorf("live bytes %d after compaction, want fewer than %d", after, before)
	}
	for dev, rs := range all {
		got, _ := mustHistory(t, s, dev, cpuMetric, t0, t0+1e7, 100_000)
		if want := wantPoints(rs, cpuMetric); !slices.Equal(got, want) {
			t.Errorf("%s after compaction: %d points, want %d; first diff at %d", dev, len(got), len(want), firstDiff(got, want))
		}
	}
}
