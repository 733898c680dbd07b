package main

import (
	"context"
	"fmt"
	"time"
)

// phaseQuery backfills one device with Sizes.Replay of history at 1 s
// through fleetwatch-sim --replay (original timestamps, oldest first, as
// fast as the hub's acks allow), then times GET …/history for one whole
// series, with the hub otherwise idle.
func (b *Bench) phaseQuery(ctx context.Context) error {
	m0, err := scrape(ctx, b.hub.URL)
	if err != nil {
		return err
	}
	n := int64(b.Sizes.Replay / time.Second)
	limit := max(2*time.Minute, time.Duration(n)*time.Millisecond) // ≥ 1000 readings/s or it is broken
	p, sumPath, err := b.startSim("replay", "--name", "replay", "--devices", "1", "--interval", "1s",
		"--replay", b.Sizes.Replay.String(), "--duration", limit.String())
	if err != nil {
		return err
	}
	t0 := time.Now()
	if err := p.Wait(limit + 30*time.Second); err != nil {
		return fmt.Errorf("replay: %w: %s", err, p.Tail(500))
	}
	took := time.Since(t0)
	sum, err := readSummary(sumPath)
	if err != nil {
		return err
	}
	m1, err := waitSettled(ctx, b.hub.URL, time.Minute)
	if m1 == nil {
		return err
	}
	if err != nil {
		b.note("Query backfill: %v", err)
	}
	b.replayStored = m1[mReadings] - m0[mReadings]
	b.replayMetrics = sum.MetricsPerReading
	dev, ok := sum.PerDevice["replay-001"]
	if !ok || dev.N == 0 {
		return fmt.Errorf("replay: summary has no replay-001 range")
	}
	b.note("Query backfill: %d readings × %d metrics of %s history sent oldest first, one per message, ≤ 5000 unacked: all acked after %.1f s (%.0f readings/s); %d pending at exit.",
		sum.Published, sum.MetricsPerReading, b.Sizes.Replay, took.Seconds(), float64(sum.Published)/took.Seconds(), sum.Pending)

	// The raw read proves every sample is there; the timed query is what a
	// chart of the day asks for (the API's default 1000 points).
	const metric = "cpu.percent"
	raw, err := history(ctx, b.hub.URL, "replay-001", metric, dev.From, dev.To)
	if err != nil {
		b.setRow(notRun("query", "", err.Error()))
		return nil
	}
	var lat []float64
	var last historyResult
	var step int64
	for range b.Sizes.Queries {
		if last, step, err = historyAt(ctx, b.hub.URL, "replay-001", metric, dev.From, dev.To, 1000); err != nil {
			return err
		}
		lat = append(lat, float64(last.Elapsed.Microseconds())/1000)
	}
	d := distOf(lat)
	r := Row{Name: "query",
		Figure: fmt.Sprintf("%s over %d×: %s of %s at 1 s as %d points, step %s (%s of JSON); all %d raw samples in one read of %s (%s); hub idle",
			distText(d), len(lat), metric, b.Sizes.Replay, last.Points, time.Duration(step)*time.Millisecond, kb(float64(last.Bytes)/1024), raw.Points, ms(float64(raw.Elapsed.Microseconds())/1000), kb(float64(raw.Bytes)/1024)),
		Baseline: "—",
		Values:   map[string]float64{"p50_ms": d.P50, "p99_ms": d.P99, "max_ms": d.Max, "points": float64(last.Points), "bytes": float64(last.Bytes), "raw_points": float64(raw.Points), "raw_ms": float64(raw.Elapsed.Microseconds()) / 1000},
	}
	r.Verdict, r.Why = judge(need(d.P99 <= 5, "p99 %s > 5 ms", ms(d.P99)), need(int64(raw.Points) == dev.N, "%d raw points, want %d", raw.Points, dev.N))
	b.setRow(r)
	return nil
}
