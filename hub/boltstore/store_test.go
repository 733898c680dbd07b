package boltstore_test

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fleetwatch/fleetwatch/agent/telemetry"
	"github.com/fleetwatch/fleetwatch/hub"
	"github.com/fleetwatch/fleetwatch/hub/boltstore"
)

const (
	t0        = int64(1_764_368_400_000)
	testLock  = 50 * time.Millisecond
	cpuMetric = "cpu.percent"
	memMetric = "mem.used_bytes"
)

// MustOpenStore opens a store in a fresh temporary directory. On cleanup it
// closes the store, opens the file again and runs bbolt's consistency check,
// so every test also proves it leaves a sound, unlocked file behind.
func MustOpenStore(tb testing.TB) *boltstore.Store {
	tb.Helper()
	return mustOpenAt(tb, filepath.Join(tb.TempDir(), "data", "fleetwatch.db"))
}

// testOptions runs the store on a clock just after the test data (t0), so
// retention keeps it.
func testOptions() boltstore.Options {
	return boltstore.Options{LockTimeout: testLock, Now: func() time.Time { return time.UnixMilli(t0 + 3_600_000) }}
}

func mustOpenAt(tb testing.TB, path string) *boltstore.Store {
	tb.Helper()
	return mustOpenWith(tb, path, testOptions())
}

func mustOpenWith(tb testing.TB, path string, o boltstore.Options) *boltstore.Store {
	tb.Helper()
	s, err := boltstore.Open(path, o)
	if err != nil {
		tb.Fatalf("Open(%q): %v", path, err)
	}
	tb.Cleanup(func() {
		if err := s.Close(); err != nil {
			tb.Errorf("Close: %v", err)
		}
		again, err := boltstore.Open(path, o)
		if err != nil {
			tb.Errorf("reopen for check: %v", err)
			return
		}
		if err := again.Check(); err != nil {
			tb.Errorf("Check: %v", err)
		}
		if err := again.Close(); err != nil {
			tb.Errorf("Close after check: %v", err)
		}
	})
	return s
}

// envelope returns a validated envelope of device and boot holding seqs,
// each stamped t0+seq seconds with cpu.percent=seq and mem.used_bytes=seq*1000.
// first is the envelope's "first"; 0 leaves it out.
func envelope(tb testing.TB, device, boot string, first uint64, seqs ...uint64) *telemetry.Envelope {
	tb.Helper()
	e := &telemetry.Envelope{V: telemetry.Version, Device: device, Boot: boot}
	if first > 0 {
		e.First = &first
	}
	for _, s := range seqs {
		e.Readings = append(e.Readings, telemetry.Reading{
			Seq: s, TS: tsOf(s),
			Metrics: telemetry.Metrics{cpuMetric: float64(s), memMetric: float64(s * 1000)},
		})
	}
	if err := e.Validate(device); err != nil {
		tb.Fatalf("test envelope is invalid: %v", err)
	}
	return e
}

func tsOf(seq uint64) int64 { return t0 + int64(seq)*1000 }

func mustCommit(tb testing.TB, s *boltstore.Store, b *hub.Batch) hub.CommitResult {
	tb.Helper()
	res, err := s.Commit(b)
	if err != nil {
		tb.Fatalf("Commit: %v", err)
	}
	return res
}

func commitEnvs(tb testing.TB, s *boltstore.Store, envs ...*telemetry.Envelope) hub.CommitResult {
	tb.Helper()
	return mustCommit(tb, s, &hub.Batch{Envelopes: envs})
}

func ackOf(device, boot string, seq uint64) hub.DeviceAck {
	return hub.DeviceAck{Device: device, Ack: telemetry.Ack{V: telemetry.Version, Boot: boot, Seq: seq}}
}

func checkResult(tb testing.TB, got, want hub.CommitResult) {
	tb.Helper()
	if got.Stored != want.Stored || got.Duplicates != want.Duplicates || got.Gaps != want.Gaps || !slices.Equal(got.Acks, want.Acks) {
		tb.Errorf("CommitResult = %+v, want %+v", got, want)
	}
}

