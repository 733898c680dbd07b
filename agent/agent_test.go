package agent

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/fleetwatch/fleetwatch/agent/telemetry"
)

const (
	testDevice = "pi-kitchen"
	testBoot   = "20251128T222000-3f9a1c7e5b20"
)

type fakePublisher struct {
	PublishTelemetryFunc func(ctx context.Context, payload []byte) error
}

func (p *fakePublisher) PublishTelemetry(ctx context.Context, payload []byte) error {
	return p.PublishTelemetryFunc(ctx, payload)
}

type fakeCollector struct {
	NameFunc    func() string
	CollectFunc func(ctx context.Context, m telemetry.Metrics) error
}

func (c *fakeCollector) Name() string { return c.NameFunc() }
func (c *fakeCollector) Collect(ctx context.Context, m telemetry.Metrics) error {
	return c.CollectFunc(ctx, m)
}

// putCollector sets the given metrics on every Collect.
func putCollector(name string, metrics telemetry.Metrics) *fakeCollector {
	return &fakeCollector{
		NameFunc: func() string { return name },
		CollectFunc: func(_ context.Context, m telemetry.Metrics) error {
			for k, v := range metrics {
				m[k] = v
			}
			return nil
		},
	}
}

var errBrokerDown = errors.New("broker down")

// hub is a fake broker plus hub: it decodes every payload as the hub would,
// records what it got, and fails publishes while down.
type hub struct {
	t *testing.T

	mu        sync.Mutex
	down      bool
	attempts  int
	got       []telemetry.Envelope // delivered envelopes
	onDeliver func(e telemetry.Envelope)
}

func newHub(t *testing.T) *hub { return &hub{t: t} }

func (h *hub) publisher() *fakePublisher {
	return &fakePublisher{PublishTelemetryFunc: func(_ context.Context, payload []byte) error {
		if len(payload) > telemetry.MaxPayload {
			h.t.Errorf("published %d bytes, more than %d", len(payload), telemetry.MaxPayload)
		}
		e, err := telemetry.DecodeTelemetry(testDevice, payload, time.Now())
		if err != nil {
			h.t.Errorf("hub rejects a published envelope: %v", err)
			return nil
		}
		h.mu.Lock()
		h.attempts++
		if h.down {
			h.mu.Unlock()
			return errBrokerDown
		}
		h.got = append(h.got, e)
		onDeliver := h.onDeliver
		h.mu.Unlock()
		if onDeliver != nil {
			onDeliver(e)
		}
		return nil
	}}
}

func (h *hub) setDown(down bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.down = down
}

func (h *hub) attemptCount() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.attempts
}

// envelopes returns what was delivered so far.
func (h *hub) envelopes() []telemetry.Envelope {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.got)
}

// readings returns every delivered reading, in delivery order.
func (h *hub) readings() []telemetry.Reading {
	var rs []telemetry.Reading
	for _, e := range h.envelopes() {
		rs = append(rs, e.Readings...)
	}
	return rs
}

// counts returns how often each seq was delivered.
func (h *hub) counts() map[uint64]int {
	n := map[uint64]int{}
	for _, r := range h.readings() {
		n[r.Seq]++
	}
	return n
}

func seqsOf(rs []telemetry.Reading) []uint64 {
	out := make([]uint64, len(rs))
	for i, r := range rs {
		out[i] = r.Seq
	}
	return out
}

func newTestAgent(pub Publisher, cs ...Collector) *Agent {
	if len(cs) == 0 {
		cs = []Collector{putCollector("test", telemetry.Metrics{"test.value": 1})}
	}
	return &Agent{
		Device: testDevice, Boot: testBoot, Tags: map[string]string{"site": "home"},
		Interval: time.Second, Collectors: cs, Publisher: pub,
		Now: time.Now, // the bubble's fake clock
	}
}

// start runs a in the current synctest bubble; stop cancels it and checks
// that Run returned ctx's error.
func start(t *testing.T, a *Agent) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	return func() {
		t.Helper()
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("Run returned %v, want %v", err, context.Canceled)
		}
	}
}

func checkStats(t *testing.T, a *Agent, want Stats) {
	t.Helper()
	if got := a.Stats(); got != want {
		t.Fatalf("Stats=%+v, want %+v", got, want)
	}
}

