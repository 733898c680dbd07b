package web_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fleetwatch/fleetwatch/hub"
	"github.com/fleetwatch/fleetwatch/hub/web"
)

// publishReadings puts n reading events of device on the feed and returns
// their ids.
func publishReadings(t *testing.T, f *fixture, device string, n int) []uint64 {
	t.Helper()
	var ids []uint64
	for i := range n {
		ev := mustPublish(t, f, hub.EventReading, hub.DeviceChannel(device), map[string]any{"device": device, "seq": i + 1})
		ids = append(ids, ev.ID)
	}
	return ids
}

func TestServer_wsResume(t *testing.T) {
	f := newFixture(t)
	ids := publishReadings(t, f, "pi-a", 5)
	publishReadings(t, f, "pi-b", 2) // another channel: not replayed

	c := dialWS(t, f, nil)
	wsSend(t, c, fmt.Sprintf(`{"type":"subscribe","channel":"device:pi-a","since":%d}`, ids[1]))
	wsExpect(t, c, "subscribed", "device:pi-a")
	for _, want := range ids[2:] {
		if m := wsExpect(t, c, "reading", "device:pi-a"); m.ID != want {
			t.Fatalf("replayed id %d, want %d", m.ID, want)
		}
	}
	live := publishReadings(t, f, "pi-a", 1)[0]
	if m := wsExpect(t, c, "reading", "device:pi-a"); m.ID != live {
		t.Fatalf("live id %d, want %d", m.ID, live)
	}
	// 3 replayed and 1 live event were timed (the reply is not an event).
	waitDelivered(t, f, "ws", 4)

	t.Run("too old: reset, then a fresh snapshot", func(t *testing.T) {
		c := dialWS(t, f, nil)
		wsSend(t, c, `{"type":"subscribe","channel":"fleet","since":1}`)
		wsExpect(t, c, "subscribed", "fleet")
		if m := wsExpect(t, c, "reset", "fleet"); m.ID < live {
			t.Errorf("reset id %d, want the newest id (≥ %d)", m.ID, live)
		}
		wsExpect(t, c, "fleet", "")
	})
}

func TestServer_sseResume(t *testing.T) {
	f := newFixture(t)
	ids := publishReadings(t, f, "pi-a", 4)
	publishReadings(t, f, "pi-b", 1)
	tests := []struct {
		name   string
		path   string
		header http.Header
	}{
		{"Last-Event-ID header", "/events?channels=device:pi-a", http.Header{"Last-Event-Id": {strconv.FormatUint(ids[0], 10)}}},
		{"lastEventId query", "/events?device=pi-a&lastEventId=" + strconv.FormatUint(ids[0], 10), nil},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, events := openSSEAt(t, f, tt.path, tt.header)
			for _, want := range ids[1:] {
				ev := nextEvent(t, events)
				if ev.Event != "reading" || ev.ID != strconv.FormatUint(want, 10) {
					t.Fatalf("got %s %s, want reading %d", ev.Event, ev.ID, want)
				}
			}
			waitDelivered(t, f, "sse", 3*(i+1))
		})
	}
	t.Run("too old: reset", func(t *testing.T) {
		_, events := openSSEAt(t, f, "/events?channels=fleet,device:pi-a&lastEventId=5", nil)
		if ev := nextEvent(t, events); ev.Event != "reset" || ev.Retry == "" {
			t.Fatalf("first event %+v, want reset with retry:", ev)
		}
		if ev := nextEvent(t, events); ev.Event != "fleet" {
			t.Fatalf("then %+v, want a fresh fleet snapshot", ev)
		}
	})
	t.Run("filters", func(t *testing.T) {
		_, events := openSSEAt(t, f, "/events?channels=device:pi-b", nil)
		publishReadings(t, f, "pi-a", 1)
		want := publishReadings(t, f, "pi-b", 1)[0]
		if ev := nextEvent(t, events); ev.ID != strconv.FormatUint(want, 10) {
			t.Fatalf("got %s %s, want only pi-b's reading %d", ev.Event, ev.ID, want)
		}
	})
	t.Run("bad parameters", func(t *testing.T) {
		for _, path := range []string{"/events?channels=nope", "/events?device=bad%20id", "/events?lastEventId=x"} {
			resp, body := f.get(t, path)
			wantJSONError(t, resp, body, http.StatusBadRequest)
		}
	})
}

type pollResp struct {
	Events []struct {
		ID      uint64          `json:"id"`
		Type    string          `json:"type"`
		Channel string          `json:"channel"`
		Data    json.RawMessage `json:"data"`
	} `json:"events"`
	LastID uint64 `json:"last_id"`
	Reset  bool   `json:"reset"`
}

func poll(t *testing.T, f *fixture, query string) (pollResp, time.Duration) {
	t.Helper()
	start := time.Now()
	resp, body := f.get(t, "/api/v1/poll?"+query)
	wantStatus(t, resp, body, http.StatusOK)
	var p pollResp
	if err := json.Unmarshal(body, &p); err != nil {
		t.Fatalf("poll body %s: %v", body, err)
	}
	return p, time.Since(start)
}