// mustHistory returns the raw points of one series, and whether the store
// answered with buckets instead because the range holds more than limit.
func mustHistory(tb testing.TB, s *boltstore.Store, device, metric string, from, to int64, limit int) ([]hub.Point, bool) {
	tb.Helper()
	got := mustSeries(tb, s, hub.HistoryQuery{Device: device, Metrics: []string{metric}, From: from, To: to, Points: limit})
	if got.Step > 0 {
		return nil, true
	}
	return got.Points, false
}

func mustSeries(tb testing.TB, s *boltstore.Store, q hub.HistoryQuery) hub.Series {
	tb.Helper()
	got, err := s.History(q)
	if err != nil {
		tb.Fatalf("History(%+v): %v", q, err)
	}
	if len(got) != len(q.Metrics) {
		tb.Fatalf("History(%+v) returned %d series, want %d", q, len(got), len(q.Metrics))
	}
	return got[0]
}

// points returns the cpu.percent points of seqs.
func points(seqs ...uint64) []hub.Point {
	var pts []hub.Point
	for _, s := range seqs {
		pts = append(pts, hub.Point{TS: tsOf(s), Value: float64(s)})
	}
	return pts
}

func TestOpen(t *testing.T) {
	t.Run("creates missing directories", func(t *testing.T) {
		s := MustOpenStore(t)
		if got, want := filepath.Base(s.Path()), "fleetwatch.db"; got != want {
			t.Errorf("Path() base = %q, want %q", got, want)
		}
	})
	t.Run("second open fails fast with ErrLocked", func(t *testing.T) {
		s := MustOpenStore(t)
		start := time.Now()
		s2, err := boltstore.Open(s.Path(), testOptions())
		if err == nil {
			s2.Close()
			t.Fatal("second Open on a held file succeeded, want ErrLocked")
		}
		if !errors.Is(err, boltstore.ErrLocked) {
			t.Errorf("second Open error = %v, want errors.Is ErrLocked", err)
		}
		if got, limit := time.Since(start), 2*time.Second; got > limit {
			t.Errorf("second Open took %v, want well under %v", got, limit)
		}
	})
	t.Run("unusable path", func(t *testing.T) {
		dir := t.TempDir()
		if _, err := boltstore.Open(dir, testOptions()); err == nil { // a directory, not a file
			t.Fatal("Open(directory) succeeded, want an error")
		} else if errors.Is(err, boltstore.ErrLocked) {
			t.Errorf("Open(directory) = %v, want an error other than ErrLocked", err)
		}
	})
}

func TestStore_History(t *testing.T) {
	s := MustOpenStore(t)
	// Readings arrive newest first: history must still come out oldest first.
	res := commitEnvs(t, s, envelope(t, "pi-a", "b1", 0, 5, 4, 3, 2, 1))
	checkResult(t, res, hub.CommitResult{Stored: 5, Acks: []hub.DeviceAck{ackOf("pi-a", "b1", 5)}})
	commitEnvs(t, s, envelope(t, "pi-b", "b1", 0, 1, 2, 3))

	tests := []struct {
		name     string
		device   string
		metric   string
		from, to int64
		limit    int
		want     []hub.Point
		wantMore bool
	}{
		{"all", "pi-a", cpuMetric, 0, tsOf(100), 100, points(1, 2, 3, 4, 5), false},
		{"inclusive window", "pi-a", cpuMetric, tsOf(2), tsOf(4), 100, points(2, 3, 4), false},
		{"window between samples", "pi-a", cpuMetric, tsOf(2) + 1, tsOf(3) - 1, 100, nil, false},
		{"negative from", "pi-a", cpuMetric, -5, tsOf(1), 100, points(1), false},
		{"to before from", "pi-a", cpuMetric, tsOf(4), tsOf(2), 100, nil, false},
		{"more than limit gives buckets", "pi-a", cpuMetric, 0, tsOf(100), 2, nil, true},
		{"limit exactly fits", "pi-a", cpuMetric, 0, tsOf(100), 5, points(1, 2, 3, 4, 5), false},
		{"limit within window", "pi-a", cpuMetric, tsOf(2), tsOf(4), 2, nil, true},
		{"window exactly fits", "pi-a", cpuMetric, tsOf(2), tsOf(4), 3, points(2, 3, 4), false},
		{"other metric", "pi-a", memMetric, tsOf(5), tsOf(5), 10, []hub.Point{{TS: tsOf(5), Value: 5000}}, false},
		{"other device", "pi-b", cpuMetric, 0, tsOf(100), 100, points(1, 2, 3), false},
		{"unknown metric", "pi-a", "no.such", 0, tsOf(100), 100, nil, false},
		{"unknown device", "pi-zz", cpuMetric, 0, tsOf(100), 100, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, more := mustHistory(t, s, tt.device, tt.metric, tt.from, tt.to, tt.limit)
			if !slices.Equal(got, tt.want) || more != tt.wantMore {
				t.Errorf("History(%s, %s, %d, %d, %d) = %v, %v; want %v, %v",
					tt.device, tt.metric, tt.from, tt.to, tt.limit, got, more, tt.want, tt.wantMore)
			}
		})
	}
}

