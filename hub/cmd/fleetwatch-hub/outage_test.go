package main_test

import (
	"fmt"
	"os"
	"sort"
	"syscall"
	"testing"
	"time"

	"github.com/fleetwatch/fleetwatch/agent/mqttpub/mosquittotest"
	"github.com/fleetwatch/fleetwatch/agent/telemetry"
)

// outage is how long the broker or hub stays down in the outage tests:
// 30 s as the agent's promise is stated, shorter with FLEETWATCH_OUTAGE
// (e.g. 3s) while iterating.
func outage(t *testing.T) time.Duration {
	if v := os.Getenv("FLEETWATCH_OUTAGE"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("FLEETWATCH_OUTAGE=%q: %v", v, err)
		}
		return d
	}
	return 30 * time.Second
}

// TestOutage_Broker: the broker stops for the outage and comes back; the
// hub ends up storing every reading the agent took, once each.
func TestOutage_Broker(t *testing.T) {
	t.Parallel()
	broker := mosquittotest.Start(t)
	httpAddr := freeAddr(t)
	base := "http://" + httpAddr
	startProc(t, "fleetwatch-hub", "--broker", broker.URL(), "--http", httpAddr, "--data", t.TempDir(), "--commit-interval", "50ms")
	waitHealthy(t, base)
	obs := observe(t, broker.URL(), "fleetwatch/outage-broker/#")
	agent := startProc(t, "fleetwatch-agent", "--broker", broker.URL(), "--device", "outage-broker", "--interval", "250ms")
	waitAck(t, obs, "outage-broker", 4)

	broker.Stop()
	time.Sleep(outage(t))
	broker.Restart()

	checkAllStored(t, base, obs, agent, "outage-broker")
}

// TestOutage_Hub: the hub stops for the outage while the broker stays up;
// the broker queues for the hub's persistent session and the agent keeps
// what is unacked, so nothing is lost and nothing is stored twice.
func TestOutage_Hub(t *testing.T) {
	t.Parallel()
	broker := mosquittotest.Start(t)
	httpAddr := freeAddr(t)
	base := "http://" + httpAddr
	hubArgs := []string{"--broker", broker.URL(), "--http", httpAddr, "--data", t.TempDir(), "--commit-interval", "50ms"}
	hub := startProc(t, "fleetwatch-hub", hubArgs...)
	waitHealthy(t, base)
	obs := observe(t, broker.URL(), "fleetwatch/outage-hub/#")
	agent := startProc(t, "fleetwatch-agent", "--broker", broker.URL(), "--device", "outage-hub", "--interval", "250ms")
	waitAck(t, obs, "outage-hub", 4)

	if !hub.signal(syscall.SIGTERM) {
		t.Fatal("hub did not stop")
	}
	time.Sleep(outage(t))
	startProc(t, "fleetwatch-hub", hubArgs...)
	waitHealthy(t, base)

	checkAllStored(t, base, obs, agent, "outage-hub")
}

func waitAck(t *testing.T, obs *observer, device string, seq uint64) {
	t.Helper()
	eventually(t, 15*time.Second, "first acks", func() error {
		if a := lastAck(obs, device); a.Seq < seq {
			return fmt.Errorf("last ack %+v", a)
		}
		return nil
	})
}

func lastAck(obs *observer, device string) telemetry.Ack {
	var best telemetry.Ack
	for _, b := range obs.messages("fleetwatch/" + device + "/ack") {
		if a, err := telemetry.DecodeAck(b); err == nil && a.Seq > best.Seq {
			best = a
		}
	}
	return best
}

// checkAllStored lets the agent run on after the outage, stops it cleanly,
// and checks that the hub acked every seq it published and stored exactly
// one point per reading, in seq order.
func checkAllStored(t *testing.T, base string, obs *observer, agent *proc, device string) {
	t.Helper()
	// Live readings flow again, and the backlog of the outage (at 4
	// readings/s) has been replayed.
	wantTop := uint64(outage(t)/(250*time.Millisecond)) + 4
	eventually(t, 60*time.Second, "agent back and caught up", func() error {
		if a := lastAck(obs, device); a.Seq < wantTop {
			return fmt.Errorf("last ack %d, want ≥ %d", a.Seq, wantTop)
		}
		return nil
	})
	if !agent.signal(syscall.SIGTERM) {
		t.Fatal("agent did not stop")
	}
	// Every seq the agent ever published, from the broker's point of view.
	seqs := map[uint64]int64{}
	for _, b := range obs.messages("fleetwatch/" + device + "/telemetry") {
		env, err := telemetry.DecodeTelemetry(device, b, time.Now())
		if err != nil {
			t.Fatalf("agent published an invalid payload: %v", err)
		}
		for _, r := range env.Readings {
			seqs[r.Seq] = r.TS
		}
	}
	var top uint64
	for s := range seqs {
		top = max(top, s)
	}
	for s := uint64(1); s <= top; s++ {
		if _, ok := seqs[s]; !ok {
			t.Fatalf("seq %d never published (top %d): the agent lost a reading", s, top)
		}
	}
	eventually(t, 30*time.Second, "ack covers every published seq", func() error {
		if a := lastAck(obs, device); a.Seq < top {
			return fmt.Errorf("last ack %d, published up to %d", a.Seq, top)
		}
		return nil
	})
	var h struct {
		Points [][2]float64 `json:"points"`
	}
	if _, _, err := getJSON(base+"/api/v1/devices/"+device+"/history?metric=mem.used_percent&from=-1h", &h); err != nil {
		t.Fatal(err)
	}
	if got, want := len(h.Points), int(top); got != want {
		t.Fatalf("stored %d points, want %d (one per reading, none twice)", got, want)
	}
	want := make([]int64, 0, len(seqs))
	for s := uint64(1); s <= top; s++ {
		want = append(want, seqs[s])
	}
	if !sort.SliceIsSorted(want, func(i, j int) bool { return want[i] < want[j] }) {
		t.Fatal("agent timestamps are not in seq order")
	}
	for i, p := range h.Points {
		if int64(p[0]) != want[i] {
			t.Fatalf("point %d at %d, want seq %d's ts %d", i, int64(p[0]), i+1, want[i])
		}
	}
	t.Logf("%s: %d readings, all stored once in seq order", device, top)
}
