package web_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fleetwatch/fleetwatch/hub"
	"github.com/fleetwatch/fleetwatch/hub/fleet"
	"github.com/fleetwatch/fleetwatch/hub/web"
)

// sseEvent is one block of an SSE stream, up to its blank line.
type sseEvent struct {
	ID, Event, Data, Retry string
	HasID                  bool
	Comments               []string
}

// openSSE opens /events and parses the stream into events, closing the
// channel when the stream ends. The first response is kept in resp.
func openSSE(t *testing.T, f *fixture) <-chan sseEvent {
	t.Helper()
	_, events := openSSEResp(t, f)
	return events
}

func openSSEResp(t *testing.T, f *fixture) (*http.Response, <-chan sseEvent) {
	t.Helper()
	return openSSEAt(t, f, "/events", nil)
}

// openSSEAt opens the stream at path (with query) sending header.
func openSSEAt(t *testing.T, f *fixture, path string, header http.Header) (*http.Response, <-chan sseEvent) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, f.srv.URL()+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatalf("GET /events: %v", err)
	}
	if resp.StatusCode != http.StatusOK {
		cancel()
		resp.Body.Close()
		t.Fatalf("GET /events = %d, want 200", resp.StatusCode)
	}
	events := make(chan sseEvent, 64)
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer close(events)
		sc := bufio.NewScanner(resp.Body)
		var ev sseEvent
		empty := true
		for sc.Scan() {
			line := sc.Text()
			if line == "" {
				if !empty {
					events <- ev
				}
				ev, empty = sseEvent{}, true
				continue
			}
			empty = false
			if c, ok := strings.CutPrefix(line, ":"); ok {
				ev.Comments = append(ev.Comments, strings.TrimSpace(c))
				continue
			}
			field, value, _ := strings.Cut(line, ":")
			value = strings.TrimPrefix(value, " ")
			switch field {
			case "id":
				ev.ID, ev.HasID = value, true
			case "event":
				ev.Event = value
			case "data":
				if ev.Data != "" {
					ev.Data += "\n"
				}
				ev.Data += value
			case "retry":
				ev.Retry = value
			}
		}
	}()
	t.Cleanup(func() {
		cancel()
		resp.Body.Close()
		<-done
	})
	return resp, events
}

// nextEvent returns the next event that is not only a comment.
func nextEvent(t *testing.T, events <-chan sseEvent) sseEvent {
	t.Helper()
	deadline := time.After(2 * time.Second)
	for {
		select {
		case ev, ok := <-events:
			if !ok {
				t.Fatal("SSE stream ended")
			}
			if ev.Event == "" && ev.Data == "" && !ev.HasID {
				continue // a heartbeat
			}
			return ev
		case <-deadline:
			t.Fatal("no SSE event within 2s")
		}
	}
}

func TestServer_sse(t *testing.T) {
	f := newFixture(t)
	f.readings(t, "pi-a", "b1", 1)
	resp, events := openSSEResp(t, f)

	for name, want := range map[string]string{
		"Content-Type":      "text/event-stream",
		"Cache-Control":     "no-cache",
		"X-Accel-Buffering": "no",
	} {
		if got := resp.Header.Get(name); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}

	first := nextEvent(t, events)
	if first.Event != "fleet" || !first.HasID {
		t.Fatalf("first event = %+v, want event: fleet with an id", first)
	}
	firstID, err := strconv.ParseUint(first.ID, 10, 64)
	if err != nil {
		t.Fatalf("first id %q: %v", first.ID, err)
	}
	if first.Retry == "" {
		t.Error("first event sets no retry")
	}
	var snap fleet.Snapshot
	if err := json.Unmarshal([]byte(first.Data), &snap); err != nil || len(snap.Devices) != 1 || snap.Devices[0].ID != "pi-a" {
		t.Errorf("first event data = %s, want the fleet with pi-a (%v)", first.Data, err)
	}

	// Events published after the snapshot follow, with their ids.
	prev := firstID
	for i, data := range []map[string]string{
		{"device": "pi-a", "state": "offline", "reason": "lost"},
		{"device": "pi-a", "state": "online"},
	} {
		ev := mustPublish(t, f, hub.EventStatus, hub.ChannelFleet, data)
		got := nextEvent(t, events)
		if got.Event != hub.EventStatus || got.ID != strconv.FormatUint(ev.ID, 10) || got.Data != string(ev.Data) {
			t.Errorf("event %d = %+v, want status id %d data %s", i, got, ev.ID, ev.Data)
		}
		if ev.ID <= prev {
			t.Errorf("event %d id %d, want > %d", i, ev.ID, prev)
		}
		prev = ev.ID
	}

	// A reading from MQTT arrives as a reading event.
	f.readings(t, "pi-a", "b1", 2)
	got := nextEvent(t, events)
	var r struct {
		Device string `json:"device"`
		Seq    uint64 `json:"seq"`
	}
	if err := json.Unmarshal([]byte(got.Data), &r); got.Event != hub.EventReading || err != nil || r.Device != "pi-a" || r.Seq != 2 {
		t.Errorf("event = %+v, want a reading of pi-a seq 2", got)
	}
}

func TestServer_sseHeartbeat(t *testing.T) {
	f := newFixture(t, func(s *web.Server) { s.Heartbeat = 50 * time.Millisecond })
	events := openSSE(t, f)
	if ev := nextEvent(t, events); ev.Event != "fleet" {
		t.Fatalf("first event = %+v, want fleet", ev)
	}
	select {
	case ev, ok := <-events:
		if !ok {
			t.Fatal("SSE stream ended")
		}
		if len(ev.Comments) != 1 || ev.Comments[0] != "heartbeat" || ev.Event != "" || ev.Data != "" {
			t.Errorf("got %+v, want a heartbeat comment alone", ev)
		}
	case <-time.After(time.Second):
		t.Fatal("no heartbeat within 1s (Heartbeat is 50ms)")
	}
}
