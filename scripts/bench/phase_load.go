package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/fleetwatch/fleetwatch/agent/telemetry"
)

// window is one measuring window's readings of the hub and baselines.
type window struct {
	t0, t1         time.Time
	m0, m1         map[string]float64
	plain0, plain1 uint64 // readings the plain subscriber received
	msgs0, msgs1   uint64
	hub, broker    Usage
	self, sim      Usage // the load generators, sharing the cores
}

func (w *window) secs() float64             { return w.t1.Sub(w.t0).Seconds() }
func (w *window) delta(name string) float64 { return w.m1[name] - w.m0[name] }

// phaseLoad runs the live fleet: ingest, latency and durability in one
// window, then fan-out, then stops the fleet to count loss, duplicates
// and storage.
func (b *Bench) phaseLoad(ctx context.Context) error {
	s := b.Sizes
	base, err := scrape(ctx, b.hub.URL)
	if err != nil {
		return err
	}
	total0, err := fleetTotal(ctx, b.hub.URL)
	if err != nil {
		return err
	}
	args := []string{"--name", "sim", "--devices", strconv.Itoa(s.Devices), "--interval", s.Interval.String(),
		"--metrics", strconv.Itoa(s.Metrics - simFixedMetrics), "--conns", strconv.Itoa(s.Conns), "--stamp", "--drain", "20s"}
	if s.MaxPending > 0 {
		args = append(args, "--max-pending", strconv.Itoa(s.MaxPending))
	}
	sim, sumPath, err := b.startSim("sim", args...)
	if err != nil {
		return err
	}
	// Everything below runs with the fleet up; the fleet stops on every
	// way out, so its summary is written.
	stopSim := sync.OnceValue(func() error { return sim.Stop(40 * time.Second) })
	defer stopSim() //nolint:errcheck // reported on the normal path

	plain, err := openPlainSub(b.broker)
	if err != nil {
		return err
	}
	defer plain.Close()
	lctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()
	// Latency is sampled on at most 200 devices, the same for both
	// receivers: one WS client on every channel of a 10k fleet would get
	// 10k readings/s, more than the hub's per-session queue absorbs here.
	var ids []string
	for i := 1; i <= s.Devices; i += max(1, s.Devices/200) {
		ids = append(ids, fmt.Sprintf("sim-%03d", i))
	}
	plain.SampleOnly(ids)
	live, err := runLiveWS(lctx, b.hub.URL, ids, &wg)
	if err != nil {
		return err
	}
	known := 0
	wait := s.Warmup + time.Minute + time.Duration(s.Devices)*10*time.Millisecond
	up := waitFor(ctx, wait, func() bool {
		if t, err := fleetTotal(ctx, b.hub.URL); err == nil {
			known = t - total0
		}
		return known >= s.Devices
	})
	switch {
	case known == 0:
		return fmt.Errorf("the fleet did not come up: %s", sim.Tail(500))
	case !up:
		// A hub too busy to register a big fleet in time is a result.
		b.note("Only %d of %d devices were known to the hub after %s; measuring anyway.", known, s.Devices, wait)
	}
	if err := sleep(ctx, s.Warmup+s.Interval); err != nil {
		return err
	}

	b.Log.Info("measuring ingest and latency", "window", s.Window)
	w, err := b.measure(ctx, plain, sim.PID, func() error {
		plain.Latency.Start()
		live.Latency.Start()
		return sleep(ctx, s.Window)
	})
	if err != nil {
		return err
	}
	plainLat, wsLat := distOf(plain.Latency.Stop()), distOf(live.Latency.Stop())
	b.ingestRow(w)
	b.durabilityRow(w)
	b.latencyRow(plainLat, wsLat, live)

	if err := b.phaseFanout(ctx); err != nil {
		return err
	}

	b.Log.Info("stopping the fleet")
	if err := stopSim(); err != nil && sim.Alive() {
		return err
	}
	settled, err := waitSettled(ctx, b.hub.URL, 2*time.Minute)
	if settled == nil {
		return err
	}
	if err != nil {
		// A hub that cannot keep up is a result, not a broken scene: the
		// loss row shows what it had stored by now.
		b.note("After the fleet stopped: %v; loss and storage count what was stored by then.", err)
	}
	sum, err := readSummary(sumPath)
	if err != nil {
		return fmt.Errorf("%w: %s", err, sim.Tail(300))
	}
	b.liveStored = settled[mReadings] - base[mReadings]
	lossOK := b.lossRow(ctx, sum, base, settled)
	if !lossOK {
		r := b.rows["ingest"]
		r.Verdict = Misses
		r.caveat("loss or duplicates (see loss)")
		b.rows["ingest"] = r
	}
	return b.storageRow(sum)
}

