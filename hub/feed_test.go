package hub_test

import (
	"bytes"
	"encoding/json"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fleetwatch/fleetwatch/hub"
)

// recv returns the next event of s, failing t after a second.
func recv(t *testing.T, s *hub.Subscription) *hub.Event {
	t.Helper()
	deadline := time.After(time.Second)
	for {
		if ev := s.Pop(); ev != nil {
			return ev
		}
		select {
		case <-s.Ready():
		case <-deadline:
			t.Fatal("no event within 1s")
			return nil
		}
	}
}

// noEvent fails t if s holds an event.
func noEvent(t *testing.T, s *hub.Subscription) {
	t.Helper()
	if ev := s.Pop(); ev != nil {
		t.Fatalf("unexpected event %d %s %s", ev.ID, ev.Type, ev.Channel)
	}
}

func mustPublish(t *testing.T, f *hub.Feed, typ, channel string, data any) *hub.Event {
	t.Helper()
	ev, err := f.Publish(typ, channel, data)
	if err != nil {
		t.Fatalf("Publish(%s, %s): %v", typ, channel, err)
	}
	return ev
}

func TestFeed_Publish(t *testing.T) {
	t.Run("ids increase", func(t *testing.T) {
		f := hub.NewFeed(hub.FeedOptions{})
		base := f.LastID()
		if now := uint64(time.Now().UnixMicro()); base == 0 || base > now {
			t.Errorf("LastID() of a new feed = %d, want the clock in µs (≤ %d): ids keep growing across restarts", base, now)
		}
		for want := base + 1; want <= base+6; want++ {
			ev := mustPublish(t, f, hub.EventStatus, hub.ChannelFleet, map[string]int{"n": int(want)})
			if ev.ID != want {
				t.Errorf("event id = %d, want %d", ev.ID, want)
			}
			if got := f.LastID(); got != want {
				t.Errorf("LastID() = %d, want %d", got, want)
			}
		}
	})
	t.Run("every subscriber gets the same event and bytes", func(t *testing.T) {
		f := hub.NewFeed(hub.FeedOptions{})
		a, b := f.SubscribeAll(nil), f.SubscribeAll(nil)
		ev := mustPublish(t, f, hub.EventReading, hub.DeviceChannel("pi-a"), map[string]any{"seq": 1})
		ga, gb := recv(t, a), recv(t, b)
		if ga != ev || gb != ev {
			t.Fatalf("subscribers got %p and %p, want the published %p", ga, gb, ev)
		}
		if &ga.WS()[0] != &gb.WS()[0] || &ga.SSE()[0] != &gb.SSE()[0] {
			t.Error("subscribers got different encodings, want one shared encoding")
		}
	})
	t.Run("channels", func(t *testing.T) {
		f := hub.NewFeed(hub.FeedOptions{})
		onlyA := f.Subscribe(nil, hub.DeviceChannel("pi-a"))
		all := f.SubscribeAll(nil)
		evB := mustPublish(t, f, hub.EventReading, hub.DeviceChannel("pi-b"), 1)
		evA := mustPublish(t, f, hub.EventReading, hub.DeviceChannel("pi-a"), 2)
		if got := recv(t, onlyA); got != evA {
			t.Errorf("filtered subscriber got event %d on %s, want %d on %s", got.ID, got.Channel, evA.ID, evA.Channel)
		}
		noEvent(t, onlyA)
		for _, want := range []uint64{evB.ID, evA.ID} {
			if got := recv(t, all).ID; got != want {
				t.Errorf("unfiltered subscriber got id %d, want %d", got, want)
			}
		}
	})
	t.Run("join and leave", func(t *testing.T) {
		f := hub.NewFeed(hub.FeedOptions{})
		s := f.Subscribe(nil)
		chA := hub.DeviceChannel("pi-a")
		mustPublish(t, f, hub.EventReading, chA, 1)
		noEvent(t, s)
		f.Join(s, chA)
		if has, n := f.Joined(s, chA); !has || n != 1 {
			t.Errorf("Joined = %v, %d; want true, 1", has, n)
		}
		ev := mustPublish(t, f, hub.EventReading, chA, 2)
		if got := recv(t, s); got != ev {
			t.Fatalf("joined subscriber got event %d, want %d", got.ID, ev.ID)
		}
		f.Leave(s, chA)
		mustPublish(t, f, hub.EventReading, chA, 3)
		noEvent(t, s)
		f.Join(s, chA)
		f.Unsubscribe(s)
		before := f.Stats.Delivered.Load()
		mustPublish(t, f, hub.EventReading, chA, 4)
		if got := f.Stats.Delivered.Load(); got != before {
			t.Errorf("delivered %d events after the only subscriber left, want 0", got-before)
		}
	})
	t.Run("unencodable data is an error and uses no id", func(t *testing.T) {
		f := hub.NewFeed(hub.FeedOptions{})
		s := f.SubscribeAll(nil)
		before := f.LastID()
		if _, err := f.Publish(hub.EventStatus, hub.ChannelFleet, math.NaN()); err == nil {
			t.Error("Publish(NaN) succeeded, want an error")
		}
		if got := f.LastID(); got != before {
			t.Errorf("LastID() after a failed publish = %d, want %d", got, before)
		}
		noEvent(t, s)
	})
}

