package main_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/fleetwatch/fleetwatch/agent/mqttpub/mosquittotest"
	"github.com/fleetwatch/fleetwatch/agent/telemetry"
)

// Settings of TestHub_SIGKILLDuringIngest.
const (
	crashDevices     = 3
	crashMaxSeq      = 20000                // readings per device, at most
	crashTick        = 5 * time.Millisecond // one envelope per device per tick
	crashMaxBatch    = 16                   // readings per envelope: 1..crashMaxBatch
	crashMinIngest   = 150 * time.Millisecond
	crashMaxIngest   = 600 * time.Millisecond
	crashCommitEvery = "25ms"
	crashMetric      = "crash.seq"
)

// TestHub_SIGKILLDuringIngest SIGKILLs a real hub again and again while
// devices publish through a real mosquitto. After each kill the bbolt file
// must pass bbolt's own consistency check, and the restarted hub must serve
// every reading it had acked, once, and nothing that was never published.
// Finally every reading is acked and stored exactly once.
//
// FLEETWATCH_CRASH_SEED=<n> replays the kill timings and batch sizes of a
// logged run.
func TestHub_SIGKILLDuringIngest(t *testing.T) {
	// binary skips under -short, as for every end-to-end test here (TestMain
	// builds no binaries then); should that change, -short runs 3 kills.
	binary(t, "fleetwatch-hub")
	cycles := 12
	if testing.Short() {
		cycles = 3
	}
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv("FLEETWATCH_CRASH_SEED"); v != "" {
		var err error
		if seed, err = strconv.ParseUint(v, 10, 64); err != nil {
			t.Fatalf("FLEETWATCH_CRASH_SEED=%q: %v", v, err)
		}
	}
	t.Logf("seed %d (FLEETWATCH_CRASH_SEED=%d replays it), %d kills", seed, seed, cycles)
	rng := rand.New(rand.NewPCG(seed, 0))
	began := time.Now()

	broker := mosquittotest.Start(t)
	httpAddr := freeAddr(t)
	base := "http://" + httpAddr
	dataDir := t.TempDir()
	hubArgs := []string{"--broker", broker.URL(), "--http", httpAddr, "--data", dataDir,
		"--commit-interval", crashCommitEvery, "--client-id", "fleetwatch-hub-crash"}

	hub := startProc(t, "fleetwatch-hub", hubArgs...)
	waitHealthy(t, base)

	// ts of every reading lies 20 minutes ago plus seq ms: in the last hour,
	// never in the future, and unique per device.
	tsBase := time.Now().Add(-20 * time.Minute).UnixMilli()
	devs := make([]*crashDevice, crashDevices)
	for i := range devs {
		devs[i] = crashConnect(t, broker.URL(), fmt.Sprintf("crash-dev-%d", i), fmt.Sprintf("boot-%d-%d", seed, i), tsBase)
	}
	stop := make(chan struct{})
	var pubs sync.WaitGroup
	for i, d := range devs {
		pubs.Add(1)
		go func() {
			defer pubs.Done()
			d.publish(rand.New(rand.NewPCG(seed, uint64(i)+1)), stop)
		}()
	}
	stopPublishing := sync.OnceFunc(func() { close(stop); pubs.Wait() })
	t.Cleanup(stopPublishing)

	// Wait for the first acks so that the first kill hits a hub at work.
	eventually(t, 10*time.Second, "first acks", func() error {
		for _, d := range devs {
			if a, _ := d.ack(); a == 0 {
				return fmt.Errorf("%s: no ack yet", d.id)
			}
		}
		return nil
	})

	var restarts []time.Duration
	var ackedTotal []uint64
	for cycle := 1; cycle <= cycles; cycle++ {
		ingest := crashMinIngest + time.Duration(rng.Int64N(int64(crashMaxIngest-crashMinIngest)+1))
		time.Sleep(ingest)
		select {
		case <-hub.done:
			t.Fatalf("cycle %d: the hub exited by itself before the kill: %v", cycle, hub.cmd.ProcessState)
		default:
		}
		killAt := time.Now()
		if !hub.signal(syscall.SIGKILL) {
			t.Fatalf("cycle %d: hub did not die within 10s of SIGKILL", cycle)
		}
		if ws, ok := hub.cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
			t.Fatalf("cycle %d: hub ended with %v, want killed by SIGKILL", cycle, hub.cmd.ProcessState)
		}
		// Every ack received by now was sent by the dead hub after a commit
		// (the next hub is not started yet): all of it must be stored.
		acked := make([]uint64, len(devs))
		var line []string
		var sum uint64
		for i, d := range devs {
			var at time.Time
			acked[i], at = d.ack()
			sum += acked[i]
			line = append(line, fmt.Sprintf("%s acked %d (last ack at kill%+dms), sent %d",
				d.id, acked[i], at.Sub(killAt).Milliseconds(), d.sent.Load()))
		}
		ackedTotal = append(ackedTotal, sum)

		if err := crashCheckBolt(dataDir); err != nil {
			t.Fatalf("cycle %d: after SIGKILL: %v", cycle, err)
		}

		started := time.Now()
		hub = startProc(t, "fleetwatch-hub", hubArgs...)
		restart := waitHealthy(t, base).Sub(started)
		restarts = append(restarts, restart)

		var extra []string
		for i, d := range devs {
			if err := d.failure(); err != nil {
				t.Errorf("cycle %d: %s: %v", cycle, d.id, err)
			}
			top, err := crashCheckStored(base, d, acked[i], 0)
			if err != nil {
				t.Errorf("cycle %d (ingest %s, seed %d): %v", cycle, ingest, seed, err)
			}
			extra = append(extra, fmt.Sprintf("%s %d", d.id, top))
		}
		t.Logf("kill %2d after %3dms of ingest: %s; bbolt check ok; healthy %s after restart; highest seq served then: %s",
			cycle, ingest.Milliseconds(), strings.Join(line, ", "), restart.Round(time.Millisecond), strings.Join(extra, ", "))
		if t.Failed() {
			t.FailNow()
		}
	}

	stopPublishing()
	for _, d := range devs {
		if err := d.failure(); err != nil {
			t.Fatalf("%s: %v", d.id, err)
		}
	}
	drainStart := time.Now()
	eventually(t, 20*time.Second, "every reading acked after publishing stopped", func() error {
		for _, d := range devs {
			if a, _ := d.ack(); a < d.sent.Load() {
				return fmt.Errorf("%s acked %d of %d", d.id, a, d.sent.Load())
			}
		}
		return nil
	})
	drain := time.Since(drainStart)
	var total uint64
	for _, d := range devs {
		n := d.sent.Load()
		total += n
		if _, err := crashCheckStored(base, d, n, n); err != nil {
			t.Errorf("final: %v", err)
		}
		if a, _ := d.ack(); a != n {
			t.Errorf("final: %s acked %d, published %d", d.id, a, n)
		}
		if r := d.regressions.Load(); r > 0 {
			t.Logf("note: %s saw %d acks lower than an earlier one", d.id, r)
		}
	}

	// A clean stop after all this leaves a consistent file too.
	if !hub.signal(syscall.SIGTERM) {
		t.Fatal("hub did not stop on SIGTERM within 10s")
	}
	if !hub.cmd.ProcessState.Success() {
		t.Errorf("hub exited with %v on SIGTERM, want 0", hub.cmd.ProcessState)
	}
	if err := crashCheckBolt(dataDir); err != nil {
		t.Fatalf("after SIGTERM: %v", err)
	}

	slices.Sort(restarts)
	t.Logf("%d SIGKILLs; readings acked at each kill (all devices): %v; all %d readings (%d devices) acked %s after publishing stopped and stored once each",
		len(restarts), ackedTotal, total, len(devs), drain.Round(time.Millisecond))
	t.Logf("restart to healthy: min %s, median %s, max %s; test took %s",
		restarts[0].Round(time.Millisecond), restarts[len(restarts)/2].Round(time.Millisecond),
		restarts[len(restarts)-1].Round(time.Millisecond), time.Since(began).Round(100*time.Millisecond))
}

