package main_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fleetwatch/fleetwatch/agent/mqttpub/mosquittotest"
	"github.com/fleetwatch/fleetwatch/agent/telemetry"
)

// TestEndToEnd_Mosquitto runs the thin path with real processes: a spawned
// mosquitto, the hub binary and the agent binary.
func TestEndToEnd_Mosquitto(t *testing.T) {
	broker := mosquittotest.Start(t)
	httpAddr := freeAddr(t)
	thinPath(t, broker.URL(), httpAddr, []string{"--broker", broker.URL(), "--http", httpAddr, "--data", t.TempDir(), "--commit-interval", "50ms"})
}

// TestEndToEnd_EmbeddedBroker runs the same path with no external broker:
// the hub's embedded broker takes the agent's connection, and dies and
// comes back with the hub.
func TestEndToEnd_EmbeddedBroker(t *testing.T) {
	httpAddr, mqttAddr := freeAddr(t), freeAddr(t)
	thinPath(t, "tcp://"+mqttAddr, httpAddr, []string{"--http", httpAddr, "--mqtt-listen", mqttAddr, "--data", t.TempDir(), "--commit-interval", "50ms"})
}

// thinPath: agent publishes → WS subscriber sees the reading → SSE client
// sees fleet → REST fleet with ETag/304 → acks arrive → malformed payloads
// are rejected and counted while valid ones flow → the hub is SIGKILLed and
// restarted and keeps its history → a clean agent stop is offline(shutdown).
func thinPath(t *testing.T, brokerURL, httpAddr string, hubArgs []string) {
	base := "http://" + httpAddr
	hub := startProc(t, "fleetwatch-hub", hubArgs...)
	waitHealthy(t, base)

	obs := observe(t, brokerURL, "fleetwatch/#")
	ws := dialWS(t, base)
	ws.send(t, map[string]string{"type": "subscribe", "channel": "device:e2e-agent"})
	ws.send(t, map[string]string{"type": "subscribe", "channel": "fleet"})
	ws.waitFor(t, 5*time.Second, "subscribed", func(m map[string]any) bool {
		return m["type"] == "subscribed" && m["channel"] == "device:e2e-agent"
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sse := readSSE(ctx, t, base+"/events")

	agent := startProc(t, "fleetwatch-agent", "--broker", brokerURL, "--device", "e2e-agent", "--interval", "200ms")

	t.Run("WebSocketSeesReading", func(t *testing.T) {
		m := ws.waitFor(t, 10*time.Second, "reading", func(m map[string]any) bool { return m["type"] == "reading" })
		if got, want := m["channel"], "device:e2e-agent"; got != want {
			t.Fatalf("channel=%v, want %v", got, want)
		}
		data := m["data"].(map[string]any)
		metrics := data["metrics"].(map[string]any)
		if _, ok := metrics["cpu.percent"]; !ok {
			t.Fatalf("reading has no cpu.percent: %v", metrics)
		}
		if seq, _ := data["seq"].(float64); seq < 1 {
			t.Fatalf("seq=%v, want ≥ 1", data["seq"])
		}
	})

	t.Run("SSESeesFleet", func(t *testing.T) {
		deadline := time.After(10 * time.Second)
		for {
			select {
			case ev, ok := <-sse:
				if !ok {
					t.Fatal("sse stream ended")
				}
				if ev.ID == "" {
					t.Fatalf("event %q has no id", ev.Event)
				}
				if ev.Event == "fleet" && strings.Contains(ev.Data, `"id":"e2e-agent"`) {
					return
				}
			case <-deadline:
				t.Fatal("no fleet event listing e2e-agent within 10s")
			}
		}
	})

	t.Run("FleetETag", func(t *testing.T) {
		eventually(t, 10*time.Second, "304 on If-None-Match", func() error {
			resp, err := http.Get(base + "/api/v1/fleet")
			if err != nil {
				return err
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			tag := resp.Header.Get("ETag")
			if !strings.HasPrefix(tag, `"`) {
				return fmt.Errorf("ETag %q is not a strong validator", tag)
			}
			req, _ := http.NewRequest(http.MethodGet, base+"/api/v1/fleet", nil)
			req.Header.Set("If-None-Match", tag)
			resp, err = http.DefaultClient.Do(req)
			if err != nil {
				return err
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusNotModified {
				return fmt.Errorf("status %d (the fleet changed in between?)", resp.StatusCode)
			}
			return nil
		})
	})

	var acked uint64
	var boot string
	t.Run("AcksArrive", func(t *testing.T) {
		eventually(t, 10*time.Second, "ack with seq ≥ 5", func() error {
			msgs := obs.messages("fleetwatch/e2e-agent/ack")
			if len(msgs) == 0 {
				return fmt.Errorf("no ack yet")
			}
			a, err := telemetry.DecodeAck(msgs[len(msgs)-1])
			if err != nil {
				return err
			}
			if a.Seq < 5 {
				return fmt.Errorf("ack seq %d", a.Seq)
			}
			acked, boot = a.Seq, a.Boot
			return nil
		})
		st := obs.messages("fleetwatch/e2e-agent/status")
		if len(st) == 0 {
			t.Fatal("no status message seen")
		}
		status, err := telemetry.DecodeStatus(st[0])
		if err != nil {
			t.Fatal(err)
		}
		if got, want := status.Boot, boot; got != want {
			t.Fatalf("ack boot=%q, want the online status boot %q", got, want)
		}
	})

	t.Run("MalformedRejectedValidFlows", func(t *testing.T) {
		bad := map[string]string{
			"fleetwatch/bad-json/telemetry": `{"v":1,"device":`,
			"fleetwatch/bad-dev/telemetry":  `{"v":1,"device":"other","boot":"b","readings":[{"seq":1,"ts":1,"metrics":{"x":1}}]}`,
			"fleetwatch/bad-name/telemetry": `{"v":1,"device":"bad-name","boot":"b","readings":[{"seq":1,"ts":1,"metrics":{"Bad Name":1}}]}`,
			"fleetwatch/bad-val/telemetry":  `{"v":1,"device":"bad-val","boot":"b","readings":[{"seq":1,"ts":1,"metrics":{"x":null}}]}`,
		}
		for topic, payload := range bad {
			obs.publish(t, topic, []byte(payload))
		}
		eventually(t, 5*time.Second, "rejections counted", func() error {
			resp, err := http.Get(base + "/metrics")
			if err != nil {
				return err
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			for _, want := range []string{
				`fleetwatch_messages_rejected_total{reason="bad_json"} 1`,
				`fleetwatch_messages_rejected_total{reason="device_mismatch"} 1`,
				`fleetwatch_messages_rejected_total{reason="bad_metric_name"} 1`,
				`fleetwatch_messages_rejected_total{reason="no_metrics"} 0`,
			} {
				if !strings.Contains(string(body), want) {
					return fmt.Errorf("metrics lack %q", want)
				}
			}
			if !strings.Contains(string(body), `fleetwatch_messages_rejected_total{reason="bad_value"} 1`) {
				return fmt.Errorf("metrics lack bad_value")
			}
			return nil
		})
		for _, id := range []string{"bad-json", "bad-dev", "bad-name", "bad-val"} {
			code, _, err := getJSON(base+"/api/v1/devices/"+id, nil)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := code, http.StatusNotFound; got != want {
				t.Fatalf("device %s: status=%d, want %d (rejected messages must create no device)", id, got, want)
			}
		}
		// Valid readings still flow.
		before := acked
		eventually(t, 5*time.Second, "acks keep advancing", func() error {
			msgs := obs.messages("fleetwatch/e2e-agent/ack")
			a, err := telemetry.DecodeAck(msgs[len(msgs)-1])
			if err != nil {
				return err
			}
			if a.Seq <= before+2 {
				return fmt.Errorf("ack seq %d, was %d", a.Seq, before)
			}
			acked = a.Seq
			return nil
		})
	})

	outer := t
	t.Run("HubSIGKILLKeepsHistory", func(t *testing.T) {
		ackedBefore := acked
		if !hub.signal(syscall.SIGKILL) {
			t.Fatal("hub did not die")
		}
		hub2 := startProc(outer, "fleetwatch-hub", hubArgs...)
		waitHealthy(t, base)
		var h struct {
			Device string       `json:"device"`
			Metric string       `json:"metric"`
			Points [][2]float64 `json:"points"`
		}
		code, _, err := getJSON(base+"/api/v1/devices/e2e-agent/history?metric=cpu.percent&from=-10m", &h)
		if err != nil || code != http.StatusOK {
			t.Fatalf("history: %d %v", code, err)
		}
		if got, want := len(h.Points), int(ackedBefore); got < want {
			t.Fatalf("history after SIGKILL has %d points, want ≥ %d (every acked reading)", got, want)
		}
		for i := 1; i < len(h.Points); i++ {
			if h.Points[i][0] <= h.Points[i-1][0] {
				t.Fatalf("points not ascending at %d: %v then %v", i, h.Points[i-1], h.Points[i])
			}
		}
		// The restarted hub keeps acking the same boot: nothing was lost.
		eventually(t, 10*time.Second, "acks after restart", func() error {
			msgs := obs.messages("fleetwatch/e2e-agent/ack")
			a, err := telemetry.DecodeAck(msgs[len(msgs)-1])
			if err != nil {
				return err
			}
			if a.Boot != boot || a.Seq <= ackedBefore+3 {
				return fmt.Errorf("last ack %+v", a)
			}
			return nil
		})
		hub = hub2
	})

	t.Run("CleanStopIsOfflineShutdown", func(t *testing.T) {
		if !agent.signal(syscall.SIGTERM) {
			t.Fatal("agent did not stop on SIGTERM")
		}
		eventually(t, 10*time.Second, "device offline(shutdown)", func() error {
			var d struct{ State, Reason string }
			if _, _, err := getJSON(base+"/api/v1/devices/e2e-agent", &d); err != nil {
				return err
			}
			if d.State != "offline" || d.Reason != "shutdown" {
				return fmt.Errorf("state %q reason %q", d.State, d.Reason)
			}
			return nil
		})
	})

	if !hub.signal(syscall.SIGTERM) {
		t.Fatal("hub did not stop on SIGTERM within 10s")
	}
}

// TestHub_MQTTListenTaken checks the message that names --broker.
func TestHub_MQTTListenTaken(t *testing.T) {
	broker := mosquittotest.Start(t)
	p := startProc(t, "fleetwatch-hub", "--http", freeAddr(t), "--mqtt-listen", broker.Addr(), "--data", t.TempDir())
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		t.Fatal("hub did not exit")
	}
	if out := p.output(); !strings.Contains(out, "--broker") {
		t.Fatalf("output does not name --broker:\n%s", out)
	}
	if p.cmd.ProcessState.ExitCode() == 0 {
		t.Fatal("exit code 0, want failure")
	}
}