func TestFeed_slowSubscriber(t *testing.T) {
	f := hub.NewFeed(hub.FeedOptions{Behind: 2})
	slow := f.SubscribeAll(nil)
	fast := f.SubscribeAll(nil)
	base := f.LastID()
	for i := 1; i <= 5; i++ {
		ev := mustPublish(t, f, hub.EventStatus, hub.ChannelFleet, i)
		if got := recv(t, fast); got != ev {
			t.Fatalf("fast subscriber got event %d, want %d", got.ID, ev.ID)
		}
	}
	select {
	case <-slow.Done():
	default:
		t.Fatal("slow subscriber with a full buffer was not cut")
	}
	if got := slow.Reason(); !strings.Contains(got, "too slow") {
		t.Errorf("Reason() = %q, want it to say the client is too slow", got)
	}
	// What was buffered before the cut is still there, in order.
	for _, want := range []uint64{base + 1, base + 2} {
		if got := recv(t, slow).ID; got != want {
			t.Errorf("slow subscriber's buffered event id = %d, want %d", got, want)
		}
	}
	noEvent(t, slow)
	if got, want := f.Stats.Cut.Load(), uint64(1); got != want {
		t.Errorf("Cut() = %d, want %d", got, want)
	}
	if got, want := f.Subscribers(), 1; got != want {
		t.Errorf("Subscribers() = %d, want %d", got, want)
	}
	select {
	case <-fast.Done():
		t.Errorf("fast subscriber was cut: %s", fast.Reason())
	default:
	}
	// Unsubscribing a cut subscription keeps the reason it was cut for.
	f.Unsubscribe(slow)
	if got := slow.Reason(); !strings.Contains(got, "too slow") {
		t.Errorf("Reason() after Unsubscribe of a cut subscription = %q, want the cut reason", got)
	}
}

func TestFeed_Unsubscribe(t *testing.T) {
	f := hub.NewFeed(hub.FeedOptions{})
	s := f.SubscribeAll(nil)
	other := f.SubscribeAll(nil)
	f.Unsubscribe(s)
	f.Unsubscribe(s) // idempotent: must not panic on a closed done channel
	select {
	case <-s.Done():
	default:
		t.Fatal("Done() not closed after Unsubscribe")
	}
	if got, want := s.Reason(), "unsubscribed"; got != want {
		t.Errorf("Reason() = %q, want %q", got, want)
	}
	if got, want := f.Subscribers(), 1; got != want {
		t.Errorf("Subscribers() = %d, want %d", got, want)
	}
	mustPublish(t, f, hub.EventStatus, hub.ChannelFleet, 1)
	noEvent(t, s)
	recv(t, other)
	if got := f.Stats.Cut.Load(); got != 0 {
		t.Errorf("Cut() = %d after unsubscribing, want 0", got)
	}
}

func TestFeed_encodings(t *testing.T) {
	tests := []struct {
		name        string
		typ, ch     string
		data        any
		wantChannel bool
	}{
		{"reading", hub.EventReading, hub.DeviceChannel("pi-a"), map[string]any{"device": "pi-a", "seq": 41, "metrics": map[string]float64{"cpu.percent": 12.5}}, true},
		{"status", hub.EventStatus, hub.ChannelFleet, map[string]string{"device": "pi-a", "state": "offline", "reason": "lost"}, false},
		{"fleet", hub.EventFleet, hub.ChannelFleet, map[string]any{"version": 3, "devices": []any{}}, false},
		{"newlines and quotes in data", hub.EventStatus, hub.ChannelFleet, map[string]string{"note": "line1\nline2\r\n\"quoted\"\n\n"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := hub.NewFeed(hub.FeedOptions{})
			mustPublish(t, f, hub.EventStatus, hub.ChannelFleet, 0) // so the id is not 1
			ev := mustPublish(t, f, tt.typ, tt.ch, tt.data)
			want, _ := json.Marshal(tt.data)
			if !bytes.Equal(ev.Data, want) {
				t.Errorf("Data = %s, want %s", ev.Data, want)
			}

			t.Run("WS", func(t *testing.T) {
				var msg struct {
					Type    string          `json:"type"`
					Channel *string         `json:"channel"`
					ID      uint64          `json:"id"`
					Data    json.RawMessage `json:"data"`
				}
				if err := json.Unmarshal(ev.WS(), &msg); err != nil {
					t.Fatalf("WS frame %s is not JSON: %v", ev.WS(), err)
				}
				if msg.Type != tt.typ || msg.ID != ev.ID || !bytes.Equal(msg.Data, want) {
					t.Errorf("WS frame = type %q id %d data %s; want %q %d %s", msg.Type, msg.ID, msg.Data, tt.typ, ev.ID, want)
				}
				switch {
				case tt.wantChannel && (msg.Channel == nil || *msg.Channel != tt.ch):
					t.Errorf("WS frame %s: want channel %q", ev.WS(), tt.ch)
				case !tt.wantChannel && msg.Channel != nil:
					t.Errorf("WS frame %s has a channel, want none for %s events", ev.WS(), tt.typ)
				}
			})

			t.Run("SSE", func(t *testing.T) {
				sse := string(ev.SSE())
				body, ok := strings.CutSuffix(sse, "\n\n")
				if !ok || strings.Contains(body, "\n\n") || strings.Contains(body, "\r") {
					t.Fatalf("SSE event %q: want lines ending in exactly one blank line", sse)
				}
				lines := strings.Split(body, "\n")
				wantLines := []string{"id: " + strconv.FormatUint(ev.ID, 10), "event: " + tt.typ, "data: " + string(want)}
				if len(lines) != len(wantLines) {
					t.Fatalf("SSE event has lines %q, want %q", lines, wantLines)
				}
				for i := range lines {
					if lines[i] != wantLines[i] {
						t.Errorf("SSE line %d = %q, want %q", i, lines[i], wantLines[i])
					}
				}
			})
		})
	}
}

