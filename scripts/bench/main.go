// Command fleetwatch-bench is `make bench`: it sets up a real Fleetwatch
// scene on this machine (mosquitto on a free loopback port, the hub built
// from the tree, fleetwatch-sim devices, WebSocket and SSE clients, a
// plain MQTT subscriber, the real agent and prometheus-node-exporter) and
// prints a markdown table of figures, each measured in the same run as its
// baseline, so a noisy machine still gives an honest ratio. The same table
// goes to --json as JSON.
//
// Sizes come from a profile (BENCH=default|full|smoke or --profile), then
// BENCH_* environment variables, then flags. All traffic stays on
// 127.0.0.1; every process started is stopped on exit, failure or Ctrl-C.
//
// --smoke (BENCH=smoke) runs tiny sizes for `make test`: it asserts no
// figure, but exits non-zero when the scene itself breaks.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// Sizes are the knobs of one run.
type Sizes struct {
	Profile     string
	Devices     int           // live fleet
	Metrics     int           // per reading, all included
	Conns       int           // sim MQTT connections (0: one per device)
	Clients     int           // K WebSocket and K SSE fan-out clients
	Interval    time.Duration // reading interval
	Warmup      time.Duration
	Window      time.Duration // ingest and latency window
	FanWindow   time.Duration // per transport
	AgentWindow time.Duration
	Replay      time.Duration // history of the query device, at 1 s
	Queries     int
	Install     bool // apt-get missing baselines
	ArmBuild    bool
	NoDelay     bool // mosquitto set_tcp_nodelay true
	MaxPending  int  // sim outbox bound per device (0: the agent's default)
}

func profile(name string) (Sizes, error) {
	switch name {
	case "", "default":
		return Sizes{Profile: "default", Devices: 200, Metrics: 30, Conns: 20, Clients: 200, Interval: time.Second,
			Warmup: 5 * time.Second, Window: 30 * time.Second, FanWindow: 15 * time.Second, AgentWindow: 20 * time.Second,
			Replay: 24 * time.Hour, Queries: 100, Install: true, ArmBuild: true}, nil
	case "full":
		// MaxPending: 10k devices in one sim process would each hold up
		// to the agent's 100k readings while a hub lags; 2 minutes each
		// keeps the sim's memory bounded (older readings become gaps).
		return Sizes{Profile: "full", Devices: 10_000, Metrics: 30, Conns: 100, Clients: 10_000, Interval: time.Second,
			Warmup: 15 * time.Second, Window: 60 * time.Second, FanWindow: 30 * time.Second, AgentWindow: 60 * time.Second,
			Replay: 24 * time.Hour, Queries: 100, Install: true, ArmBuild: true, MaxPending: 120}, nil
	case "smoke":
		return Sizes{Profile: "smoke", Devices: 5, Metrics: 12, Conns: 2, Clients: 3, Interval: time.Second,
			Warmup: 2 * time.Second, Window: 3 * time.Second, FanWindow: 3 * time.Second, AgentWindow: 3 * time.Second,
			Replay: 10 * time.Minute, Queries: 5}, nil
	}
	return Sizes{}, fmt.Errorf("unknown profile %q: want default, full or smoke", name)
}

func main() {
	if len(os.Args) > 2 && os.Args[1] == execDying {
		execDyingWithParent(os.Args[2:])
	}
	os.Exit(run())
}