func TestAgent_Run(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			h := newHub(t)
			a := newTestAgent(h.publisher())
			t0 := time.Now()
			stop := start(t, a)
			time.Sleep(10500 * time.Millisecond)
			stop()

			envs := h.envelopes()
			if got, want := len(envs), 11; got != want {
				t.Fatalf("%d envelopes, want %d", got, want)
			}
			for i, e := range envs {
				seq := uint64(i + 1)
				if got, want := seqsOf(e.Readings), []uint64{seq}; !slices.Equal(got, want) {
					t.Fatalf("envelope %d: seqs %v, want %v", i, got, want)
				}
				r := e.Readings[0]
				if got, want := r.TS, t0.Add(time.Duration(i)*time.Second).UnixMilli(); got != want {
					t.Errorf("seq %d: TS=%d, want %d", seq, got, want)
				}
				if e.Device != testDevice || e.Boot != testBoot || e.First != nil || e.Tags["site"] != "home" {
					t.Errorf("envelope %d: device %q boot %q first %v tags %v, want %q %q nil site=home",
						i, e.Device, e.Boot, e.First, e.Tags, testDevice, testBoot)
				}
				if got, want := r.Metrics, (telemetry.Metrics{"test.value": 1, "agent.collector_errors": 0}); !sameMetrics(got, want) {
					t.Errorf("seq %d: metrics %v, want %v", seq, got, want)
				}
			}
			checkStats(t, a, Stats{Pending: 11, NextSeq: 12})

			a.HandleAck(telemetry.Ack{V: 1, Boot: testBoot, Seq: 11})
			checkStats(t, a, Stats{Pending: 0, Acked: 11, NextSeq: 12})
		})
	})

	t.Run("AckedReadingsAreNotResent", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			h := newHub(t)
			a := newTestAgent(h.publisher())
			a.ResendAfter = 5 * time.Second
			// Ack every envelope as the hub does once it is committed.
			h.onDeliver = func(e telemetry.Envelope) {
				go a.HandleAck(telemetry.Ack{V: 1, Boot: e.Boot, Seq: slices.Max(seqsOf(e.Readings))})
			}
			stop := start(t, a)
			time.Sleep(30500 * time.Millisecond)
			stop()

			counts := h.counts()
			for seq := uint64(1); seq <= 31; seq++ {
				if got, want := counts[seq], 1; got != want {
					t.Errorf("seq %d delivered %d times, want %d", seq, got, want)
				}
			}
			checkStats(t, a, Stats{Pending: 0, Acked: 31, NextSeq: 32})
		})
	})

	t.Run("ResendAfter", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			h := newHub(t)
			a := newTestAgent(h.publisher())
			a.ResendAfter = 3 * time.Second
			stop := start(t, a)
			time.Sleep(10500 * time.Millisecond)

			// seq k is taken at k-1 s and sent then and every 3 s until 10 s.
			counts := h.counts()
			for k := 1; k <= 11; k++ {
				if got, want := counts[uint64(k)], (10-(k-1))/3+1; got != want {
					t.Errorf("seq %d delivered %d times, want %d", k, got, want)
				}
			}
			a.HandleAck(telemetry.Ack{V: 1, Boot: testBoot, Seq: 11})
			n := len(h.readings())
			// Resends are backlog.
			checkStats(t, a, Stats{Pending: 0, Acked: 11, NextSeq: 12, Replayed: uint64(n - 11)})
			time.Sleep(time.Second) // 11 s: seq 12 only
			stop()
			if got, want := seqsOf(h.readings()[n:]), []uint64{12}; !slices.Equal(got, want) {
				t.Errorf("after the ack: delivered %v, want %v", got, want)
			}
		})
	})

	t.Run("PublishErrorKeepsReadingsUntilReconnected", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			h := newHub(t)
			h.setDown(true)
			a := newTestAgent(h.publisher())
			t0 := time.Now()
			stop := start(t, a)
			defer stop()
			time.Sleep(5500 * time.Millisecond)

			if got := h.attemptCount(); got < 6 {
				t.Errorf("%d publish attempts while down, want at least 6", got)
			}
			if got := len(h.readings()); got != 0 {
				t.Fatalf("%d readings delivered while down, want 0", got)
			}
			checkStats(t, a, Stats{Pending: 6, NextSeq: 7})

			h.setDown(false)
			a.Reconnected()
			synctest.Wait()
			if got, want := time.Since(t0), 5500*time.Millisecond; got != want {
				t.Fatalf("time %v, want %v: the resend must not wait for a tick", got, want)
			}
			// The newest first, for the dashboard; then the backlog
			// oldest first, for the hub's watermark.
			if got, want := seqsOf(h.readings()), []uint64{6, 1, 2, 3, 4, 5}; !slices.Equal(got, want) {
				t.Fatalf("delivered %v after Reconnected, want %v", got, want)
			}
			checkStats(t, a, Stats{Pending: 6, NextSeq: 7, Replayed: 5})
		})
	})

	t.Run("ReconnectedResendsInFlight", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			h := newHub(t)
			a := newTestAgent(h.publisher())
			stop := start(t, a)
			defer stop()
			time.Sleep(3500 * time.Millisecond)
			a.HandleAck(telemetry.Ack{V: 1, Boot: testBoot, Seq: 1})
			n := len(h.readings())
			if n != 4 {
				t.Fatalf("%d readings delivered, want 4", n)
			}
			a.Reconnected()
			synctest.Wait()
			if got, want := seqsOf(h.readings()[n:]), []uint64{4, 2, 3}; !slices.Equal(got, want) {
				t.Errorf("resent %v after Reconnected, want %v", got, want)
			}
		})
	})

	t.Run("Batches", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			h := newHub(t)
			h.setDown(true)
			a := newTestAgent(h.publisher())
			a.Batch = 4
			stop := start(t, a)
			defer stop()
			time.Sleep(9500 * time.Millisecond)
			h.setDown(false)
			a.Reconnected()
			synctest.Wait()

			var got [][]uint64
			for _, e := range h.envelopes() {
				got = append(got, seqsOf(e.Readings))
			}
			want := [][]uint64{{10}, {1, 2, 3, 4}, {5, 6, 7, 8}, {9}}
			if !slices.EqualFunc(got, want, slices.Equal) {
				t.Errorf("envelopes %v, want %v", got, want)
			}
		})
	})

	t.Run("MaxPendingDropsOldestAndAnnouncesFirst", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			h := newHub(t)
			h.setDown(true)
			a := newTestAgent(h.publisher())
			a.MaxPending = 5
			stop := start(t, a)
			defer stop()
			time.Sleep(9500 * time.Millisecond)
			h.setDown(false)
			a.Reconnected()
			synctest.Wait()

			envs := h.envelopes()
			if len(envs) != 2 {
				t.Fatalf("%d envelopes, want 2", len(envs))
			}
			for i, want := range [][]uint64{{10}, {6, 7, 8, 9}} {
				if got := seqsOf(envs[i].Readings); !slices.Equal(got, want) {
					t.Errorf("envelope %d: seqs %v, want %v", i, got, want)
				}
				if envs[i].First == nil || *envs[i].First != 6 {
					t.Errorf("envelope %d: First=%v, want 6", i, envs[i].First)
				}
			}
			checkStats(t, a, Stats{Pending: 5, Dropped: 5, NextSeq: 11, Replayed: 4})
		})
	})

	t.Run("BacklogLargerThanOnePayload", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			// 30 metrics at full float precision are about 1 KiB a
			// reading, so some 250 of them fill an MQTT payload. 12
			// readings of 400 long names (53 KB each) make the same case
			// with much less encoding while the broker is down.
			metrics := telemetry.Metrics{}
			for i := range 400 {
				metrics[fmt.Sprintf("test.%s.m%03d", strings.Repeat("x", 100), i)] = 100 / 3.0 * float64(i+1) / 7
			}
			h := newHub(t)
			h.setDown(true)
			a := newTestAgent(h.publisher(), putCollector("test", metrics))
			stop := start(t, a)
			defer stop()
			time.Sleep(11500 * time.Millisecond)
			checkStats(t, a, Stats{Pending: 12, NextSeq: 13})

			h.setDown(false)
			a.Reconnected()
			synctest.Wait()
			envs := h.envelopes()
			if len(envs) < 3 {
				t.Errorf("%d envelopes, want at least 3 for 640 KB", len(envs))
			}
			if got, want := seqsOf(h.readings()), append([]uint64{12}, seqRange(1, 11)...); !slices.Equal(got, want) {
				t.Fatalf("delivered %v, want %v", got, want)
			}
			checkStats(t, a, Stats{Pending: 12, NextSeq: 13, Replayed: 11})
		})
	})

	t.Run("CollectorError", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			h := newHub(t)
			failing := &fakeCollector{
				NameFunc: func() string { return "failing" },
				CollectFunc: func(_ context.Context, m telemetry.Metrics) error {
					m["failing.partial"] = 7
					return errors.New("sensor unplugged")
				},
			}
			a := newTestAgent(h.publisher(),
				putCollector("a", telemetry.Metrics{"test.a": 1}), failing, putCollector("b", telemetry.Metrics{"test.b": 2}))
			stop := start(t, a)
			time.Sleep(2500 * time.Millisecond)
			stop()

			rs := h.readings()
			if len(rs) != 3 {
				t.Fatalf("%d readings, want 3", len(rs))
			}
			for _, r := range rs {
				want := telemetry.Metrics{"test.a": 1, "test.b": 2, "failing.partial": 7, "agent.collector_errors": float64(r.Seq)}
				if !sameMetrics(r.Metrics, want) {
					t.Errorf("seq %d: metrics %v, want %v", r.Seq, r.Metrics, want)
				}
			}
		})
	})

	t.Run("InvalidMetricCostsOnlyItself", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			h := newHub(t)
			calls := 0
			bad := &fakeCollector{
				NameFunc: func() string { return "bad" },
				CollectFunc: func(_ context.Context, m telemetry.Metrics) error {
					calls++
					if calls == 3 {
						m["test.bad"] = math.NaN()
					}
					return nil
				},
			}
			a := newTestAgent(h.publisher(), putCollector("a", telemetry.Metrics{"test.a": 1}), bad)
			stop := start(t, a)
			time.Sleep(4500 * time.Millisecond)
			stop()
			rs := h.readings()
			if got, want := seqsOf(rs), []uint64{1, 2, 3, 4, 5}; !slices.Equal(got, want) {
				t.Fatalf("delivered %v, want %v", got, want)
			}
			for _, r := range rs {
				want := telemetry.Metrics{"test.a": 1, "agent.collector_errors": 0}
				if r.Seq >= 3 {
					want["agent.collector_errors"] = 1
				}
				if !sameMetrics(r.Metrics, want) {
					t.Errorf("seq %d: metrics %v, want %v", r.Seq, r.Metrics, want)
				}
			}
		})
	})

	t.Run("ErrBadTagsDropsInsteadOfRetrying", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			h := newHub(t)
			a := newTestAgent(h.publisher())
			a.Tags = map[string]string{"Site": "home"} // cmd rejects this in the config
			stop := start(t, a)
			time.Sleep(3500 * time.Millisecond)
			stop()
			if got := h.attemptCount(); got != 0 {
				t.Errorf("%d publishes of invalid envelopes, want 0", got)
			}
			checkStats(t, a, Stats{Pending: 0, Acked: 4, NextSeq: 5})
		})
	})

	t.Run("AckForAnotherBoot", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			h := newHub(t)
			a := newTestAgent(h.publisher())
			stop := start(t, a)
			defer stop()
			time.Sleep(2500 * time.Millisecond)
			a.HandleAck(telemetry.Ack{V: 1, Boot: "20251127T080000-000000000000", Seq: 3})
			checkStats(t, a, Stats{Pending: 3, NextSeq: 4})
			a.HandleAck(telemetry.Ack{V: 1, Boot: testBoot, Seq: 2})
			checkStats(t, a, Stats{Pending: 1, Acked: 2, NextSeq: 4})
			a.HandleAck(telemetry.Ack{V: 1, Boot: testBoot, Seq: 1}) // stale
			checkStats(t, a, Stats{Pending: 1, Acked: 2, NextSeq: 4})
		})
	})
}