func TestStore_CommitDuplicates(t *testing.T) {
	t.Run("redelivery in a later commit", func(t *testing.T) {
		s := MustOpenStore(t)
		commitEnvs(t, s, envelope(t, "pi-a", "b1", 0, 1, 2, 3))
		// The redelivered seqs 2 and 3 carry other values: if they were
		// stored again they would overwrite the originals.
		again := envelope(t, "pi-a", "b1", 0, 2, 3, 4)
		again.Readings[0].Metrics[cpuMetric] = -2
		again.Readings[1].Metrics[cpuMetric] = -3
		res := commitEnvs(t, s, again)
		checkResult(t, res, hub.CommitResult{Stored: 1, Duplicates: 2, Acks: []hub.DeviceAck{ackOf("pi-a", "b1", 4)}})
		got, _ := mustHistory(t, s, "pi-a", cpuMetric, 0, tsOf(100), 100)
		if want := points(1, 2, 3, 4); !slices.Equal(got, want) {
			t.Errorf("history = %v, want %v", got, want)
		}
	})
	t.Run("redelivery within one batch", func(t *testing.T) {
		s := MustOpenStore(t)
		res := commitEnvs(t, s, envelope(t, "pi-a", "b1", 0, 1, 2), envelope(t, "pi-a", "b1", 0, 1, 2))
		checkResult(t, res, hub.CommitResult{Stored: 2, Duplicates: 2, Acks: []hub.DeviceAck{ackOf("pi-a", "b1", 2)}})
	})
	t.Run("same seq in another boot is new", func(t *testing.T) {
		s := MustOpenStore(t)
		commitEnvs(t, s, envelope(t, "pi-a", "b1", 0, 1, 2))
		b2 := envelope(t, "pi-a", "b2", 0, 1)
		b2.Readings[0].TS = tsOf(50)
		res := commitEnvs(t, s, b2)
		checkResult(t, res, hub.CommitResult{Stored: 1, Acks: []hub.DeviceAck{ackOf("pi-a", "b2", 1)}})
	})
	t.Run("same seq on another device is new", func(t *testing.T) {
		s := MustOpenStore(t)
		res := commitEnvs(t, s, envelope(t, "pi-a", "b1", 0, 1), envelope(t, "pi-b", "b1", 0, 1))
		checkResult(t, res, hub.CommitResult{Stored: 2, Acks: []hub.DeviceAck{ackOf("pi-a", "b1", 1), ackOf("pi-b", "b1", 1)}})
	})
}

