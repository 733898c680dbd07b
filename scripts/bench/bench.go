package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// simFixedMetrics are the metrics every stamped sim reading carries
// besides --metrics: 8 synthetic, agent.collector_errors, bench.sent_us.
const simFixedMetrics = 10

// Bench runs the phases in order and keeps what later phases need.
type Bench struct {
	Sizes  Sizes
	Scene  *Scene
	Log    *slog.Logger
	BinDir string

	root      string
	broker    string
	mosquitto *Proc
	mqBin     string
	hub       *Hub
	armBytes  int64
	armErr    error
	rows      map[string]Row
	notes     []string

	// for the smoke check
	replayStored, liveStored float64
	replayMetrics            int
}

// Row names, in table order.
var rowOrder = []string{"ingest", "latency", "fan-out", "storage", "query", "durability cost", "agent", "loss"}

var goals = map[string]string{
	"ingest":          "ratio ≥ 0.9, 0 loss",
	"latency":         "hub adds ≤ 5 ms p99; total ≤ 50 ms p99",
	"fan-out":         "≤ 100 ms p99, ≤ 16 KB/conn at 10k",
	"storage":         "≤ 2 B/sample",
	"query":           "≤ 5 ms",
	"durability cost": "≤ 4/s",
	"agent":           "≤ 0.5× RSS, ≤ 0.2× CPU, ≤ 8 MB",
	"loss":            "0, 0",
}

func (b *Bench) setRow(r Row) {
	r.Goal = goals[r.Name]
	b.rows[r.Name] = r
}

func (b *Bench) note(format string, args ...any) {
	b.notes = append(b.notes, fmt.Sprintf(format, args...))
}

// Run sets up the scene and runs every phase. A phase that cannot run
// leaves its row saying why; a scene that cannot start is an error.
func (b *Bench) Run(ctx context.Context) (rep *Report, err error) {
	b.rows = map[string]Row{}
	rep = &Report{Sizes: b.sizesJSON()}
	defer func() {
		told := false
		for _, name := range rowOrder {
			r, ok := b.rows[name]
			if !ok {
				why := "the run stopped before this row"
				if err != nil && !told {
					why, told = why+": "+err.Error(), true
				}
				r = notRun(name, goals[name], why)
			}
			rep.Rows = append(rep.Rows, r)
		}
		rep.Notes = b.notes
	}()
	rep.Machine = machine(ctx, "")
	if err := b.setup(ctx); err != nil {
		return rep, err
	}
	rep.Machine.Mosquitto = mosquittoVersion(b.mqBin)
	steps := []struct {
		name string
		fn   func(context.Context) error
	}{
		{"query", b.phaseQuery},
		{"load", b.phaseLoad},
		{"agent", b.phaseAgent},
	}
	for _, s := range steps {
		b.Log.Info("phase", "name", s.name)
		if err := s.fn(ctx); err != nil {
			if cause := context.Cause(ctx); cause != nil && cause != ctx.Err() {
				err = cause // the memory guard or the budget, rather than "context canceled"
			}
			return rep, fmt.Errorf("%s: %w", s.name, err)
		}
	}
	return rep, b.hub.Stop()
}

func (b *Bench) sizesJSON() map[string]any {
	s := b.Sizes
	broker := "mosquitto with Nagle on (its default, as configs/mosquitto.conf)"
	if s.NoDelay {
		broker = "mosquitto with set_tcp_nodelay true"
	}
	conns := strconv.Itoa(s.Conns) + " MQTT connections"
	if s.Conns == 0 {
		conns = "one MQTT connection each"
	}
	return map[string]any{
		"profile": s.Profile, "devices": s.Devices, "metrics": s.Metrics, "conns": s.Conns, "clients": s.Clients,
		"interval_s": s.Interval.Seconds(), "window_s": s.Window.Seconds(), "fan_window_s": s.FanWindow.Seconds(),
		"agent_window_s": s.AgentWindow.Seconds(), "replay_s": s.Replay.Seconds(), "queries": s.Queries, "tcp_nodelay": s.NoDelay,
		"text": fmt.Sprintf("profile %s: %d devices × %d metrics every %s over %s; K = %d WS + %d SSE clients; windows %s ingest, %s per fan-out transport, %s agent; query device %s of history at 1 s; %s",
			s.Profile, s.Devices, s.Metrics, s.Interval, conns, s.Clients, s.Clients, s.Window, s.FanWindow, s.AgentWindow, s.Replay, broker),
	}
}

