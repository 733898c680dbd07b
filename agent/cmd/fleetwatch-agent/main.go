// Command fleetwatch-agent collects a host's readings and publishes them to
// a Fleetwatch hub over MQTT, keeping every reading until the hub acks it.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"syscall"
	"time"

	"github.com/fleetwatch/fleetwatch/agent"
	"github.com/fleetwatch/fleetwatch/agent/buildinfo"
	"github.com/fleetwatch/fleetwatch/agent/collector"
	"github.com/fleetwatch/fleetwatch/agent/mqttpub"
	"github.com/fleetwatch/fleetwatch/agent/spool"
	"github.com/fleetwatch/fleetwatch/agent/telemetry"
)

// Version is set at build time with -ldflags "-X main.Version=...".
var Version = ""

func main() {
	// One reading a second needs no parallelism; one P means fewer runtime
	// threads waking up, which is most of an idle agent's CPU. GOMAXPROCS
	// in the environment still wins.
	if os.Getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(1)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cfg := DefaultConfig()
	if err := cfg.ParseFlags(os.Args[1:], os.Getenv, os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "fleetwatch-agent:", err)
		os.Exit(2)
	}
	if err := run(ctx, cfg, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "fleetwatch-agent:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, cfg Config, stdout, stderr io.Writer) error {
	var lv slog.Level
	lv.UnmarshalText([]byte(cfg.LogLevel)) //nolint:errcheck // validated
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: lv}))

	inv, err := collector.ReadInventory(ctx)
	if err != nil {
		log.Warn("host inventory incomplete", "err", err)
	}
	if cfg.Device == "" {
		if cfg.Device, err = telemetry.SanitizeDeviceID(inv.Hostname); err != nil {
			return fmt.Errorf("no --device given and the hostname is unusable: %w", err)
		}
	}
	for i := range cfg.Custom {
		if len(cfg.Custom[i].Exec) > 0 && cfg.Custom[i].Timeout == 0 {
			cfg.Custom[i].Timeout = min(collector.DefaultExecTimeout, cfg.Interval/2)
		}
	}
	custom, err := collector.Custom(cfg.Custom)
	if err != nil {
		return err
	}
	collectors := append(collector.Default(), custom...)
	if cfg.Once {
		a := &agent.Agent{Device: cfg.Device, Collectors: collectors, Logger: log}
		// Rates and CPU percent need two samples: prime, then report.
		a.Collect(ctx)
		time.Sleep(500 * time.Millisecond)
		r := a.Collect(ctx)
		out, err := json.MarshalIndent(map[string]any{"device": a.Device, "ts": r.TS, "metrics": r.Metrics}, "", "  ")
		if err != nil {
			return fmt.Errorf("encode reading: %w", err)
		}
		_, err = fmt.Fprintf(stdout, "%s\n", out)
		return err
	}
	boot := newBootID()
	var sp *spool.Spool
	if cfg.StateDir != "" {
		if err := os.MkdirAll(cfg.StateDir, 0o700); err != nil {
			return fmt.Errorf("create state dir: %w", err)
		}
		sp, err = spool.Open(filepath.Join(cfg.StateDir, "outbox"), spool.Options{MaxBytes: int64(cfg.OutboxMaxBytes), Logger: log})
		if err != nil {
			return err
		}
		if sp, boot = resume(sp, cfg.Device, boot, log); sp != nil {
			defer sp.Close()
		}
	}
	a := &agent.Agent{
		Device:        cfg.Device,
		Boot:          boot,
		Tags:          cfg.Tags,
		Interval:      cfg.Interval,
		Phase:         agent.PhaseOf(cfg.Device, cfg.Interval),
		Spool:         sp,
		SpillInterval: cfg.SpillInterval,
		MaxAge:        cfg.OutboxMaxAge,
		ReplayRate:    cfg.ReplayRate,
		Logger:        log,
	}
	a.Collectors = append(collectors, a.OutboxMetrics())
	tlsCfg, err := cfg.tlsConfig()
	if err != nil {
		return err
	}
	if cfg.TLS.InsecureSkipVerify {
		log.Warn("TLS certificate verification is OFF (tls.insecure_skip_verify): anyone on the path can read and forge this device's traffic")
	}
	topics, err := telemetry.NewTopics(cfg.TopicPrefix)
	if err != nil {
		return err
	}
	started := time.Now()
	pub, err := mqttpub.Open(mqttpub.Config{
		Broker: cfg.Broker, Username: cfg.Username, Password: cfg.Password, TLS: tlsCfg,
		Topics: topics, Device: a.Device,
		Online: telemetry.Status{
			V: telemetry.Version, State: telemetry.StateOnline, Boot: a.Boot,
			AgentVersion: version(), Hostname: inv.Hostname, OS: inv.OS, Platform: inv.Platform,
			Arch: inv.Arch, Model: inv.Model, IntervalMS: cfg.Interval.Milliseconds(),
			Started: started.UnixMilli(), HostBoot: inv.HostBoot.UnixMilli(),
		},
		OnAck:     a.HandleAck,
		OnConnect: a.Reconnected,
		Logger:    log,
	})
	if err != nil {
		return err
	}
	a.Publisher = pub
	st := a.Stats()
	log.Info("fleetwatch agent running", "version", version(), "device", a.Device, "boot", a.Boot, "next_seq", st.NextSeq,
		"broker", cfg.Broker, "interval", cfg.Interval, "state_dir", cfg.StateDir)
	// On SIGTERM Run stops collecting and saves the outbox (one group
	// write and fsync), and only then does Close say offline(shutdown).
	runErr := a.Run(ctx)
	if runErr == ctx.Err() { //nolint:errorlint // exactly ctx's error: a normal stop, with the outbox saved
		runErr = nil
	}
	st = a.Stats()
	closeCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err = pub.Close(closeCtx)
	log.Info("fleetwatch agent stopped", "pending", st.Pending, "acked", st.Acked, "dropped", st.Dropped+st.DroppedAge,
		"spilled", st.Spilled, "replayed", st.Replayed)
	return errors.Join(runErr, err)
}

// resume picks the boot to number new readings in. After a clean stop it
// is the stopped run's boot, so the hub's watermark for it simply carries
// on; after a crash, or with no state, it is boot, a new one, because the
// crashed run may have sent seqs it never wrote down. The resume point is
// cleared before any seq is taken; if that fails the state dir is not
// writable, and this run keeps its outbox in memory rather than not run.
func resume(sp *spool.Spool, device, boot string, log *slog.Logger) (*spool.Spool, string) {
	r, ok := sp.Resume()
	if !ok || r.Device != device {
		return sp, boot
	}
	if err := sp.ClearResume(); err != nil {
		log.Error("state dir is not writable: keeping the outbox in memory only", "dir", sp.Dir(), "err", err)
		sp.Close() //nolint:errcheck // nothing was written
		return nil, boot
	}
	return sp, r.Boot
}

// newBootID names this run's seq numbering: time-ordered for humans,
// random so two runs never collide.
func newBootID() string {
	var b [6]byte
	rand.Read(b[:]) //nolint:errcheck // crypto/rand never fails on Linux
	return time.Now().UTC().Format("20060102T150405") + "-" + hex.EncodeToString(b[:])
}

func version() string { return buildinfo.Version(Version) }
