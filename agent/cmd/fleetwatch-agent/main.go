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
	"runtime/debug"
	"syscall"
	"time"

	"github.com/fleetwatch/fleetwatch/agent"
	"github.com/fleetwatch/fleetwatch/agent/collector"
	"github.com/fleetwatch/fleetwatch/agent/mqttpub"
	"github.com/fleetwatch/fleetwatch/agent/telemetry"
)

// Version is set at build time with -ldflags "-X main.Version=...".
var Version = ""

func main() {
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
	a := &agent.Agent{
		Device:     cfg.Device,
		Boot:       newBootID(),
		Tags:       cfg.Tags,
		Interval:   cfg.Interval,
		Collectors: collector.Default(),
		Logger:     log,
	}
	if cfg.Once {
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
	if cfg.StateDir != "" {
		if err := os.MkdirAll(cfg.StateDir, 0o700); err != nil {
			return fmt.Errorf("create state dir: %w", err)
		}
	}
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
	log.Info("fleetwatch agent running", "version", version(), "device", a.Device, "boot", a.Boot, "broker", cfg.Broker, "interval", cfg.Interval)
	a.Run(ctx) //nolint:errcheck // returns ctx's error on shutdown
	st := a.Stats()
	closeCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err = pub.Close(closeCtx)
	log.Info("fleetwatch agent stopped", "pending", st.Pending, "acked", st.Acked, "dropped", st.Dropped)
	return err
}

// newBootID names this run's seq numbering: time-ordered for humans,
// random so two runs never collide.
func newBootID() string {
	var b [6]byte
	rand.Read(b[:]) //nolint:errcheck // crypto/rand never fails on Linux
	return time.Now().UTC().Format("20060102T150405") + "-" + hex.EncodeToString(b[:])
}

func version() string {
	if Version != "" {
		return Version
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				return "dev-" + s.Value[:12]
			}
		}
	}
	return "dev"
}
