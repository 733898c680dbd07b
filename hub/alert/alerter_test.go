package alert

import (
	"context"
	"errors"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/fleetwatch/fleetwatch/agent/telemetry"
	"github.com/fleetwatch/fleetwatch/hub"
	"github.com/fleetwatch/fleetwatch/hub/fleet"
)

// sink collects what the alerter hands out.
type sink struct {
	mu                            sync.Mutex
	recorded, published, notified []hub.Alert
	events                        []hub.DeviceEvent
}

func (s *sink) take() (recorded, published, notified []hub.Alert) {
	s.mu.Lock()
	defer s.mu.Unlock()
	recorded, published, notified = s.recorded, s.published, s.notified
	s.recorded, s.published, s.notified = nil, nil, nil
	return
}

func TestAlerter_Run(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		cpuNow := 50.0
		set := func(v float64) { mu.Lock(); cpuNow = v; mu.Unlock() }
		engine, err := NewEngine([]Rule{{Name: "hot", Metric: "cpu.percent", Op: ">", Warn: Level(80), Clear: Level(70), For: 30 * time.Second}})
		if err != nil {
			t.Fatal(err)
		}
		var s sink
		pending := []hub.DeviceEvent{{Device: "pi", Type: hub.EventTypeReboot}}
		al := &Alerter{
			Engine: engine,
			Fleet: func(int64) []fleet.Device {
				mu.Lock()
				defer mu.Unlock()
				return []fleet.Device{{ID: "pi", State: fleet.Online, Metrics: telemetry.Metrics{"cpu.percent": cpuNow}}}
			},
			Events: func() []hub.DeviceEvent { evs := pending; pending = nil; return evs },
			Record: func(a []hub.Alert, e []hub.DeviceEvent) {
				s.mu.Lock()
				s.recorded, s.events = append(s.recorded, a...), append(s.events, e...)
				s.mu.Unlock()
			},
			Publish: func(a hub.Alert) { s.mu.Lock(); s.published = append(s.published, a); s.mu.Unlock() },
			Notify:  func(a hub.Alert) { s.mu.Lock(); s.notified = append(s.notified, a); s.mu.Unlock() },
		}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- al.Run(ctx) }()
		expect := func(when string, wantState string) hub.Alert {
			t.Helper()
			synctest.Wait()
			r, p, n := s.take()
			if wantState == "" {
				if len(r)+len(p)+len(n) != 0 {
					t.Fatalf("%s: recorded %v, published %v, notified %v; want nothing", when, r, p, n)
				}
				return hub.Alert{}
			}
			if len(r) != 1 || len(p) != 1 || len(n) != 1 || r[0] != p[0] || p[0] != n[0] {
				t.Fatalf("%s: recorded %v, published %v, notified %v; want one alert each", when, r, p, n)
			}
			if r[0].State != wantState {
				t.Fatalf("%s: state %s, want %s", when, r[0].State, wantState)
			}
			return r[0]
		}

		time.Sleep(1500 * time.Millisecond)
		expect("below the level", "")
		if len(s.events) != 1 || s.events[0].Type != hub.EventTypeReboot {
			t.Errorf("events recorded = %+v, want the pending reboot", s.events)
		}
		set(90)
		time.Sleep(30 * time.Second)
		expect("29.5 s past the level", "")
		time.Sleep(time.Second)
		fired := expect("30.5 s past the level", hub.AlertFiring)
		if got := al.Firing(); len(got) != 1 || got[0].ID != fired.ID {
			t.Errorf("Firing() = %+v, want %s", got, fired.ID)
		}
		set(75) // below warn, above clear: hysteresis keeps it firing
		time.Sleep(10 * time.Second)
		expect("between clear and warn", "")

		acked, err := al.Ack(ctx, fired.ID)
		if err != nil || acked.AckedAt == 0 {
			t.Fatalf("Ack = %+v, %v; want acked", acked, err)
		}
		if got := expect("after the ack", hub.AlertFiring); got.AckedAt == 0 {
			t.Errorf("the ack handed out %+v, want AckedAt set", got)
		}
		if _, err := al.Ack(ctx, "nope"); !errors.Is(err, ErrNotFiring) {
			t.Errorf("Ack(unknown) = %v, want ErrNotFiring", err)
		}

		set(65)
		time.Sleep(time.Second)
		if got := expect("below clear", hub.AlertResolved); got.ID != fired.ID {
			t.Errorf("resolved %s, want %s", got.ID, fired.ID)
		}
		if got := al.Firing(); len(got) != 0 {
			t.Errorf("Firing() after resolve = %+v, want none", got)
		}
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("Run = %v, want context.Canceled", err)
		}
	})
}

func TestAlerter_completeness(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		engine, _ := NewEngine(Builtins()[2:3]) // low_completeness: warn < 99, crit < 90, for 5m
		var asked []string
		var mu sync.Mutex
		var fired []hub.Alert
		devs := []fleet.Device{{ID: "pi-a", State: fleet.Online}, {ID: "pi-b", State: fleet.Online}, {ID: "pi-off", State: fleet.Offline}}
		al := &Alerter{
			Engine: engine, CompletenessEvery: 10 * time.Second,
			Fleet: func(int64) []fleet.Device { return devs },
			Completeness: func(dev string, from, to int64) (float64, error) {
				mu.Lock()
				asked = append(asked, dev)
				mu.Unlock()
				if to-from != DefaultCompletenessWindow.Milliseconds() {
					t.Errorf("window %d ms, want %d", to-from, DefaultCompletenessWindow.Milliseconds())
				}
				if dev == "pi-b" {
					return 0.5, nil
				}
				return 1, nil
			},
			Record: func(a []hub.Alert, _ []hub.DeviceEvent) { mu.Lock(); fired = append(fired, a...); mu.Unlock() },
		}
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		go al.Run(ctx) //nolint:errcheck // ends with the test
		time.Sleep(5*time.Minute + 15*time.Second)
		synctest.Wait()
		mu.Lock()
		defer mu.Unlock()
		if len(fired) != 1 || fired[0].Device != "pi-b" || fired[0].Severity != hub.SeverityCritical {
			t.Errorf("fired %+v, want pi-b critical", fired)
		}
		for _, d := range asked {
			if d == "pi-off" {
				t.Fatal("asked the store about an offline device")
			}
		}
		// At least one device per tick, never all at once: 315 turns,
		// a third of them the offline device's.
		if n := len(asked); n < 200 || n > 215 {
			t.Errorf("asked %d times in 315 s, want about 210", n)
		}
	})
}