// measure runs body as the window, reading the hub's counters, the plain
// subscriber and both processes' CPU and memory at its ends.
func (b *Bench) measure(ctx context.Context, plain *PlainSub, simPID int, body func() error) (*window, error) {
	w := &window{}
	hm, err := StartMeter(b.hub.PID)
	if err != nil {
		return nil, b.hub.explain(err)
	}
	bm, err := StartMeter(b.mosquitto.PID)
	if err != nil {
		return nil, err
	}
	self, err := StartMeter(os.Getpid())
	if err != nil {
		return nil, err
	}
	sm, err := StartMeter(simPID)
	if err != nil {
		return nil, err
	}
	if w.m0, err = scrape(ctx, b.hub.URL); err != nil {
		return nil, err
	}
	w.msgs0, w.plain0 = plain.Counts()
	w.t0 = time.Now()
	if err := body(); err != nil {
		return nil, err
	}
	w.t1 = time.Now()
	w.msgs1, w.plain1 = plain.Counts()
	if w.m1, err = scrape(ctx, b.hub.URL); err != nil {
		return nil, err
	}
	if w.hub, err = hm.Stop(); err != nil {
		return nil, err
	}
	if w.broker, err = bm.Stop(); err != nil {
		return nil, err
	}
	if w.self, err = self.Stop(); err != nil {
		return nil, err
	}
	if w.sim, err = sm.Stop(); err != nil {
		return nil, err
	}
	b.note("Load generators in the ingest window, on the same cores: fleetwatch-sim %.0f%% CPU, the harness (plain subscriber, WS client, scrapes) %.0f%%; hub %.0f%%, mosquitto %.0f%% (%% of one core).",
		w.sim.CPUPercent, w.self.CPUPercent, w.hub.CPUPercent, w.broker.CPUPercent)
	return w, nil
}

// ingestRow judges the ratio; the loss row, once the fleet stops, may
// turn it into a miss.
func (b *Bench) ingestRow(w *window) {
	secs := w.secs()
	stored := w.delta(mReadings) / secs
	plain := float64(w.plain1-w.plain0) / secs
	msgs := float64(w.msgs1-w.msgs0) / secs
	ratio := stored / plain
	cpuPerReading := w.hub.CPU.Seconds() * 1e6 / w.delta(mReadings)
	b.setRow(Row{Name: "ingest",
		Figure: fmt.Sprintf("%.0f readings/s durably stored (%.0f samples/s) over %.0f s; ratio %.3f; hub %.0f%% CPU (%.0f CPU-µs/reading, all its work), RSS %s (anon %s + bbolt mmap %s)",
			stored, stored*float64(b.Sizes.Metrics), secs, ratio, w.hub.CPUPercent, cpuPerReading, mb(float64(w.hub.RSSMaxKB)), mb(float64(w.hub.AnonMaxKB)), mb(float64(w.hub.FileMaxKB))),
		Baseline: fmt.Sprintf("plain subscriber %.0f readings/s (%.0f msgs/s); mosquitto %.0f%% CPU, RSS %s; offered %.0f/s",
			plain, msgs, w.broker.CPUPercent, mb(float64(w.broker.RSSMaxKB)), float64(b.Sizes.Devices)/b.Sizes.Interval.Seconds()),
		Values: map[string]float64{"stored_per_s": stored, "plain_per_s": plain, "ratio": ratio, "hub_cpu_pct": w.hub.CPUPercent,
			"hub_cpu_us_per_reading": cpuPerReading, "hub_rss_kb": float64(w.hub.RSSMaxKB), "broker_cpu_pct": w.broker.CPUPercent},
	})
	r := b.rows["ingest"]
	r.Verdict, r.Why = judge(need(ratio >= 0.9, "ratio %.3f < 0.9", ratio))
	b.rows["ingest"] = r
}