func TestStore_CommitAcks(t *testing.T) {
	type step struct {
		first uint64
		seqs  []uint64
		want  hub.CommitResult
	}
	const dev, boot = "pi-a", "b1"
	acks := func(seq uint64) []hub.DeviceAck { return []hub.DeviceAck{ackOf(dev, boot, seq)} }
	tests := []struct {
		name  string
		steps []step
	}{
		{"in order", []step{
			{0, []uint64{1, 2}, hub.CommitResult{Stored: 2, Acks: acks(2)}},
			{0, []uint64{3}, hub.CommitResult{Stored: 1, Acks: acks(3)}},
		}},
		{"ack stays below a hole until it is filled", []step{
			{0, []uint64{1, 2}, hub.CommitResult{Stored: 2, Acks: acks(2)}},
			{0, []uint64{4, 5}, hub.CommitResult{Stored: 2, Acks: acks(2)}},
			{0, []uint64{7}, hub.CommitResult{Stored: 1, Acks: acks(2)}},
			{0, []uint64{3}, hub.CommitResult{Stored: 1, Acks: acks(5)}},
			{0, []uint64{6}, hub.CommitResult{Stored: 1, Acks: acks(7)}},
		}},
		{"nothing acked while seq 1 is missing", []step{
			{0, []uint64{2, 3}, hub.CommitResult{Stored: 2}},
			{0, []uint64{1}, hub.CommitResult{Stored: 1, Acks: acks(3)}},
		}},
		{"first settles the start of a boot", []step{
			{40, []uint64{41, 40}, hub.CommitResult{Stored: 2, Gaps: 39, Acks: acks(41)}},
		}},
		{"first settles a hole and the ack jumps", []step{
			{0, []uint64{1, 3, 6}, hub.CommitResult{Stored: 3, Acks: acks(1)}},
			{5, []uint64{5}, hub.CommitResult{Stored: 1, Gaps: 2, Acks: acks(6)}},
		}},
		{"first below the watermark changes nothing", []step{
			{0, []uint64{1, 2, 3}, hub.CommitResult{Stored: 3, Acks: acks(3)}},
			{2, []uint64{2, 4}, hub.CommitResult{Stored: 1, Duplicates: 1, Acks: acks(4)}},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := MustOpenStore(t)
			for i, st := range tt.steps {
				res := commitEnvs(t, s, envelope(t, dev, boot, st.first, st.seqs...))
				if res.Stored != st.want.Stored || res.Duplicates != st.want.Duplicates || res.Gaps != st.want.Gaps || !slices.Equal(res.Acks, st.want.Acks) {
					t.Errorf("step %d (first=%d seqs=%v): got %+v, want %+v", i, st.first, st.seqs, res, st.want)
				}
			}
		})
	}
}

func TestStore_CommitSimple(t *testing.T) {
	s := MustOpenStore(t)
	now := time.UnixMilli(t0)
	env, err := telemetry.DecodeTelemetry("sensor-1", []byte(`{"temp.c": 21.5, "humidity": 40}`), now)
	if err != nil {
		t.Fatalf("DecodeTelemetry: %v", err)
	}
	if !env.Simple {
		t.Fatalf("decoded envelope is not the simple form: %+v", env)
	}
	res := commitEnvs(t, s, &env)
	checkResult(t, res, hub.CommitResult{Stored: 1}) // no seq: no ack
	got, _ := mustHistory(t, s, "sensor-1", "temp.c", 0, t0, 10)
	if want := []hub.Point{{TS: t0, Value: 21.5}}; !slices.Equal(got, want) {
		t.Errorf("history = %v, want %v", got, want)
	}
}

func TestStore_Devices(t *testing.T) {
	s := MustOpenStore(t)
	devs, err := s.Devices()
	if err != nil || len(devs) != 0 {
		t.Fatalf("Devices() on a new store = %v, %v; want none", devs, err)
	}
	a := hub.DeviceRecord{
		ID:     "pi-a",
		Status: telemetry.Status{V: 1, State: telemetry.StateOnline, Boot: "b1", Model: "Raspberry Pi 4", IntervalMS: 10_000},
		Tags:   map[string]string{"site": "home"}, LastSeen: tsOf(3), Boot: "b1", Seq: 3,
		Metrics: telemetry.Metrics{cpuMetric: 3}, OnlineAt: t0,
	}
	b := hub.DeviceRecord{ID: "pi-b", Status: telemetry.Offline(telemetry.ReasonLost)}
	mustCommit(t, s, &hub.Batch{Envelopes: []*telemetry.Envelope{envelope(t, "pi-a", "b1", 0, 1, 2, 3)}, Devices: []hub.DeviceRecord{a, b}})
	a2 := a
	a2.Seq, a2.LastSeen, a2.Metrics = 4, tsOf(4), telemetry.Metrics{cpuMetric: 4}
	mustCommit(t, s, &hub.Batch{Devices: []hub.DeviceRecord{a2}})

	devs, err = s.Devices()
	if err != nil {
		t.Fatalf("Devices(): %v", err)
	}
	if got, want := len(devs), 2; got != want {
		t.Fatalf("Devices() returned %d records %+v, want %d", got, devs, want)
	}
	slices.SortFunc(devs, func(x, y hub.DeviceRecord) int { return strings.Compare(x.ID, y.ID) })
	checkRecord(t, devs[0], a2)
	checkRecord(t, devs[1], b)
}

