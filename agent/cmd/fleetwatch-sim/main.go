// Command fleetwatch-sim publishes plausible virtual devices to a broker,
// for demos and load. Each virtual device is a real agent.Agent with its
// own MQTT connection, boot, seq numbering, status, Last Will and outbox;
// only the collector is synthetic.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"math"
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

func main() {
	var (
		broker   = flag.String("broker", "tcp://127.0.0.1:1883", "MQTT broker URL")
		devices  = flag.Int("devices", 5, "number of virtual devices")
		interval = flag.Duration("interval", time.Second, "time between readings of each device")
		prefix   = flag.String("topic-prefix", telemetry.DefaultPrefix, "MQTT topic prefix")
		name     = flag.String("name", "sim", "device id prefix: <name>-001, <name>-002, …")
		extra    = flag.Int("metrics", 0, "extra synthetic metrics per reading (sim.m0 …)")
		duration = flag.Duration("duration", 0, "stop after this long (0: until SIGINT/SIGTERM)")
		seed     = flag.Uint64("seed", 1, "random seed, for repeatable fleets")
	)
	flag.Parse()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	if *devices < 1 || *devices > 100_000 {
		fmt.Fprintln(os.Stderr, "fleetwatch-sim: --devices must be 1–100000")
		os.Exit(2)
	}
	if *extra < 0 || *extra > telemetry.MaxMetrics-16 {
		fmt.Fprintf(os.Stderr, "fleetwatch-sim: --metrics must be 0–%d\n", telemetry.MaxMetrics-16)
		os.Exit(2)
	}
	topics, err := telemetry.NewTopics(*prefix)
	if err != nil {
		fmt.Fprintln(os.Stderr, "fleetwatch-sim:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *duration)
		defer cancel()
	}

	sites := []string{"home", "lab", "office", "garage"}
	models := []string{"Raspberry Pi 4 Model B Rev 1.4", "Raspberry Pi 3 Model B Plus Rev 1.3", "Raspberry Pi Zero W Rev 1.1", "Raspberry Pi 5 Model B Rev 1.0"}
	var wg sync.WaitGroup
	for i := 1; i <= *devices; i++ {
		rng := rand.New(rand.NewPCG(*seed, uint64(i)))
		id := fmt.Sprintf("%s-%03d", *name, i)
		a := &agent.Agent{
			Device:     id,
			Boot:       fmt.Sprintf("sim-%d-%d", time.Now().Unix(), i),
			Tags:       map[string]string{"site": sites[i%len(sites)], "role": "sim"},
			Interval:   *interval,
			Collectors: []agent.Collector{newSynthetic(rng, *extra, *interval)},
			Logger:     log.With("device", id),
		}
		pub, err := mqttpub.Open(mqttpub.Config{
			Broker: *broker, Topics: topics, Device: id,
			Online: telemetry.Status{
				V: telemetry.Version, State: telemetry.StateOnline, Boot: a.Boot,
				AgentVersion: "sim", Hostname: id, OS: "linux", Platform: "raspbian", Arch: "aarch64",
				Model: models[i%len(models)], IntervalMS: interval.Milliseconds(),
				Started: time.Now().UnixMilli(), HostBoot: time.Now().Add(-time.Duration(rng.IntN(86400*30)) * time.Second).UnixMilli(),
			},
			OnAck: a.HandleAck, OnConnect: a.Reconnected, Logger: a.Logger,
		})
		if err != nil {
			fmt.Fprintln(os.Stderr, "fleetwatch-sim:", err)
			os.Exit(1)
		}
		a.Publisher = pub
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Spread first readings over one interval, as a real fleet is.
			select {
			case <-time.After(time.Duration(rng.Int64N(int64(*interval)))):
			case <-ctx.Done():
			}
			a.Run(ctx) //nolint:errcheck // ctx's error on stop
			closeCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			pub.Close(closeCtx) //nolint:errcheck // best effort on the way out
		}()
	}
	fmt.Fprintf(os.Stderr, "fleetwatch-sim: %d devices publishing to %s every %s\n", *devices, *broker, *interval)
	wg.Wait()
}

// synthetic produces random walks that look like a small Linux box.
type synthetic struct {
	rng      *rand.Rand
	extra    int
	interval time.Duration
	mu       sync.Mutex
	cpu, mem float64
	temp     float64
	uptime   float64
	disk     float64
	phase    float64
}

func newSynthetic(rng *rand.Rand, extra int, interval time.Duration) *synthetic {
	return &synthetic{
		rng: rng, extra: extra, interval: interval,
		cpu: 5 + rng.Float64()*30, mem: 20 + rng.Float64()*50, temp: 40 + rng.Float64()*15,
		uptime: float64(rng.IntN(86400 * 30)), disk: 10 + rng.Float64()*70, phase: rng.Float64() * 2 * math.Pi,
	}
}

func (s *synthetic) Name() string { return "synthetic" }

func (s *synthetic) Collect(_ context.Context, m telemetry.Metrics) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	walk := func(v, step, lo, hi float64) float64 {
		return math.Min(hi, math.Max(lo, v+(s.rng.Float64()*2-1)*step))
	}
	s.cpu = walk(s.cpu, 6, 0.5, 100)
	s.mem = walk(s.mem, 1, 5, 98)
	s.temp = walk(s.temp+(s.cpu-30)*0.01, 0.6, 30, 85)
	s.disk = walk(s.disk, 0.01, 1, 99)
	s.uptime += s.interval.Seconds()
	s.phase += 0.05
	round := func(v float64) float64 { return math.Round(v*10) / 10 }
	m["cpu.percent"] = round(s.cpu)
	m["mem.used_percent"] = round(s.mem)
	m["load.1"] = math.Round(s.cpu/25*100) / 100
	m["temp.soc"] = round(s.temp)
	m["host.uptime_s"] = math.Round(s.uptime)
	m["disk.root.used_percent"] = round(s.disk)
	m["net.eth0.rx_bytes_per_s"] = math.Round(20000 + 15000*math.Sin(s.phase) + s.rng.Float64()*5000)
	m["net.eth0.tx_bytes_per_s"] = math.Round(8000 + 6000*math.Cos(s.phase) + s.rng.Float64()*2000)
	for i := 0; i < s.extra; i++ {
		m[fmt.Sprintf("sim.m%d", i)] = round(50 + 40*math.Sin(s.phase+float64(i)))
	}
	return nil
}
