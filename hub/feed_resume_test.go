package hub_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/fleetwatch/fleetwatch/hub"
)

func TestFeed_Resume(t *testing.T) {
	f := hub.NewFeed(hub.FeedOptions{RingEvents: 8})
	var evs []*hub.Event
	for i := range 6 {
		dev := []string{"pi-a", "pi-b"}[i%2]
		evs = append(evs, mustPublish(t, f, hub.EventReading, hub.DeviceChannel(dev), i))
	}
	onlyA := hub.DeviceChannel("pi-a")
	tests := []struct {
		name      string
		since     uint64
		channel   string
		want      []*hub.Event
		wantReset bool
	}{
		{"exactly the missed events", evs[2].ID, "", evs[3:], false},
		{"only the channel asked", evs[0].ID, onlyA, []*hub.Event{evs[2], evs[4]}, false},
		{"up to date: nothing", evs[5].ID, "", nil, false},
		{"from the oldest kept", evs[0].ID - 1, "", evs, false},
		{"older than the ring: reset", evs[0].ID - 2, "", nil, true},
		{"from the future (a previous run): reset", evs[5].ID + 100, "", nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := f.SubscribeAll(nil)
			defer f.Unsubscribe(s)
			if got := f.Resume(s, tt.since, tt.channel); got != tt.wantReset {
				t.Fatalf("Resume(%d) reset = %v, want %v", tt.since, got, tt.wantReset)
			}
			for _, want := range tt.want {
				if got := recv(t, s); got != want {
					t.Fatalf("replayed event %d, want %d", got.ID, want.ID)
				}
			}
			noEvent(t, s)
		})
	}
	t.Run("nothing falls between the replay and live", func(t *testing.T) {
		s := f.Subscribe(nil)
		defer f.Unsubscribe(s)
		f.Resume(s, evs[3].ID, hub.DeviceChannel("pi-a"))
		live := mustPublish(t, f, hub.EventReading, hub.DeviceChannel("pi-a"), 99)
		for _, want := range []*hub.Event{evs[4], live} {
			if got := recv(t, s); got != want {
				t.Fatalf("got event %d, want %d", got.ID, want.ID)
			}
		}
	})
	t.Run("the ring is bounded by bytes too", func(t *testing.T) {
		g := hub.NewFeed(hub.FeedOptions{RingEvents: 1000, RingBytes: 4096})
		for i := range 200 {
			mustPublish(t, g, hub.EventReading, hub.DeviceChannel("pi-a"), strings.Repeat("x", i%50))
		}
		n, bytes, _ := g.RingSpan(0)
		if bytes > 4096 || n == 0 || n >= 200 {
			t.Errorf("ring holds %d events in %d bytes, want ≤ 4096 bytes", n, bytes)
		}
	})
}

func TestFeed_coalesce(t *testing.T) {
	f := hub.NewFeed(hub.FeedOptions{Behind: 100})
	s := f.SubscribeAll(nil)
	// A client that stopped reading: the first CoalesceFrom events queue
	// as they are; past that a newer reading of a device replaces its
	// pending one, and alerts never do.
	var last = map[string]*hub.Event{}
	for i := range 10 * hub.CoalesceFrom {
		dev := fmt.Sprintf("pi-%d", i%4)
		last[dev] = mustPublish(t, f, hub.EventReading, hub.DeviceChannel(dev), i)
	}
	alert := mustPublish(t, f, hub.EventAlert, hub.ChannelAlerts, 1)
	if got := f.Stats.Coalesced.Load(); got == 0 {
		t.Fatal("nothing coalesced")
	}
	var got []*hub.Event
	for ev := s.Pop(); ev != nil; ev = s.Pop() {
		got = append(got, ev)
	}
	if len(got) > hub.CoalesceFrom+5 {
		t.Errorf("%d events pending after coalescing, want about %d", len(got), hub.CoalesceFrom+5)
	}
	for i := 1; i < len(got); i++ {
		if got[i].ID <= got[i-1].ID {
			t.Fatalf("event %d after %d: ids must stay increasing", got[i].ID, got[i-1].ID)
		}
	}
	tail := map[string]*hub.Event{}
	for _, ev := range got {
		tail[ev.Channel] = ev
	}
	for dev, want := range last {
		if tail[hub.DeviceChannel(dev)] != want {
			t.Errorf("%s: the newest reading %d was not delivered", dev, want.ID)
		}
	}
	if got[len(got)-1] != alert {
		t.Errorf("last event %d, want the alert %d", got[len(got)-1].ID, alert.ID)
	}
	select {
	case <-s.Done():
		t.Fatalf("coalescing subscriber was cut: %s", s.Reason())
	default:
	}
}

func TestFeed_cutWhenStaysBehind(t *testing.T) {
	f := hub.NewFeed(hub.FeedOptions{Behind: 50})
	s := f.SubscribeAll(nil)
	for i := range 60 { // alerts are never coalesced
		mustPublish(t, f, hub.EventAlert, hub.ChannelAlerts, i)
	}
	select {
	case <-s.Done():
	default:
		t.Fatal("a subscriber 60 events behind with a limit of 50 was not cut")
	}
	if r := s.Reason(); !strings.Contains(r, "more than 50 events behind") {
		t.Errorf("Reason() = %q, want it to say how far behind", r)
	}
}
