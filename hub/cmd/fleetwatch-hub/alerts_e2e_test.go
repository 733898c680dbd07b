package main_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/fleetwatch/fleetwatch/agent/mqttpub/mosquittotest"
)

// hook is a local webhook receiver: every request it got, by path.
type hook struct {
	srv  *httptest.Server
	mu   sync.Mutex
	reqs []hookReq
}

type hookReq struct {
	Path, ContentType, Title string
	Body                     string
}

func newHook(t *testing.T) *hook {
	h := &hook{}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		h.mu.Lock()
		h.reqs = append(h.reqs, hookReq{Path: r.URL.Path, ContentType: r.Header.Get("Content-Type"), Title: r.Header.Get("Title"), Body: string(b)})
		h.mu.Unlock()
	}))
	t.Cleanup(h.srv.Close)
	return h
}

// count returns how many requests to path contain every one of parts.
func (h *hook) count(path string, parts ...string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
next:
	for _, r := range h.reqs {
		if r.Path != path {
			continue
		}
		for _, p := range parts {
			if !strings.Contains(r.Body+r.Title, p) {
				continue next
			}
		}
		n++
	}
	return n
}

// TestAlerts_EndToEnd: a simulated device crosses a threshold and comes
// back; a real agent is SIGKILLed (offline, lost: the offline rule fires)
// and later stopped cleanly (offline, shutdown: nothing fires). A WS
// client, an SSE client and three webhook formats see it all.
func TestAlerts_EndToEnd(t *testing.T) {
	broker := mosquittotest.Start(t)
	httpAddr := freeAddr(t)
	base := "http://" + httpAddr
	hk := newHook(t)
	cfg := filepath.Join(t.TempDir(), "hub.yaml")
	yaml := fmt.Sprintf(`alerts:
  every: 100ms
  builtin:
    device_offline: {for: 1s}
  rules:
    - name: sim_hot
      metric: sim.temp
      op: ">"
      warn: 50
      crit: 80
      clear: 40
      for: 300ms
  webhooks:
    - {name: generic, url: "%[1]s/json", format: json, repeat: 500ms}
    - {name: phone, url: "%[1]s/ntfy", format: ntfy, repeat: -1s}
    - {name: chat, url: "%[1]s/slack", format: slack, repeat: -1s}
`, hk.srv.URL)
	if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	startProc(t, "fleetwatch-hub", "--config", cfg, "--broker", broker.URL(), "--http", httpAddr, "--data", t.TempDir(), "--commit-interval", "50ms")
	waitHealthy(t, base)

	ws := dialWS(t, base)
	ws.send(t, map[string]string{"type": "subscribe", "channel": "alerts"})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sse := readSSE(ctx, t, base+"/events?channels=alerts")
	alertOn := func(rule, device, state string) func(map[string]any) bool {
		return func(m map[string]any) bool {
			d, _ := m["data"].(map[string]any)
			return m["type"] == "alert" && d["rule"] == rule && d["device"] == device && d["state"] == state
		}
	}

	// A simulated device publishing sim.temp every 100 ms.
	temp := driveDevice(t, broker.URL(), "sim-hot", 100*time.Millisecond, 20)

	var hotID string
	t.Run("ThresholdFiresAndResolves", func(t *testing.T) {
		time.Sleep(time.Second) // below the level: nothing
		temp.Store(60)
		m := ws.waitFor(t, 10*time.Second, "sim_hot firing", alertOn("sim_hot", "sim-hot", "firing"))
		d := m["data"].(map[string]any)
		if d["severity"] != "warning" {
			t.Errorf("severity %v, want warning at 60 (warn 50, crit 80)", d["severity"])
		}
		hotID = d["id"].(string)
		eventually(t, 5*time.Second, "a repeat while firing (every 500 ms)", func() error {
			if hk.count("/json", `"repeat":true`, hotID) == 0 {
				return fmt.Errorf("none yet")
			}
			return nil
		})

		var listed struct{ Alerts []map[string]any }
		if code, _, err := getJSON(base+"/api/v1/alerts?state=firing", &listed); err != nil || code != 200 || len(listed.Alerts) != 1 || listed.Alerts[0]["id"] != hotID {
			t.Errorf("GET alerts?state=firing = %d %+v (%v), want %s", code, listed, err, hotID)
		}
		resp, err := http.Post(base+"/api/v1/alerts/"+hotID+"/ack", "", nil)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("ack: %v %v", resp, err)
		}
		resp.Body.Close()
		ws.waitFor(t, 5*time.Second, "the ack broadcast", func(m map[string]any) bool {
			d, _ := m["data"].(map[string]any)
			return m["type"] == "alert" && d["id"] == hotID && d["acked_at"] != nil
		})

		temp.Store(45) // under warn, over clear: still firing
		time.Sleep(time.Second)
		temp.Store(30)
		ws.waitFor(t, 10*time.Second, "sim_hot resolved", alertOn("sim_hot", "sim-hot", "resolved"))
	})

	t.Run("SSESeesAlerts", func(t *testing.T) {
		deadline := time.After(5 * time.Second)
		for {
			select {
			case ev := <-sse:
				if ev.Event == "alert" && strings.Contains(ev.Data, hotID) && ev.ID != "" {
					return
				}
			case <-deadline:
				t.Fatal("no SSE alert event within 5s")
			}
		}
	})

	t.Run("Webhooks", func(t *testing.T) {
		eventually(t, 10*time.Second, "every receiver got firing and resolved", func() error {
			for _, c := range []struct {
				path  string
				parts []string
			}{
				{"/json", []string{`"status":"firing"`, hotID}},
				{"/json", []string{`"status":"resolved"`, hotID}},
				{"/ntfy", []string{"FIRING", "sim_hot"}},
				{"/ntfy", []string{"RESOLVED", "sim_hot"}},
				{"/slack", []string{"FIRING", "sim-hot"}},
				{"/slack", []string{"RESOLVED", "sim-hot"}},
			} {
				if hk.count(c.path, c.parts...) == 0 {
					return fmt.Errorf("%s got nothing with %q", c.path, c.parts)
				}
			}
			return nil
		})
		// One resolved message per receiver, however long we wait.
		time.Sleep(700 * time.Millisecond)
		for _, p := range []string{"/ntfy", "/slack"} {
			if n := hk.count(p, "RESOLVED"); n != 1 {
				t.Errorf("%s got %d resolved messages, want 1", p, n)
			}
		}
		if n := hk.count("/json", `"status":"resolved"`, hotID); n != 1 {
			t.Errorf("/json got %d resolved messages, want 1", n)
		}
		// Acknowledged, it was not repeated again (at most one repeat
		// queued before the ack).
		if n := hk.count("/json", `"repeat":true`, hotID); n > 2 {
			t.Errorf("/json got %d repeats, want them to stop at the ack", n)
		}
	})

	t.Run("KilledAgentIsLostAndFires", func(t *testing.T) {
		agent := startProc(t, "fleetwatch-agent", "--broker", broker.URL(), "--device", "e2e-lost", "--interval", "200ms")
		waitState(t, base, "e2e-lost", "online", "")
		agent.signal(syscall.SIGKILL)
		waitState(t, base, "e2e-lost", "offline", "lost")
		m := ws.waitFor(t, 10*time.Second, "device_offline firing", alertOn("device_offline", "e2e-lost", "firing"))
		if d := m["data"].(map[string]any); d["severity"] != "critical" {
			t.Errorf("severity %v, want critical", d["severity"])
		}
		eventually(t, 5*time.Second, "webhook for the lost device", func() error {
			if hk.count("/json", `"status":"firing"`, `"rule":"device_offline"`, "e2e-lost") == 0 {
				return fmt.Errorf("not yet")
			}
			return nil
		})
		// It comes back: the alert resolves.
		agent = startProc(t, "fleetwatch-agent", "--broker", broker.URL(), "--device", "e2e-lost", "--interval", "200ms")
		ws.waitFor(t, 10*time.Second, "device_offline resolved", alertOn("device_offline", "e2e-lost", "resolved"))

		// A clean stop is offline(shutdown): nothing fires.
		agent.signal(syscall.SIGTERM)
		waitState(t, base, "e2e-lost", "offline", "shutdown")
		time.Sleep(2 * time.Second) // twice the rule's for
		var listed struct{ Alerts []map[string]any }
		if _, _, err := getJSON(base+"/api/v1/alerts?state=firing&device=e2e-lost", &listed); err != nil || len(listed.Alerts) != 0 {
			t.Errorf("firing after a clean stop: %+v (%v), want none", listed.Alerts, err)
		}

		var tl struct{ Events []map[string]any }
		if _, _, err := getJSON(base+"/api/v1/devices/e2e-lost/events", &tl); err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, e := range tl.Events {
			got = append(got, fmt.Sprint(e["state"], "/", e["reason"]))
		}
		want := "offline/shutdown online/<nil> offline/lost online/<nil>"
		if strings.Join(got, " ") != want {
			t.Errorf("timeline, newest first = %q, want %q", strings.Join(got, " "), want)
		}
	})
}

// waitState waits until the hub reports device in state (and reason).
func waitState(t *testing.T, base, device, state, reason string) {
	t.Helper()
	eventually(t, 10*time.Second, device+" "+state+" "+reason, func() error {
		var d struct{ State, Reason string }
		if _, _, err := getJSON(base+"/api/v1/devices/"+device, &d); err != nil {
			return err
		}
		if d.State != state || d.Reason != reason {
			return fmt.Errorf("state %s (%s)", d.State, d.Reason)
		}
		return nil
	})
}
