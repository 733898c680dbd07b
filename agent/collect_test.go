package agent

import (
	"context"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/fleetwatch/fleetwatch/agent/telemetry"
)

func TestAgent_Collect(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		now := time.UnixMilli(1764368400123)
		a := &Agent{Collectors: []Collector{putCollector("a", telemetry.Metrics{"test.a": 1})}, Now: func() time.Time { return now }}
		r := a.Collect(context.Background())
		if r.Seq != 0 || r.TS != now.UnixMilli() {
			t.Errorf("Seq=%d TS=%d, want 0 %d", r.Seq, r.TS, now.UnixMilli())
		}
		if want := (telemetry.Metrics{"test.a": 1, "agent.collector_errors": 0}); !sameMetrics(r.Metrics, want) {
			t.Errorf("metrics %v, want %v", r.Metrics, want)
		}
	})
	t.Run("ErrCollectorCountsAccumulate", func(t *testing.T) {
		n := 0
		c := &fakeCollector{
			NameFunc: func() string { return "flaky" },
			CollectFunc: func(context.Context, telemetry.Metrics) error {
				n++
				if n%2 == 0 {
					return fmt.Errorf("attempt %d failed", n)
				}
				return nil
			},
		}
		a := &Agent{Collectors: []Collector{c, c}}
		for i, want := range []float64{1, 2, 3} { // every second call fails
			r := a.Collect(context.Background())
			if got := r.Metrics["agent.collector_errors"]; got != want {
				t.Errorf("Collect %d: agent.collector_errors=%v, want %v", i+1, got, want)
			}
		}
	})
	t.Run("DropsInvalidMetrics", func(t *testing.T) {
		c := putCollector("bad", telemetry.Metrics{"test.ok": 1, "test.nan": math.NaN(), "test.inf": math.Inf(1), "Test.Upper": 2, "": 3})
		a := &Agent{Collectors: []Collector{c}}
		r := a.Collect(context.Background())
		want := telemetry.Metrics{"test.ok": 1, "agent.collector_errors": 1}
		if !sameMetrics(r.Metrics, want) {
			t.Errorf("metrics %v, want %v", r.Metrics, want)
		}
		if err := telemetry.ValidateMetrics(r.Metrics); err != nil {
			t.Errorf("Collect returned an invalid reading: %v", err)
		}
	})
}

func TestAgent_Defaults(t *testing.T) {
	a := &Agent{Device: testDevice, Boot: testBoot, Batch: telemetry.MaxReadings + 1}
	if got, want := a.Stats(), (Stats{NextSeq: 1}); got != want {
		t.Fatalf("Stats=%+v, want %+v", got, want)
	}
	for _, c := range []struct {
		name      string
		got, want any
	}{
		{"Interval", a.Interval, DefaultInterval},
		{"ResendAfter", a.ResendAfter, DefaultResendAfter},
		{"MaxPending", a.MaxPending, DefaultMaxPending},
		{"Batch", a.Batch, DefaultBatch},
		{"SpillInterval", a.SpillInterval, DefaultSpillInterval},
		{"MaxAge", a.MaxAge, time.Duration(0)},
		{"ReplayRate", a.ReplayRate, 0},
	} {
		if c.got != c.want {
			t.Errorf("%s=%v, want %v", c.name, c.got, c.want)
		}
	}
	if a.Now == nil || a.Logger == nil {
		t.Errorf("Now set %v, Logger set %v; want both set", a.Now != nil, a.Logger != nil)
	}
	if got, want := a.String(), "agent pi-kitchen boot "+testBoot; got != want {
		t.Errorf("String()=%q, want %q", got, want)
	}
}

// sameMetrics reports whether two metric sets are equal.
func sameMetrics(got, want telemetry.Metrics) bool {
	if len(got) != len(want) {
		return false
	}
	for k, w := range want {
		if v, ok := got[k]; !ok || v != w {
			return false
		}
	}
	return true
}