// crashDevice is one simulated agent: it publishes consecutive seqs of one
// boot at QoS 1 and records the acks the hub sends it.
type crashDevice struct {
	id, boot string
	tsBase   int64 // ts of a reading is tsBase + seq
	client   mqtt.Client
	topics   telemetry.Topics

	sent        atomic.Uint64 // highest seq handed to the MQTT client
	regressions atomic.Uint64 // acks lower than an earlier one

	mu      sync.Mutex
	acked   uint64
	ackedAt time.Time
	err     error // first protocol or publish error
}

func crashConnect(t *testing.T, brokerURL, id, boot string, tsBase int64) *crashDevice {
	t.Helper()
	topics, _ := telemetry.NewTopics("")
	d := &crashDevice{id: id, boot: boot, tsBase: tsBase, topics: topics}
	subscribed := make(chan error, 4)
	opts := mqtt.NewClientOptions().AddBroker(brokerURL).
		SetClientID(fmt.Sprintf("%s-%d", id, time.Now().UnixNano())).
		SetCleanSession(true).
		SetAutoReconnect(true).
		SetMaxReconnectInterval(200 * time.Millisecond).
		SetConnectTimeout(5 * time.Second).
		SetWriteTimeout(5 * time.Second).
		SetOnConnectHandler(func(c mqtt.Client) {
			tok := c.Subscribe(topics.Ack(id), 1, d.onAck)
			go func() {
				if !tok.WaitTimeout(5 * time.Second) {
					subscribed <- errors.New("subscribe timed out")
					return
				}
				subscribed <- tok.Error()
			}()
		})
	d.client = mqtt.NewClient(opts)
	if tok := d.client.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("%s: connect: %v", id, tok.Error())
	}
	t.Cleanup(func() { d.client.Disconnect(100) })
	select {
	case err := <-subscribed:
		if err != nil {
			t.Fatalf("%s: subscribe to acks: %v", id, err)
		}
	case <-time.After(6 * time.Second):
		t.Fatalf("%s: subscribe to acks: no answer", id)
	}
	return d
}

