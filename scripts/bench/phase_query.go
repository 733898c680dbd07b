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

	const metric = "cpu.percent"
	first, err := history(ctx, b.hub.URL, "replay-001", metric, dev.From, dev.To)
	if err != nil {
		b.setRow(notRun("query", "", err.Error()))
		return nil
	}
	var lat []float64
	var last historyResult
	for range b.Sizes.Queries {
		if last, err = history(ctx, b.hub.URL, "replay-001", metric, dev.From, dev.To); err != nil {
			return err
		}
		lat = append(lat, float64(last.Elapsed.Microseconds())/1000)
	}
	d := distOf(lat)
	r := Row{Name: "query",
		Figure: fmt.Sprintf("%s over %d×: %d points (%s of %s at 1 s), %s of JSON; first query %s; hub idle",
			distText(d), len(lat), last.Points, metric, b.Sizes.Replay, kb(float64(last.Bytes)/1024), ms(float64(first.Elapsed.Microseconds())/1000)),
		Baseline: "—",
		Values:   map[string]float64{"p50_ms": d.P50, "p99_ms": d.P99, "max_ms": d.Max, "points": float64(last.Points), "bytes": float64(last.Bytes), "first_ms": float64(first.Elapsed.Microseconds()) / 1000},
	}
	r.Verdict, r.Why = judge(need(d.P99 <= 5, "p99 %s > 5 ms", ms(d.P99)), need(int64(last.Points) == dev.N, "%d points, want %d", last.Points, dev.N))
	b.setRow(r)
	return nil
}
