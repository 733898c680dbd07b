package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/fleetwatch/fleetwatch/agent/mqttpub/mosquittotest"
	"github.com/fleetwatch/fleetwatch/agent/telemetry"
)

// bin is the agent binary, built once by TestMain unless -short.
var bin struct {
	path string
	err  error
}

func TestMain(m *testing.M) {
	flag.Parse()
	dir, err := os.MkdirTemp("", "fleetwatch-agent-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bin.path = filepath.Join(dir, "fleetwatch-agent")
	if !testing.Short() {
		cmd := exec.Command("go", "build", "-o", bin.path, ".")
		cmd.Stderr = os.Stderr
		bin.err = cmd.Run()
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// Process test settings: short, so the package stays well under 30 s.
const (
	interval = 100 * time.Millisecond
	spill    = 500 * time.Millisecond
)

// agentProc is a running fleetwatch-agent.
type agentProc struct {
	cmd  *exec.Cmd
	out  *syncBuf
	done chan struct{}
}

// needBinary skips under -short and fails if the build did.
func needBinary(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs the agent binary")
	}
	if bin.err != nil {
		t.Fatalf("build agent: %v", bin.err)
	}
}

func startAgent(t *testing.T, args ...string) *agentProc {
	t.Helper()
	needBinary(t)
	p := &agentProc{cmd: exec.Command(bin.path, args...), out: &syncBuf{}, done: make(chan struct{})}
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.cmd.Wait(); close(p.done) }() //nolint:errcheck // checked through ProcessState
	t.Cleanup(func() {
		p.cmd.Process.Kill() //nolint:errcheck // gone already is fine
		<-p.done
		if t.Failed() {
			t.Logf("agent %v output:\n%s", args, p.out)
		}
	})
	return p
}

// stop sends sig and waits for the agent to exit.
func (p *agentProc) stop(t *testing.T, sig syscall.Signal) {
	t.Helper()
	p.cmd.Process.Signal(sig) //nolint:errcheck // checked by the wait
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		t.Fatalf("agent did not exit on %v", sig)
	}
	if sig == syscall.SIGTERM && !p.cmd.ProcessState.Success() {
		t.Fatalf("agent exited with %v on SIGTERM, want 0", p.cmd.ProcessState)
	}
}

// fakeHub stores and acks as the hub does, over real MQTT: readings are
// unique by (boot, seq), "first" settles what lies below it, and the ack is
// the contiguous watermark of each boot.
type fakeHub struct {
	mu     sync.Mutex
	boots  []string // in the order they appeared
	got    map[string]map[uint64]int64
	dups   int
	firsts map[string]uint64 // highest first announced per boot
	marks  map[string]uint64
}

func startFakeHub(t *testing.T, url, device string) *fakeHub {
	t.Helper()
	h := &fakeHub{got: map[string]map[uint64]int64{}, firsts: map[string]uint64{}, marks: map[string]uint64{}}
	topics, _ := telemetry.NewTopics(telemetry.DefaultPrefix)
	handle := func(c mqtt.Client, m mqtt.Message) {
		env, err := telemetry.DecodeTelemetry(device, m.Payload(), time.Now())
		if err != nil {
			t.Errorf("hub rejects an envelope: %v", err)
			return
		}
		if w := h.store(env); w > 0 {
			c.Publish(topics.Ack(device), 1, false, telemetry.Ack{V: 1, Boot: env.Boot, Seq: w}.Encode())
		}
	}
	// A persistent session, as the hub has: the broker queues what the
	// agent sends while this client reconnects after a broker restart.
	opts := mqtt.NewClientOptions().AddBroker(url).SetClientID("fake-hub-" + device).
		SetCleanSession(false).SetDefaultPublishHandler(handle).
		SetAutoReconnect(true).SetConnectRetry(true).
		SetConnectRetryInterval(100 * time.Millisecond).SetMaxReconnectInterval(200 * time.Millisecond)
	opts.SetOnConnectHandler(func(c mqtt.Client) { c.Subscribe(topics.Telemetry(device), 1, handle) })
	c := mqtt.NewClient(opts)
	c.Connect().Wait()
	t.Cleanup(func() { c.Disconnect(100) })
	return h
}