func (d *crashDevice) onAck(_ mqtt.Client, m mqtt.Message) {
	a, err := telemetry.DecodeAck(m.Payload())
	now := time.Now()
	d.mu.Lock()
	defer d.mu.Unlock()
	switch {
	case err != nil:
		d.fail(fmt.Errorf("undecodable ack %q: %w", m.Payload(), err))
	case a.Boot != d.boot:
		d.fail(fmt.Errorf("ack %s for boot %q, want %q", m.Payload(), a.Boot, d.boot))
	case a.Seq > d.sent.Load():
		d.fail(fmt.Errorf("ack %s covers seqs never published (highest sent %d)", m.Payload(), d.sent.Load()))
	case a.Seq < d.acked:
		d.regressions.Add(1)
	case a.Seq > d.acked:
		d.acked, d.ackedAt = a.Seq, now
	}
}

// fail records the first error; d.mu is held.
func (d *crashDevice) fail(err error) {
	if d.err == nil {
		d.err = err
	}
}

func (d *crashDevice) failure() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.err
}

// ack returns the highest seq acked so far and when that ack arrived.
func (d *crashDevice) ack() (uint64, time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.acked, d.ackedAt
}

// publish sends envelopes of 1..crashMaxBatch readings each tick until stop
// or crashMaxSeq, waiting for the broker's PUBACK of each.
func (d *crashDevice) publish(rng *rand.Rand, stop <-chan struct{}) {
	tick := time.NewTicker(crashTick)
	defer tick.Stop()
	round := func(v float64) float64 { return math.Round(v*100) / 100 }
	for seq := uint64(1); seq <= crashMaxSeq; {
		n := min(uint64(1+rng.IntN(crashMaxBatch)), crashMaxSeq-seq+1)
		env := telemetry.Envelope{V: telemetry.Version, Device: d.id, Boot: d.boot, Readings: make([]telemetry.Reading, 0, n)}
		for s := seq; s < seq+n; s++ {
			env.Readings = append(env.Readings, telemetry.Reading{Seq: s, TS: d.tsBase + int64(s), Metrics: telemetry.Metrics{
				crashMetric:        float64(s),
				"cpu.percent":      round(rng.Float64() * 100),
				"mem.used_percent": round(40 + 15*math.Sin(float64(s)/500)),
				"load.1":           round(rng.Float64() * 4),
			}})
		}
		payload, err := env.Encode()
		if err != nil {
			d.mu.Lock()
			d.fail(fmt.Errorf("encode seq %d..%d: %w", seq, seq+n-1, err))
			d.mu.Unlock()
			return
		}
		d.sent.Store(seq + n - 1) // before the publish: an ack may come at once
		tok := d.client.Publish(d.topics.Telemetry(d.id), 1, false, payload)
		if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			d.mu.Lock()
			d.fail(fmt.Errorf("publish seq %d..%d: no PUBACK within 10s: %v", seq, seq+n-1, tok.Error()))
			d.mu.Unlock()
			return
		}
		seq += n
		select {
		case <-stop:
			return
		case <-tick.C:
		}
	}
}

