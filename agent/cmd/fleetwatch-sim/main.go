// Command fleetwatch-sim publishes plausible virtual devices to a broker,
// for demos and load. Each virtual device is a real agent.Agent with its
// own boot, seq numbering, status and outbox, honouring the hub's acks;
// only the collector is synthetic.
//
// By default each device has its own MQTT connection and Last Will, like a
// real fleet. --conns C multiplexes the devices over C connections instead,
// so thousands of devices need only a few sockets (and have no Last Will).
//
// Modes: live (default) takes one reading per --interval until stopped.
// --burst N publishes N readings per device back to back, stamped 1 ms
// apart, one per message. --replay DUR backfills DUR of history at
// --interval spacing with its original timestamps, oldest first, one
// reading per message. Both keep at most --window readings per device
// unacked, so the hub's acks pace them, and exit once all is acked.
// --replay DUR --outage instead holds the whole backlog first, as a device
// cut off for DUR does, then lets the agent send it as it sends any
// backlog after a reconnect (batches, order and pacing are the agent's).
//
// --stamp adds bench.sent_us (publish time, µs) to every reading so
// receivers can measure latency; --summary FILE writes the counts as JSON
// when the sim ends, after waiting up to --drain for outstanding acks.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/fleetwatch/fleetwatch/agent"
	"github.com/fleetwatch/fleetwatch/agent/mqttpub"
	"github.com/fleetwatch/fleetwatch/agent/telemetry"
)

type options struct {
	broker, prefix, name, summary string
	devices, extra, conns         int
	maxPending                    int
	interval, duration, replay    time.Duration
	drain                         time.Duration
	burst                         int64
	seed, window                  uint64
	stamp, outage                 bool
}