func (h *fakeHub) store(env telemetry.Envelope) uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	got := h.got[env.Boot]
	if got == nil {
		got = map[uint64]int64{}
		h.got[env.Boot] = got
		h.boots = append(h.boots, env.Boot)
	}
	if env.First != nil {
		h.firsts[env.Boot] = max(h.firsts[env.Boot], *env.First)
		h.marks[env.Boot] = max(h.marks[env.Boot], *env.First-1)
	}
	for _, r := range env.Readings {
		if _, dup := got[r.Seq]; dup {
			h.dups++
			continue
		}
		got[r.Seq] = r.TS
	}
	for {
		if _, ok := got[h.marks[env.Boot]+1]; !ok {
			break
		}
		h.marks[env.Boot]++
	}
	return h.marks[env.Boot]
}

// snapshot returns the boots seen and, per boot, the stored seqs in order.
func (h *fakeHub) snapshot() ([]string, map[string][]uint64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	seqs := map[string][]uint64{}
	for boot, got := range h.got {
		for seq := range got {
			seqs[boot] = append(seqs[boot], seq)
		}
		slices.Sort(seqs[boot])
	}
	return slices.Clone(h.boots), seqs
}

func (h *fakeHub) ts(boot string, seq uint64) int64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.got[boot][seq]
}

func (h *fakeHub) first(boot string) uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.firsts[boot]
}

func (h *fakeHub) mark(boot string) uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.marks[boot]
}

func eventually(t *testing.T, within time.Duration, what string, ok func() bool) {
	t.Helper()
	for deadline := time.Now().Add(within); !ok(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, within)
		}
	}
}

// spoolFiles returns the names in the agent's spool directory.
func spoolFiles(t *testing.T, state string) []string {
	t.Helper()
	es, err := os.ReadDir(filepath.Join(state, "outbox"))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var out []string
	for _, e := range es {
		out = append(out, e.Name())
	}
	return out
}

// checkStored checks that boot's stored seqs are 1..n with no hole, except
// below a "first" the agent announced, and returns n.
func checkStored(t *testing.T, h *fakeHub, boot string, seqs []uint64) uint64 {
	t.Helper()
	if len(seqs) == 0 {
		t.Fatalf("boot %s: nothing stored", boot)
	}
	n := seqs[len(seqs)-1]
	first := h.first(boot)
	for seq, i := uint64(1), 0; seq <= n; seq++ {
		if i < len(seqs) && seqs[i] == seq {
			i++
			continue
		}
		if seq >= first {
			t.Fatalf("boot %s: seq %d of 1..%d never arrived and no first covers it (first %d)", boot, seq, n, first)
		}
	}
	return n
}

func agentArgs(broker, device, state string) []string {
	return []string{"--broker", broker, "--device", device, "--interval", interval.String(),
		"--state-dir", state, "--spill-interval", spill.String(), "--log-level", "debug"}
}