func (b *Bench) latencyRow(plain, ws Dist, live *LiveWS) {
	adds := ws.P99 - plain.P99
	r := Row{Name: "latency",
		Figure:   fmt.Sprintf("publish → WS client: %s; hub adds %s at p99", distText(ws), ms(adds)),
		Baseline: "publish → plain subscriber: " + distText(plain),
		Values:   map[string]float64{"ws_p50_ms": ws.P50, "ws_p99_ms": ws.P99, "ws_max_ms": ws.Max, "plain_p50_ms": plain.P50, "plain_p99_ms": plain.P99, "plain_max_ms": plain.Max, "hub_adds_p99_ms": adds},
	}
	r.Verdict, r.Why = judge(need(adds <= 5, "hub adds %s > 5 ms", ms(adds)), need(ws.P99 <= 50, "total p99 %s > 50 ms", ms(ws.P99)))
	if live.devices < b.Sizes.Devices {
		r.caveat(fmt.Sprintf("sampled on %d of %d devices, the same for both receivers", live.devices, b.Sizes.Devices))
	}
	if ws.N == 0 || plain.N == 0 {
		r.Verdict, r.Why = NA, "no stamped readings received: "+live.Err()
	}
	b.setRow(r)
}

func (b *Bench) durabilityRow(w *window) {
	secs := w.secs()
	commits := w.delta(mCommits) / secs
	estimate := 2 * commits
	fig := fmt.Sprintf("≈ %.1f fsyncs/s: %.2f commits/s × 2 (bbolt fdatasyncs twice per commit)", estimate, commits)
	v := map[string]float64{"commits_per_s": commits, "fsyncs_per_s_estimate": estimate}
	judged := estimate
	if b.hub.StraceLog != "" {
		if n, err := countSyncs(b.hub.StraceLog, w.t0, w.t1); err == nil {
			judged = float64(n) / secs
			v["fsyncs_per_s_strace"] = judged
			fig = fmt.Sprintf("%.1f fsyncs/s counted by strace (fsync+fdatasync, %d in %.0f s); commits %.2f/s × 2 = %.1f", judged, n, secs, commits, estimate)
		} else {
			b.note("strace count failed: %v", err)
		}
	}
	r := Row{Name: "durability cost", Figure: fig + fmt.Sprintf(", at %.0f readings/s", w.delta(mReadings)/secs), Baseline: "—", Values: v}
	stored, offered := w.delta(mReadings)/secs, float64(b.Sizes.Devices)/b.Sizes.Interval.Seconds()
	r.Verdict, r.Why = judge(need(judged <= 4, "%.1f fsyncs/s > 4", judged),
		need(stored >= 0.9*offered, "not at load: the hub stored %.0f of %.0f offered readings/s, few commits because each is slow", stored, offered))
	if wb := w.hub.DiskWrite; wb > 0 {
		samples := w.delta(mReadings) * float64(b.Sizes.Metrics)
		r.Figure += fmt.Sprintf("; hub wrote %.1f MB/s to disk, %.0f B per sample stored (/proc/<pid>/io)", float64(wb)/secs/1e6, float64(wb)/samples)
		r.Values["disk_write_bytes_per_s"] = float64(wb) / secs
		r.Values["disk_write_bytes_per_sample"] = float64(wb) / samples
	}
	b.setRow(r)
}

// countSyncs counts fsync/fdatasync calls strace -ttt logged in [t0, t1].
func countSyncs(path string, t0, t1 time.Time) (int, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, fmt.Errorf("count fsyncs: %w", err)
	}
	defer f.Close()
	lo, hi := float64(t0.UnixMicro())/1e6, float64(t1.UnixMicro())/1e6
	n := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		f := strings.Fields(sc.Text()) // pid, time, call(…
		if len(f) < 3 || !(strings.HasPrefix(f[2], "fsync(") || strings.HasPrefix(f[2], "fdatasync(")) {
			continue
		}
		if ts, err := strconv.ParseFloat(f[1], 64); err == nil && ts >= lo && ts <= hi {
			n++
		}
	}
	return n, sc.Err()
}