func main() {
	var o options
	flag.StringVar(&o.broker, "broker", "tcp://127.0.0.1:1883", "MQTT broker URL")
	flag.IntVar(&o.devices, "devices", 5, "number of virtual devices")
	flag.DurationVar(&o.interval, "interval", time.Second, "time between readings of each device (replay: their spacing)")
	flag.StringVar(&o.prefix, "topic-prefix", telemetry.DefaultPrefix, "MQTT topic prefix")
	flag.StringVar(&o.name, "name", "sim", "device id prefix: <name>-001, <name>-002, …")
	flag.IntVar(&o.extra, "metrics", 0, "extra synthetic metrics per reading (sim.m0 …): the payload size")
	flag.DurationVar(&o.duration, "duration", 0, "stop after this long (0: until SIGINT/SIGTERM, or until a burst or replay is acked)")
	flag.Uint64Var(&o.seed, "seed", 1, "random seed, for repeatable fleets")
	flag.IntVar(&o.conns, "conns", 0, "MQTT connections shared by the devices (0: one per device, with its Last Will)")
	flag.Int64Var(&o.burst, "burst", 0, "publish this many readings per device as fast as possible, then exit once acked")
	flag.DurationVar(&o.replay, "replay", 0, "backfill this much history per device at --interval spacing, oldest first, one reading per message; exit once acked")
	flag.BoolVar(&o.outage, "outage", false, "with --replay: hold the whole backlog, then let the agent send it as after a reconnect")
	flag.Uint64Var(&o.window, "window", 5000, "burst and replay: most unacked readings per device (0: no limit)")
	flag.BoolVar(&o.stamp, "stamp", false, "add "+StampMetric+" (publish time, µs since the epoch) to every reading")
	flag.IntVar(&o.maxPending, "max-pending", 0, "live: most unacked readings each device holds (0: the agent's default); bounds the sim's memory when the hub lags")
	flag.StringVar(&o.summary, "summary", "", "write counts as JSON to this file when done")
	flag.DurationVar(&o.drain, "drain", 5*time.Second, "on stop, wait this long for outstanding acks before disconnecting")
	flag.Parse()
	if err := o.validate(); err != nil {
		fmt.Fprintln(os.Stderr, "fleetwatch-sim:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "fleetwatch-sim:", err)
		os.Exit(1)
	}
}

func (o *options) validate() error {
	switch {
	case o.devices < 1 || o.devices > 100_000:
		return fmt.Errorf("--devices must be 1–100000")
	case o.extra < 0 || o.extra > telemetry.MaxMetrics-BaseMetrics-2:
		return fmt.Errorf("--metrics must be 0–%d", telemetry.MaxMetrics-BaseMetrics-2)
	case o.interval <= 0:
		return fmt.Errorf("--interval must be positive")
	case o.maxPending < 0:
		return fmt.Errorf("--max-pending must not be negative")
	case o.conns < 0:
		return fmt.Errorf("--conns must be 0 or more")
	case o.burst < 0 || o.replay < 0:
		return fmt.Errorf("--burst and --replay must not be negative")
	case o.burst > 0 && o.replay > 0:
		return fmt.Errorf("--burst and --replay exclude each other")
	case o.replay > 0 && o.replay < o.interval:
		return fmt.Errorf("--replay must be at least one --interval")
	case o.outage && o.replay == 0:
		return fmt.Errorf("--outage needs --replay")
	}
	if _, err := telemetry.NewTopics(o.prefix); err != nil {
		return err
	}
	return nil
}

func (o *options) mode() string {
	switch {
	case o.burst > 0:
		return modeBurst
	case o.replay > 0 && o.outage:
		return modeOutage
	case o.replay > 0:
		return modeReplay
	}
	return modeLive
}

func run(ctx context.Context, o options) error {
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	topics, _ := telemetry.NewTopics(o.prefix)
	if o.duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.duration)
		defer cancel()
	}
	mode := o.mode()
	started := time.Now()
	if o.conns > o.devices {
		o.conns = o.devices
	}
	shared := make([]*sharedConn, o.conns)
	for i := range shared {
		shared[i] = newSharedConn(topics, log.With("conn", i))
	}

	sites := []string{"home", "lab", "office", "garage"}
	models := []string{"Raspberry Pi 4 Model B Rev 1.4", "Raspberry Pi 3 Model B Plus Rev 1.3", "Raspberry Pi Zero W Rev 1.1", "Raspberry Pi 5 Model B Rev 1.0"}
	devs := make([]*device, 0, o.devices)
	for i := 1; i <= o.devices; i++ {
		rng := rand.New(rand.NewPCG(o.seed, uint64(i)))
		id := fmt.Sprintf("%s-%03d", o.name, i)
		d := &device{id: id}
		a := &agent.Agent{
			Device:   id,
			Boot:     fmt.Sprintf("sim-%d-%d", started.Unix(), i),
			Tags:     map[string]string{"site": sites[i%len(sites)], "role": "sim"},
			Interval: o.interval,
			Phase:    agent.PhaseOf(id, o.interval),
			Logger:   log.With("device", id),
		}
		switch mode {
		case modeBurst:
			d.clock = newClock(started, time.Millisecond, o.burst)
		case modeReplay, modeOutage:
			d.clock = newClock(started, o.interval, int64(o.replay/o.interval))
		}
		if o.maxPending > 0 {
			a.MaxPending = o.maxPending
		}
		if d.clock != nil {
			a.Now = d.clock.Now
			// Virtual time runs far ahead of real time: resend only on
			// reconnect, not because a minute of virtual time passed.
			a.ResendAfter = 365 * 24 * time.Hour
			a.MaxPending = max(agent.DefaultMaxPending, int(d.clock.n)+1000)
			if mode != modeOutage && o.window > 0 {
				d.clock.window = o.window
				d.clock.pending = func() uint64 { return a.Stats().Pending }
			}
		}
		a.Collectors = []agent.Collector{newSynthetic(rng, o.extra, o.interval, o.stamp, d.clock)}
		online := telemetry.Status{
			V: telemetry.Version, State: telemetry.StateOnline, Boot: a.Boot,
			AgentVersion: "sim", Hostname: id, OS: "linux", Platform: "raspbian", Arch: "aarch64",
			Model: models[i%len(models)], IntervalMS: o.interval.Milliseconds(),
			// A host's boot time stays put when its agent restarts: from the
			// seed and the day, so a second sim run (a replay, then live)
			// is the same hosts, not a fleet that just rebooted.
			Started: started.UnixMilli(), HostBoot: started.Truncate(24 * time.Hour).Add(-time.Duration(rng.IntN(86400*30)) * time.Second).UnixMilli(),
		}
		var pub agent.Publisher
		if o.conns > 0 {
			c := shared[(i-1)%o.conns]
			if err := c.add(a, online); err != nil {
				return err
			}
			pub, d.ready = c.publisher(id), func() bool { return c.client != nil && c.client.IsConnectionOpen() }
		} else {
			p, err := mqttpub.Open(mqttpub.Config{
				Broker: o.broker, Topics: topics, Device: id, Online: online,
				OnAck: a.HandleAck, OnConnect: a.Reconnected, Logger: a.Logger,
			})
			if err != nil {
				return err
			}
			pub, d.ready, d.close = p, p.Connected, p.Close
		}
		d.count = &countingPub{next: pub}
		a.Publisher = d.count
		if mode == modeOutage {
			d.gate = newGatedPub(d.count)
			a.Publisher = d.gate
		}
		d.agent = a
		devs = append(devs, d)
	}
	for i, c := range shared {
		c.open(o.broker, fmt.Sprintf("fleetwatch-sim-%s-%d", o.name, i))
	}
	fmt.Fprintf(os.Stderr, "fleetwatch-sim: %d devices (%s) publishing to %s every %s over %s\n",
		o.devices, mode, o.broker, o.interval, connsText(o.conns))

	var wg sync.WaitGroup
	for i, d := range devs {
		rng := rand.New(rand.NewPCG(o.seed, uint64(i+1)<<32))
		// Spread first readings over one interval, as a real fleet is.
		stagger := time.Duration(rng.Int64N(int64(o.interval)))
		wg.Go(func() { d.run(ctx, mode, stagger) })
	}
	wg.Wait()
	stopped := time.Now()
	drain(devs, o.drain)
	sum := summarize(o, mode, devs, started, stopped)
	closeAll(devs, shared)
	if o.summary != "" {
		if err := sum.write(o.summary); err != nil {
			return err
		}
	}
	fmt.Fprintf(os.Stderr, "fleetwatch-sim: %d readings published, %d acked, %d pending\n", sum.Published, sum.Acked, sum.Pending)
	return nil
}

func connsText(n int) string {
	if n == 0 {
		return "one connection each"
	}
	return fmt.Sprintf("%d shared connections", n)
}

// drain waits up to d for the hub to ack every outstanding reading: the
// connections are still open, so acks still arrive.
func drain(devs []*device, d time.Duration) {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		pending := false
		for _, dv := range devs {
			if dv.agent.Stats().Pending > 0 {
				pending = true
				break
			}
		}
		if !pending {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func closeAll(devs []*device, shared []*sharedConn) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for _, d := range devs {
		if d.close != nil {
			wg.Go(func() { d.close(ctx) }) //nolint:errcheck // best effort on the way out
		}
	}
	for _, c := range shared {
		wg.Go(func() { c.close(ctx) }) //nolint:errcheck // best effort on the way out
	}
	wg.Wait()
}