func (b *Bench) setup(ctx context.Context) error {
	var err error
	if b.root, err = moduleRoot(ctx); err != nil {
		return err
	}
	if b.Scene.Bin, err = filepath.Abs(b.BinDir); err != nil {
		return fmt.Errorf("setup: %w", err)
	}
	if b.BinDir == "" {
		b.Scene.Bin = filepath.Join(b.Scene.Dir, "bin")
		b.Log.Info("building from the tree", "into", b.Scene.Bin)
		if err := build(ctx, b.root, b.Scene.Bin); err != nil {
			return err
		}
	}
	for _, name := range binaries {
		if _, err := os.Stat(filepath.Join(b.Scene.Bin, name)); err != nil {
			return fmt.Errorf("setup: %w (run make build or drop --bin)", err)
		}
	}
	if b.Sizes.ArmBuild {
		b.armBytes, b.armErr = armSize(ctx, b.root, b.Scene.Dir)
	} else {
		b.armErr = errors.New("skipped in the " + b.Sizes.Profile + " profile")
	}
	if b.mqBin, err = ensurePackage(ctx, b.Log, "mosquitto", "mosquitto", b.Sizes.Install); err != nil {
		return fmt.Errorf("setup: %w", err)
	}
	if b.mosquitto, b.broker, err = b.Scene.startMosquitto(ctx, b.mqBin, b.Sizes.NoDelay); err != nil {
		return err
	}
	traceBin := straceUsable(ctx, b.Scene.Dir)
	if b.hub, err = b.Scene.startHub(ctx, b.broker, traceBin); err != nil {
		return err
	}
	b.Log.Info("scene up", "broker", b.broker, "hub", b.hub.URL, "hub_pid", b.hub.PID, "strace", traceBin != "")
	return nil
}

// SimSummary is the part of fleetwatch-sim --summary the harness reads.
type SimSummary struct {
	Devices           int    `json:"devices"`
	MetricsPerReading int    `json:"metrics_per_reading"`
	Published         uint64 `json:"readings_published"`
	Acked             uint64 `json:"readings_acked"`
	Pending           uint64 `json:"readings_pending"`
	Dropped           uint64 `json:"readings_dropped"`
	Messages          uint64 `json:"messages"`
	PayloadBytes      uint64 `json:"payload_bytes"`
	Started           int64  `json:"started_ms"`
	Stopped           int64  `json:"stopped_ms"`
	PerDevice         map[string]struct {
		LastSeq uint64 `json:"last_seq"`
		Acked   uint64 `json:"acked"`
		From    int64  `json:"from_ms"`
		To      int64  `json:"to_ms"`
		N       int64  `json:"n"`
	} `json:"per_device"`
}

func readSummary(path string) (*SimSummary, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("sim summary: %w", err)
	}
	var s SimSummary
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("sim summary %s: %w", path, err)
	}
	return &s, nil
}

// startSim runs fleetwatch-sim with args plus the broker and a summary
// file, and returns the summary's path.
func (b *Bench) startSim(name string, args ...string) (*Proc, string, error) {
	summary := filepath.Join(b.Scene.Dir, name+"-summary.json")
	args = append([]string{"--broker", b.broker, "--summary", summary}, args...)
	p, err := b.Scene.Start(name, filepath.Join(b.Scene.Bin, "fleetwatch-sim"), args...)
	return p, summary, err
}

// SmokeCheck fails when the scene did not work at all; it judges no figure.
func (b *Bench) SmokeCheck() error {
	var errs []error
	if b.replayStored <= 0 {
		errs = append(errs, errors.New("smoke: the query device's replay stored nothing"))
	}
	if b.liveStored <= 0 {
		errs = append(errs, errors.New("smoke: the live fleet stored nothing"))
	}
	for _, name := range rowOrder {
		// A row measured but not judged at this size has its values.
		if r := b.rows[name]; r.Verdict == NA && r.Values == nil && r.Name != "agent" {
			errs = append(errs, fmt.Errorf("smoke: row %s did not run: %s", name, r.Why))
		}
	}
	return errors.Join(errs...)
}

// waitFor polls cond every 200 ms until it holds, d passes, or ctx ends.
func waitFor(ctx context.Context, d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) || sleep(ctx, 200*time.Millisecond) != nil {
			return false
		}
	}
	return true
}