func checkRecord(tb testing.TB, got, want hub.DeviceRecord) {
	tb.Helper()
	if fmt.Sprintf("%+v", got) != fmt.Sprintf("%+v", want) {
		tb.Errorf("record = %+v, want %+v", got, want)
	}
}

func TestStore_Reopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "fleetwatch.db")
	s := mustOpenAt(t, path)
	rec := hub.DeviceRecord{ID: "pi-a", LastSeen: tsOf(4), Boot: "b1", Seq: 4, Tags: map[string]string{"site": "home"}}
	mustCommit(t, s, &hub.Batch{Envelopes: []*telemetry.Envelope{envelope(t, "pi-a", "b1", 0, 1, 2, 4)}, Devices: []hub.DeviceRecord{rec}})
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	s = mustOpenAt(t, path)
	devs, err := s.Devices()
	if err != nil {
		t.Fatalf("Devices after reopen: %v", err)
	}
	if len(devs) != 1 {
		t.Fatalf("Devices after reopen = %+v, want one record", devs)
	}
	checkRecord(t, devs[0], rec)

	// The watermark survived: 2 and 4 are duplicates, 3 fills the hole.
	res := commitEnvs(t, s, envelope(t, "pi-a", "b1", 0, 2))
	checkResult(t, res, hub.CommitResult{Duplicates: 1, Acks: []hub.DeviceAck{ackOf("pi-a", "b1", 2)}})
	res = commitEnvs(t, s, envelope(t, "pi-a", "b1", 0, 4, 3))
	checkResult(t, res, hub.CommitResult{Stored: 1, Duplicates: 1, Acks: []hub.DeviceAck{ackOf("pi-a", "b1", 4)}})
	got, _ := mustHistory(t, s, "pi-a", cpuMetric, 0, tsOf(100), 100)
	if want := points(1, 2, 3, 4); !slices.Equal(got, want) {
		t.Errorf("history after reopen = %v, want %v", got, want)
	}
}

// BenchmarkStore_Commit commits envelopes of 1000 readings × 30 metrics,
// the largest an agent sends, one envelope per commit.
func BenchmarkStore_Commit(b *testing.B) {
	const readings, metrics = 1000, 30
	s := MustOpenStore(b)
	names := make([]string, metrics)
	for i := range names {
		names[i] = fmt.Sprintf("bench.metric_%02d", i)
	}
	var seq uint64
	next := func() *hub.Batch {
		e := &telemetry.Envelope{V: telemetry.Version, Device: "pi-bench", Boot: "b1"}
		for range readings {
			seq++
			m := make(telemetry.Metrics, metrics)
			for j, n := range names {
				m[n] = float64(seq) + float64(j)/100
			}
			e.Readings = append(e.Readings, telemetry.Reading{Seq: seq, TS: tsOf(seq), Metrics: m})
		}
		return &hub.Batch{Envelopes: []*telemetry.Envelope{e}}
	}
	for b.Loop() {
		b.StopTimer()
		batch := next()
		b.StartTimer()
		res, err := s.Commit(batch)
		if err != nil {
			b.Fatal(err)
		}
		if res.Stored != readings {
			b.Fatalf("stored %d readings, want %d", res.Stored, readings)
		}
	}
	b.ReportMetric(float64(b.N*readings*metrics)/b.Elapsed().Seconds(), "samples/s")
}