// TestAgent_SIGKILL: an agent killed while the broker is down loses
// nothing older than the spill interval; the restarted one replays it with
// the original timestamps under the old boot, and numbers new readings in
// a new boot.
func TestAgent_SIGKILL(t *testing.T) {
	needBinary(t)
	t.Parallel()
	const device = "crash-kill"
	broker := mosquittotest.Start(t)
	hub := startFakeHub(t, broker.URL(), device)
	state := t.TempDir()
	a1 := startAgent(t, agentArgs(broker.URL(), device, state)...)
	eventually(t, 10*time.Second, "acks for 10 readings", func() bool {
		boots, _ := hub.snapshot()
		return len(boots) == 1 && hub.mark(boots[0]) >= 10
	})
	if got := spoolFiles(t, state); len(got) != 0 {
		t.Fatalf("spool files %v while acks flow, want none", got)
	}

	broker.Stop()
	outageFrom := time.Now()
	time.Sleep(3 * time.Second)
	kill := time.Now()
	a1.stop(t, syscall.SIGKILL)
	broker.Restart()

	a2 := startAgent(t, agentArgs(broker.URL(), device, state)...)
	eventually(t, 15*time.Second, "the replayed backlog acked and deleted", func() bool {
		boots, _ := hub.snapshot()
		return len(boots) == 2 && hub.mark(boots[1]) >= 5 && len(spoolFiles(t, state)) == 0
	})
	a2.stop(t, syscall.SIGTERM)

	boots, seqs := hub.snapshot()
	if len(boots) != 2 || boots[0] == boots[1] {
		t.Fatalf("boots %v, want the killed run's and a new one", boots)
	}
	old, last := boots[0], checkStored(t, hub, boots[0], seqs[boots[0]])
	checkStored(t, hub, boots[1], seqs[boots[1]])
	if got := hub.mark(old); got != last {
		t.Fatalf("old boot acked to %d, want %d", got, last)
	}
	// Nothing taken more than the spill interval before the kill is lost:
	// the next reading after the last one stored was taken after that.
	lastTS := time.UnixMilli(hub.ts(old, last))
	if next := lastTS.Add(interval); next.Before(kill.Add(-spill - interval)) {
		t.Fatalf("old boot ends at seq %d taken %v before the kill; readings older than %v were lost",
			last, kill.Sub(lastTS), spill)
	}
	var outage int
	for _, seq := range seqs[old] {
		ts := time.UnixMilli(hub.ts(old, seq))
		if ts.After(kill) {
			t.Fatalf("old boot seq %d has ts %v after the kill: not its original timestamp", seq, ts)
		}
		if ts.After(outageFrom) {
			outage++
		}
	}
	if outage < 15 {
		t.Fatalf("%d readings from the 3 s outage stored, want at least 15", outage)
	}
	t.Logf("old boot: %d readings (%d from the outage), last %v before the kill; new boot: %d; duplicates %d",
		last, outage, kill.Sub(lastTS).Round(time.Millisecond), len(seqs[boots[1]]), hub.dups)
}

// TestAgent_SIGTERM: an agent stopped cleanly while the broker is down
// saves its whole outbox; the restarted one continues the same boot and
// nothing is lost at all.
func TestAgent_SIGTERM(t *testing.T) {
	needBinary(t)
	t.Parallel()
	const device = "crash-term"
	broker := mosquittotest.Start(t)
	hub := startFakeHub(t, broker.URL(), device)
	state := t.TempDir()
	a1 := startAgent(t, agentArgs(broker.URL(), device, state)...)
	eventually(t, 10*time.Second, "acks for 10 readings", func() bool {
		boots, _ := hub.snapshot()
		return len(boots) == 1 && hub.mark(boots[0]) >= 10
	})
	broker.Stop()
	time.Sleep(2 * time.Second)
	a1.stop(t, syscall.SIGTERM)
	if got := spoolFiles(t, state); len(got) != 2 {
		t.Fatalf("spool files %v after SIGTERM, want a segment and the state", got)
	}
	broker.Restart()

	a2 := startAgent(t, agentArgs(broker.URL(), device, state)...)
	eventually(t, 15*time.Second, "the saved backlog acked and deleted", func() bool {
		boots, _ := hub.snapshot()
		return len(boots) == 1 && hub.mark(boots[0]) >= 40 && len(spoolFiles(t, state)) == 0
	})
	a2.stop(t, syscall.SIGTERM)

	boots, seqs := hub.snapshot()
	if len(boots) != 1 {
		t.Fatalf("boots %v, want one: a clean stop continues its boot", boots)
	}
	last := checkStored(t, hub, boots[0], seqs[boots[0]])
	if first := hub.first(boots[0]); first != 0 {
		t.Fatalf("the agent announced first=%d, want none: nothing was lost", first)
	}
	if !bytes.Contains(a2.out.Bytes(), []byte("outbox recovered from disk")) {
		t.Fatalf("the restarted agent did not log its recovery")
	}
	t.Logf("one boot, seqs 1..%d with no gap; duplicates %d", last, hub.dups)
}

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (w *syncBuf) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *syncBuf) Bytes() []byte {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.b.Bytes())
}

func (w *syncBuf) String() string { return string(w.Bytes()) }