func TestServer_poll(t *testing.T) {
	f := newFixture(t)
	start, _ := poll(t, f, "")
	ids := publishReadings(t, f, "pi-a", 3)

	t.Run("returns at once when events wait", func(t *testing.T) {
		p, took := poll(t, f, fmt.Sprintf("since=%d&timeout=10s&device=pi-a", start.LastID))
		if len(p.Events) != 3 || p.Events[0].ID != ids[0] || p.LastID != ids[2] || took > 2*time.Second {
			t.Fatalf("poll = %+v after %v, want the 3 events at once", p, took)
		}
	})
	t.Run("holds until an event arrives", func(t *testing.T) {
		var want uint64
		var wg sync.WaitGroup
		wg.Go(func() {
			time.Sleep(300 * time.Millisecond)
			want = publishReadings(t, f, "pi-a", 1)[0]
		})
		p, took := poll(t, f, fmt.Sprintf("since=%d&timeout=10s&channels=device:pi-a", ids[2]))
		wg.Wait()
		if len(p.Events) != 1 || p.Events[0].ID != want || took < 250*time.Millisecond || took > 5*time.Second {
			t.Fatalf("poll = %+v after %v, want the one event after ~300 ms", p, took)
		}
	})
	t.Run("returns empty at the timeout", func(t *testing.T) {
		last := f.srv.Feed.LastID()
		p, took := poll(t, f, fmt.Sprintf("since=%d&timeout=300ms&device=pi-zz", last))
		if len(p.Events) != 0 || took < 250*time.Millisecond || took > 3*time.Second {
			t.Fatalf("poll = %+v after %v, want no events after 300 ms", p, took)
		}
	})
	t.Run("too old: reset", func(t *testing.T) {
		p, _ := poll(t, f, "since=1&timeout=0s")
		if !p.Reset {
			t.Fatalf("poll = %+v, want reset", p)
		}
	})
	t.Run("bad parameters", func(t *testing.T) {
		for _, q := range []string{"since=x", "since=1&timeout=2h", "since=1&timeout=-1s", "since=1&channels=bogus"} {
			resp, body := f.get(t, "/api/v1/poll?"+q)
			wantJSONError(t, resp, body, http.StatusBadRequest)
		}
	})
}

func TestServer_limits(t *testing.T) {
	f := newFixture(t, func(s *web.Server) { s.MaxConns, s.MaxConnsPerIP = 3, 2 })
	openSSEAt(t, f, "/events", nil)
	openSSEAt(t, f, "/events", nil)
	// Two streams from 127.0.0.1: a third from the same address is 429.
	resp, body := f.get(t, "/events")
	wantJSONError(t, resp, body, http.StatusTooManyRequests)
	if resp.Header.Get("Retry-After") == "" {
		t.Error("429 without Retry-After")
	}
	// Behind a proxy on the same host, the forwarded address counts.
	openSSEAt(t, f, "/events", http.Header{"X-Forwarded-For": {"192.0.2.7"}})
	resp, body = f.get(t, "/events", "X-Forwarded-For", "192.0.2.8")
	wantJSONError(t, resp, body, http.StatusServiceUnavailable)
	if resp.Header.Get("Retry-After") == "" {
		t.Error("503 without Retry-After")
	}
	resp, body = f.get(t, "/api/v1/stats")
	wantStatus(t, resp, body, http.StatusOK)
	if !strings.Contains(string(body), `"sse":3`) || !strings.Contains(string(body), `"per_ip":1`) || !strings.Contains(string(body), `"hub_full":1`) {
		t.Errorf("stats = %s, want 3 SSE connections and one refusal of each kind", body)
	}
}

// A client may send many subscribes before reading: the replies wait for
// it instead of overflowing the session's buffer.
func TestServer_wsSubscribeStorm(t *testing.T) {
	f := newFixture(t)
	c := dialWS(t, f, nil)
	const n = 300
	for i := range n {
		wsSend(t, c, fmt.Sprintf(`{"type":"subscribe","channel":"device:pi-%03d"}`, i))
	}
	for i := range n {
		wsExpect(t, c, "subscribed", fmt.Sprintf("device:pi-%03d", i))
	}
}

// waitDelivered waits until /metrics has timed want live deliveries on
// transport tr: the delivery histogram counts what reached the socket.
func waitDelivered(t *testing.T, f *fixture, tr string, want int) {
	t.Helper()
	line := `fleetwatch_live_delivery_seconds_count{transport="` + tr + `"} `
	var got string
	for range 100 {
		_, body := f.get(t, "/metrics")
		for l := range strings.SplitSeq(string(body), "\n") {
			if v, ok := strings.CutPrefix(l, line); ok {
				got = v
			}
		}
		if got == strconv.Itoa(want) {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Errorf("%s deliveries timed = %s, want %d", tr, got, want)
}