func TestAgent_Run_AlignedStamps(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		time.Sleep(1300 * time.Millisecond) // start off the schedule
		h := newHub(t)
		calls := 0
		c := &fakeCollector{
			NameFunc: func() string { return "slow" },
			CollectFunc: func(ctx context.Context, m telemetry.Metrics) error {
				calls++
				if calls == 4 {
					time.Sleep(1500 * time.Millisecond) // a collection overrunning its interval
				}
				m["test.value"] = 1
				return nil
			},
		}
		a := newTestAgent(h.publisher(), c)
		a.Phase = 250 * time.Millisecond
		stop := start(t, a)
		time.Sleep(6200 * time.Millisecond) // until 7.5 s
		stop()

		var got []int64
		for _, r := range h.readings() {
			got = append(got, r.TS-time.Unix(946684800, 0).UnixMilli()) // the bubble's epoch
		}
		// The first reading is taken at start; the rest on the schedule
		// (whole seconds + 250 ms), except the slow one, which keeps the
		// time it ended (5750), and the tick it overran is skipped.
		if want := []int64{1300, 2250, 3250, 5750, 6250, 7250}; !slices.Equal(got, want) {
			t.Errorf("timestamps (ms after the bubble's start) = %v, want %v", got, want)
		}
	})
}

func TestPhaseOf(t *testing.T) {
	seen := map[time.Duration]bool{}
	for i := range 100 {
		p := PhaseOf(fmt.Sprintf("pi-%03d", i), time.Second)
		if p < 0 || p >= time.Second || p%time.Millisecond != 0 {
			t.Fatalf("PhaseOf(pi-%03d, 1s) = %v, want whole ms in [0, 1s)", i, p)
		}
		if again := PhaseOf(fmt.Sprintf("pi-%03d", i), time.Second); again != p {
			t.Fatalf("PhaseOf is not stable: %v then %v", p, again)
		}
		seen[p/(100*time.Millisecond)] = true
	}
	if len(seen) < 8 {
		t.Errorf("100 devices fall in %d of 10 tenths of the interval, want them spread", len(seen))
	}
}