func TestDeviceChannel(t *testing.T) {
	if got, want := hub.DeviceChannel("pi-kitchen"), "device:pi-kitchen"; got != want {
		t.Errorf("DeviceChannel = %q, want %q", got, want)
	}
}

func TestPoint_MarshalJSON(t *testing.T) {
	tests := []struct {
		p    hub.Point
		want string
	}{
		{hub.Point{}, "[0,0]"},
		{hub.Point{TS: 1764368400123, Value: 12.5}, "[1764368400123,12.5]"},
		{hub.Point{TS: -7, Value: -0.25}, "[-7,-0.25]"},
		{hub.Point{TS: 1, Value: 1e21}, "[1,1e+21]"},
		{hub.Point{TS: 1, Value: 1e-7}, "[1,1e-7]"},
		{hub.Point{TS: math.MaxInt64, Value: 1}, "[9223372036854775807,1]"},
		{hub.Point{TS: math.MinInt64, Value: 1}, "[-9223372036854775808,1]"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			got, err := json.Marshal(tt.p)
			if err != nil {
				t.Fatalf("Marshal(%+v): %v", tt.p, err)
			}
			if string(got) != tt.want {
				t.Errorf("Marshal(%+v) = %s, want %s", tt.p, got, tt.want)
			}
		})
	}
}

// TestFeed_encodeOnce checks that the cost of a publish does not grow with
// the audience: the event is encoded once, whatever the number of subscribers.
func TestFeed_encodeOnce(t *testing.T) {
	allocs := func(subscribers int) float64 {
		f := hub.NewFeed(hub.FeedOptions{})
		subs := make([]*hub.Subscription, subscribers)
		for i := range subs {
			subs[i] = f.SubscribeAll(nil)
		}
		data := map[string]any{"device": "pi-a", "seq": 1, "metrics": map[string]float64{"cpu.percent": 1}}
		return testing.AllocsPerRun(100, func() {
			f.Publish(hub.EventReading, hub.DeviceChannel("pi-a"), data) //nolint:errcheck // encodable
			for _, s := range subs {
				if s.Pop() == nil {
					t.Fatal("a subscriber got nothing")
				}
			}
		})
	}
	one, hundred := allocs(1), allocs(100)
	if hundred > one {
		t.Errorf("allocations per publish: %v with 1 subscriber, %v with 100; want no growth", one, hundred)
	}
}

// BenchmarkFeed_Publish publishes a reading to 100 subscribers and takes it
// out of every subscriber's buffer.
func BenchmarkFeed_Publish(b *testing.B) {
	const subscribers = 100
	f := hub.NewFeed(hub.FeedOptions{})
	subs := make([]*hub.Subscription, subscribers)
	for i := range subs {
		subs[i] = f.SubscribeAll(nil)
	}
	metrics := map[string]float64{}
	for i := range 30 {
		metrics["bench.metric_"+strconv.Itoa(i)] = float64(i) * 1.5
	}
	data := map[string]any{"device": "pi-bench", "seq": 1, "ts": t0, "metrics": metrics}
	b.ReportAllocs()
	for b.Loop() {
		ev, err := f.Publish(hub.EventReading, hub.DeviceChannel("pi-bench"), data)
		if err != nil {
			b.Fatal(err)
		}
		for _, s := range subs {
			if got := s.Pop(); got != ev {
				b.Fatalf("subscriber got %v, want event %d", got, ev.ID)
			}
		}
	}
	if f.Stats.Cut.Load() != 0 {
		b.Fatalf("%d subscribers cut", f.Stats.Cut.Load())
	}
	b.ReportMetric(float64(b.N*subscribers)/b.Elapsed().Seconds(), "deliveries/s")
}