func run() int {
	fs := flag.NewFlagSet("fleetwatch-bench", flag.ExitOnError)
	prof := fs.String("profile", os.Getenv("BENCH"), "default, full (the goal sizes) or smoke (for make test); env BENCH")
	smoke := fs.Bool("smoke", false, "same as --profile smoke")
	jsonPath := fs.String("json", filepath.Join(os.TempDir(), "fleetwatch-bench.json"), "write the results as JSON here")
	binDir := fs.String("bin", "", "use the fleetwatch binaries in this directory instead of building them")
	keep := fs.Bool("keep", false, "keep the scene's temp dir (logs, data) after the run")
	verbose := fs.Bool("v", false, "debug logs")
	noDelay := fs.Bool("tcp-nodelay", os.Getenv("BENCH_TCP_NODELAY") != "0", "run mosquitto with set_tcp_nodelay true, as configs/mosquitto.conf does (mosquitto's own default is false); env BENCH_TCP_NODELAY=0 to compare")
	devices := fs.Int("devices", 0, "live devices (env BENCH_DEVICES)")
	metrics := fs.Int("metrics", 0, "metrics per reading, at least 10 (env BENCH_METRICS)")
	conns := fs.Int("conns", -1, "sim MQTT connections, 0: one per device (env BENCH_CONNS)")
	clients := fs.Int("clients", 0, "WebSocket and SSE fan-out clients, K of each (env BENCH_CLIENTS)")
	window := fs.Duration("window", 0, "ingest and latency window (env BENCH_WINDOW)")
	fanWindow := fs.Duration("fan-window", 0, "fan-out window per transport (env BENCH_FAN_WINDOW)")
	agentWindow := fs.Duration("agent-window", 0, "agent footprint window (env BENCH_AGENT_WINDOW)")
	replay := fs.Duration("replay", 0, "history backfilled for the query row, at 1 s (env BENCH_REPLAY)")
	queries := fs.Int("queries", 0, "history queries timed (env BENCH_QUERIES)")
	fs.Parse(os.Args[1:]) //nolint:errcheck // ExitOnError
	if *smoke {
		*prof = "smoke"
	}
	sz, err := profile(*prof)
	if err != nil {
		fmt.Fprintln(os.Stderr, "fleetwatch-bench:", err)
		return 2
	}
	pick := func(flagV int, env string, dst *int) {
		if v, err := strconv.Atoi(os.Getenv(env)); err == nil {
			*dst = v
		}
		if flagV > 0 || (env == "BENCH_CONNS" && flagV == 0) {
			*dst = flagV
		}
	}
	pickD := func(flagV time.Duration, env string, dst *time.Duration) {
		if v, err := time.ParseDuration(os.Getenv(env)); err == nil {
			*dst = v
		}
		if flagV > 0 {
			*dst = flagV
		}
	}
	pick(*devices, "BENCH_DEVICES", &sz.Devices)
	pick(*metrics, "BENCH_METRICS", &sz.Metrics)
	pick(*conns, "BENCH_CONNS", &sz.Conns)
	pick(*clients, "BENCH_CLIENTS", &sz.Clients)
	pick(*queries, "BENCH_QUERIES", &sz.Queries)
	pickD(*window, "BENCH_WINDOW", &sz.Window)
	pickD(*fanWindow, "BENCH_FAN_WINDOW", &sz.FanWindow)
	pickD(*agentWindow, "BENCH_AGENT_WINDOW", &sz.AgentWindow)
	pickD(*replay, "BENCH_REPLAY", &sz.Replay)
	sz.NoDelay = *noDelay
	if sz.Metrics < simFixedMetrics || sz.Devices < 1 || sz.Clients < 1 || sz.Replay < time.Minute {
		fmt.Fprintf(os.Stderr, "fleetwatch-bench: need --metrics ≥ %d, --devices ≥ 1, --clients ≥ 1, --replay ≥ 1m\n", simFixedMetrics)
		return 2
	}

	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, guardStop := memoryGuard(ctx, log)
	defer guardStop()
	// A load run is bounded in time as well as in count: past its budget it
	// stops every process and reports the rows it did not reach, with why.
	budget := runBudget(sz.Profile, os.Getenv("BENCH_BUDGET"))
	ctx, cancelBudget := context.WithTimeoutCause(ctx, budget, fmt.Errorf("%w of %s (BENCH_BUDGET)", errBudget, budget))
	defer cancelBudget()
	raiseNoFile(log)

	dir, err := os.MkdirTemp("", "fleetwatch-bench-")
	if err != nil {
		log.Error("temp dir", "err", err)
		return 1
	}
	scene := &Scene{Dir: dir, Log: log}
	b := &Bench{Sizes: sz, Scene: scene, Log: log, BinDir: *binDir}
	start := time.Now()
	rep, err := b.Run(ctx)
	scene.Close() // before printing: nothing may outlive the run
	rep.Seconds = time.Since(start).Seconds()
	rep.Markdown(os.Stdout)
	if jerr := rep.WriteJSON(*jsonPath); jerr != nil {
		log.Error("json", "err", jerr)
	} else {
		log.Info("results written", "json", *jsonPath, "seconds", int(rep.Seconds))
	}
	if err == nil && sz.Profile == "smoke" {
		err = b.SmokeCheck()
	}
	if err != nil || *keep {
		log.Info("scene kept for inspection", "dir", dir)
	} else {
		os.RemoveAll(dir)
	}
	if err != nil {
		if cause := context.Cause(ctx); errors.Is(cause, errBudget) {
			log.Error("stopped at the time budget; every process stopped", "cause", cause)
			return 1
		}
		if cause := context.Cause(ctx); errors.Is(cause, errMemory) {
			log.Error("stopped by the memory guard; every process stopped", "cause", cause)
			return 1
		}
		if errors.Is(err, context.Canceled) {
			log.Error("interrupted; every process stopped")
			return 130
		}
		log.Error("bench failed", "err", err)
		return 1
	}
	return 0
}

// raiseNoFile lifts the open-file limit to its hard maximum: 10,000 WS and
// SSE clients need a socket each on both ends, and the children (the hub)
// inherit the raised limit.
func raiseNoFile(log *slog.Logger) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		log.Warn("getrlimit", "err", err)
		return
	}
	lim.Cur = lim.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		log.Warn("setrlimit", "err", err)
	}
}

// errBudget is the cause of a run stopped at its time budget.
var errBudget = errors.New("time budget exceeded")

// runBudget is the longest a run may take: BENCH_BUDGET when set, else a
// margin over what the profile needs on 2 cores.
func runBudget(profile, env string) time.Duration {
	if d, err := time.ParseDuration(env); err == nil && d > 0 {
		return d
	}
	switch profile {
	case "full":
		return 45 * time.Minute
	case "smoke":
		return 3 * time.Minute
	}
	return 10 * time.Minute
}