// lossRow compares what the sim's agents numbered with what the hub
// stored, and checks a sample of series point by point for duplicates.
func (b *Bench) lossRow(ctx context.Context, sum *SimSummary, base, settled map[string]float64) bool {
	stored := settled[mReadings] - base[mReadings]
	dupSkipped := settled[mDuplicates] - base[mDuplicates]
	gaps := settled[mGaps] - base[mGaps]
	lost := float64(sum.Published) - stored
	ids := make([]string, 0, len(sum.PerDevice))
	for id := range sum.PerDevice {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	step := max(1, len(ids)/20)
	var checked, mismatched int
	var points, want uint64
	for i := 0; i < len(ids); i += step {
		h, err := history(ctx, b.hub.URL, ids[i], "cpu.percent", 0, telemetry.MaxTimestamp)
		if err != nil {
			b.note("loss: history of %s: %v", ids[i], err)
			mismatched++
			continue
		}
		checked++
		points += uint64(h.Points)
		want += sum.PerDevice[ids[i]].LastSeq
		if uint64(h.Points) != sum.PerDevice[ids[i]].LastSeq {
			mismatched++
		}
	}
	dups := 0.0
	if points > want {
		dups = float64(points - want)
	}
	verdict, why := judge(need(lost == 0, "%.0f lost", lost), need(dups == 0, "%.0f duplicates stored", dups),
		need(mismatched == 0, "%d sampled series differ from what was published", mismatched))
	b.setRow(Row{Name: "loss", Verdict: verdict, Why: why,
		Figure: fmt.Sprintf("%d published, %.0f stored, %.0f lost; %.0f duplicates stored (history of %d devices: %d points for %d published, %d mismatched)",
			sum.Published, stored, lost, dups, checked, points, want, mismatched),
		Baseline: fmt.Sprintf("%d acked by the hub, %d pending at sim exit; %.0f redeliveries skipped, %.0f gaps settled", sum.Acked, sum.Pending, dupSkipped, gaps),
		Values:   map[string]float64{"published": float64(sum.Published), "stored": stored, "lost": lost, "duplicates_stored": dups, "redeliveries_skipped": dupSkipped, "history_mismatched": float64(mismatched)},
	})
	return verdict == Meets
}

// storageRow divides the store's size on disk by the samples stored. At
// the harness's sizes (minutes of data per series) the fixed cost of each
// series (a page per tier, its open partition) dominates, so the row is
// judged only past ~3 hours of samples per series; `make bench-store`
// measures the steady state.
func (b *Bench) storageRow(sum *SimSummary) error {
	var st syscall.Stat_t
	if err := syscall.Stat(b.hub.DB, &st); err != nil {
		b.setRow(notRun("storage", "", err.Error()))
		return nil
	}
	samples := b.replayStored*float64(b.replayMetrics) + b.liveStored*float64(sum.MetricsPerReading)
	alloc := float64(st.Blocks * 512)
	per := alloc / samples
	var series float64
	if m, err := scrape(context.Background(), b.hub.URL); err == nil {
		series = m["fleetwatch_store_series"]
	}
	perSeries := samples / max(series, 1)
	r := Row{Name: "storage",
		Figure: fmt.Sprintf("%.1f B/sample: %s allocated (file %s) for %.2f M samples in %.0f series, %.0f samples per series (%.0f query-device readings × %d + %.0f live × %d metrics)",
			per, mb(alloc/1024), mb(float64(st.Size)/1024), samples/1e6, series, perSeries, b.replayStored, b.replayMetrics, b.liveStored, sum.MetricsPerReading),
		Baseline: "—",
		Values:   map[string]float64{"bytes_per_sample": per, "file_bytes": float64(st.Size), "allocated_bytes": alloc, "samples": samples, "series": series},
	}
	if perSeries < 10_000 {
		r.Verdict, r.Why = NA, fmt.Sprintf("not judged at %.0f samples per series: each series' fixed pages dominate; `make bench-store` measures days of data", perSeries)
	} else {
		r.Verdict, r.Why = judge(need(per <= 2, "%.1f B/sample > 2", per))
	}
	b.setRow(r)
	return nil
}