// crashCheckStored reads the device's crash.seq history from the hub and
// checks that every seq ≤ acked is there, none twice, each at its ts, and
// none above what was published. With exact > 0 the history must hold
// exactly 1..exact. It returns the highest seq stored.
func crashCheckStored(base string, d *crashDevice, acked, exact uint64) (uint64, error) {
	sent := d.sent.Load() // read before the query: nothing above it may be stored
	from, to := d.tsBase-60_000, time.Now().UnixMilli()
	url := fmt.Sprintf("%s/api/v1/devices/%s/history?metric=%s&from=%d&to=%d&points=100000", base, d.id, crashMetric, from, to)
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Get(url)
	if err != nil {
		return 0, fmt.Errorf("%s: history: %w", d.id, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound && acked == 0 && exact == 0 {
		return 0, nil // nothing committed yet, so no device record either
	}
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("%s: history: status %d (acked %d)", d.id, resp.StatusCode, acked)
	}
	// Points decode as slices, not [2]float64, so that bucket rows
	// [ts,avg,min,max] cannot pass for raw samples.
	var h struct {
		Step      int64       `json:"step"`
		Points    [][]float64 `json:"points"`
		Truncated bool        `json:"truncated"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&h); err != nil {
		return 0, fmt.Errorf("%s: history: decode: %w", d.id, err)
	}
	if h.Step != 0 || h.Truncated {
		return 0, fmt.Errorf("%s: history of %d points is not raw (step %d, truncated %v)", d.id, len(h.Points), h.Step, h.Truncated)
	}
	count := make(map[uint64]int, len(h.Points))
	var errs []error
	var top uint64
	for _, p := range h.Points {
		if len(p) != 2 {
			return 0, fmt.Errorf("%s: history point %v is not [ts,value]", d.id, p)
		}
		ts, v := int64(p[0]), p[1]
		seq := uint64(v)
		if v < 1 || v != math.Trunc(v) || seq > sent {
			errs = append(errs, fmt.Errorf("point %v: value is not a published seq (1..%d)", p, sent))
			continue
		}
		if want := d.tsBase + int64(seq); ts != want {
			errs = append(errs, fmt.Errorf("point %v: seq %d stored at ts %d, published at %d", p, seq, ts, want))
		}
		count[seq]++
		top = max(top, seq)
	}
	var missing, twice []uint64
	for seq, n := range count {
		if n > 1 {
			twice = append(twice, seq)
		}
	}
	for seq := uint64(1); seq <= acked; seq++ {
		if count[seq] == 0 {
			missing = append(missing, seq)
		}
	}
	if len(missing) > 0 {
		errs = append(errs, fmt.Errorf("%d acked readings missing (acked through %d, %d points stored): seqs %s",
			len(missing), acked, len(h.Points), crashSeqs(missing)))
	}
	if len(twice) > 0 {
		slices.Sort(twice)
		errs = append(errs, fmt.Errorf("%d readings stored more than once: seqs %s", len(twice), crashSeqs(twice)))
	}
	if exact > 0 && (top != exact || len(h.Points) != int(exact)) {
		errs = append(errs, fmt.Errorf("want exactly seqs 1..%d once each, got %d points up to seq %d", exact, len(h.Points), top))
	}
	if len(errs) > 0 {
		return top, fmt.Errorf("%s (boot %s): %w", d.id, d.boot, errors.Join(errs...))
	}
	return top, nil
}

// crashSeqs formats up to 20 seqs.
func crashSeqs(seqs []uint64) string {
	if len(seqs) > 20 {
		return fmt.Sprint(seqs[:20]) + fmt.Sprintf(" and %d more", len(seqs)-20)
	}
	return fmt.Sprint(seqs)
}

// crashCheckBolt opens each bbolt file in dir read-only and runs bbolt's
// consistency check; it knows nothing of the store's layout.
func crashCheckBolt(dir string) error {
	paths, err := filepath.Glob(filepath.Join(dir, "*.db"))
	if err != nil {
		return err
	}
	if len(paths) == 0 {
		entries, _ := os.ReadDir(dir)
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		return fmt.Errorf("no *.db file in the data dir (it holds %q)", names)
	}
	for _, path := range paths {
		if err := checkBolt(path); err != nil {
			return err
		}
	}
	return nil
}
