package main

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/fleetwatch/fleetwatch/agent"
	"github.com/fleetwatch/fleetwatch/agent/collector"
	"github.com/fleetwatch/fleetwatch/agent/spool"
	"github.com/fleetwatch/fleetwatch/agent/telemetry"
)

// Config is everything the agent can be told. Precedence, lowest first:
// defaults, the YAML file (--config), FLEETWATCH_* environment, flags.
type Config struct {
	Broker      string            `yaml:"broker"`
	Device      string            `yaml:"device"`
	Interval    time.Duration     `yaml:"interval"`
	TopicPrefix string            `yaml:"topic_prefix"`
	StateDir    string            `yaml:"state_dir"`
	Tags        map[string]string `yaml:"tags"`
	// Custom readings: exec commands and files, see collector.CustomSpec.
	Custom   []collector.CustomSpec `yaml:"custom"`
	Username string                 `yaml:"username"`
	Password string                 `yaml:"password"`
	TLS      TLSConfig              `yaml:"tls"`
	LogLevel string                 `yaml:"log_level"`
	Once     bool                   `yaml:"-"`

	// The outbox on disk, under StateDir (see package spool): readings
	// unacked for SpillInterval are on disk; it holds at most
	// OutboxMaxBytes and nothing older than OutboxMaxAge; after an outage
	// the backlog goes out at ReplayRate readings per second.
	SpillInterval  time.Duration `yaml:"spill_interval"`
	OutboxMaxBytes ByteSize      `yaml:"outbox_max_bytes"`
	OutboxMaxAge   time.Duration `yaml:"outbox_max_age"`
	ReplayRate     int           `yaml:"replay_rate"`
}

// TLSConfig configures ssl:// and mqtts:// brokers. Verification is on
// unless InsecureSkipVerify is set, which logs a warning on every start.
type TLSConfig struct {
	CAFile             string `yaml:"ca_file"`
	CertFile           string `yaml:"cert_file"`
	KeyFile            string `yaml:"key_file"`
	InsecureSkipVerify bool   `yaml:"insecure_skip_verify"`
}

// DefaultConfig returns the configuration of a plain `fleetwatch-agent`.
func DefaultConfig() Config {
	return Config{
		Broker:      "tcp://127.0.0.1:1883",
		Interval:    5 * time.Second,
		TopicPrefix: telemetry.DefaultPrefix,
		StateDir:    "",
		LogLevel:    "info",

		SpillInterval:  agent.DefaultSpillInterval,
		OutboxMaxBytes: spool.DefaultMaxBytes,
		OutboxMaxAge:   agent.DefaultMaxAge,
		ReplayRate:     agent.DefaultReplayRate,
	}
}

// ParseFlags fills c from args, the environment and the config file.
func (c *Config) ParseFlags(args []string, getenv func(string) string, stderr io.Writer) error {
	fs := flag.NewFlagSet("fleetwatch-agent", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "", "YAML config file (unknown keys are errors)")
	var f Config
	fs.StringVar(&f.Broker, "broker", c.Broker, "MQTT broker URL (tcp://, ssl://, mqtts://)")
	fs.StringVar(&f.Device, "device", c.Device, "device id (default: the hostname, sanitized)")
	fs.DurationVar(&f.Interval, "interval", c.Interval, "time between readings")
	fs.StringVar(&f.TopicPrefix, "topic-prefix", c.TopicPrefix, "MQTT topic prefix")
	fs.StringVar(&f.StateDir, "state-dir", c.StateDir, "directory for state that must survive a restart (systemd: StateDirectory)")
	fs.StringVar(&f.Username, "username", c.Username, "MQTT username (password: FLEETWATCH_MQTT_PASSWORD)")
	fs.StringVar(&f.LogLevel, "log-level", c.LogLevel, "debug, info, warn or error")
	fs.BoolVar(&c.Once, "once", false, "print one reading as JSON on stdout and exit")
	fs.DurationVar(&f.SpillInterval, "spill-interval", c.SpillInterval, "readings unacked this long are on disk in --state-dir: what a crash can lose")
	f.OutboxMaxBytes = c.OutboxMaxBytes
	fs.Var(&f.OutboxMaxBytes, "outbox-max-bytes", "most disk the outbox may use (e.g. 64MiB); the oldest readings go first")
	fs.DurationVar(&f.OutboxMaxAge, "outbox-max-age", c.OutboxMaxAge, "readings older than this are dropped")
	fs.IntVar(&f.ReplayRate, "replay-rate", c.ReplayRate, "most backlog readings per second sent after an outage")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: fleetwatch-agent [flags]\n\nCollects this host's readings and publishes them to a Fleetwatch hub over MQTT.\n\nFlags:")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	if *configPath != "" {
		if err := c.load(*configPath); err != nil {
			return err
		}
	}
	for name, dst := range map[string]*string{
		"FLEETWATCH_BROKER":        &c.Broker,
		"FLEETWATCH_DEVICE":        &c.Device,
		"FLEETWATCH_TOPIC_PREFIX":  &c.TopicPrefix,
		"FLEETWATCH_STATE_DIR":     &c.StateDir,
		"FLEETWATCH_MQTT_USERNAME": &c.Username,
		"FLEETWATCH_MQTT_PASSWORD": &c.Password,
		"FLEETWATCH_LOG_LEVEL":     &c.LogLevel,
	} {
		if v := getenv(name); v != "" {
			*dst = v
		}
	}
	fs.Visit(func(fl *flag.Flag) {
		switch fl.Name {
		case "broker":
			c.Broker = f.Broker
		case "device":
			c.Device = f.Device
		case "interval":
			c.Interval = f.Interval
		case "topic-prefix":
			c.TopicPrefix = f.TopicPrefix
		case "state-dir":
			c.StateDir = f.StateDir
		case "username":
			c.Username = f.Username
		case "log-level":
			c.LogLevel = f.LogLevel
		case "spill-interval":
			c.SpillInterval = f.SpillInterval
		case "outbox-max-bytes":
			c.OutboxMaxBytes = f.OutboxMaxBytes
		case "outbox-max-age":
			c.OutboxMaxAge = f.OutboxMaxAge
		case "replay-rate":
			c.ReplayRate = f.ReplayRate
		}
	})
	return c.Validate()
}

func (c *Config) load(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read config: %w", err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(c); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("config %s: %w", path, err)
	}
	return nil
}

// Validate reports the first unusable setting.
func (c *Config) Validate() error {
	if err := telemetry.ValidatePrefix(c.TopicPrefix); err != nil {
		return fmt.Errorf("topic_prefix: %w", err)
	}
	if c.Device != "" {
		if err := telemetry.ValidateDeviceID(c.Device); err != nil {
			return fmt.Errorf("device: %w", err)
		}
	}
	if c.Interval < 100*time.Millisecond || c.Interval > time.Hour {
		return fmt.Errorf("interval %s: want between 100ms and 1h", c.Interval)
	}
	if !c.Once && !strings.Contains(c.Broker, "://") {
		return fmt.Errorf("broker %q: want a URL like tcp://hub:1883", c.Broker)
	}
	probe := telemetry.Envelope{V: telemetry.Version, Device: "x", Boot: "x", Tags: c.Tags,
		Readings: []telemetry.Reading{{Seq: 1, TS: 1, Metrics: telemetry.Metrics{"x": 1}}}}
	if err := probe.Validate("x"); err != nil {
		return fmt.Errorf("tags: %w", err)
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		return fmt.Errorf("log_level %q: want debug, info, warn or error", c.LogLevel)
	}
	if _, err := collector.Custom(c.Custom); err != nil {
		return err
	}
	for _, s := range c.Custom {
		// Collectors run in turn: a command as slow as the interval would
		// delay every reading.
		if len(s.Exec) > 0 && s.Timeout >= c.Interval {
			return fmt.Errorf("custom %q: timeout %s must be below the interval %s", s.Name, s.Timeout, c.Interval)
		}
	}
	if c.SpillInterval < 100*time.Millisecond || c.SpillInterval > time.Hour {
		return fmt.Errorf("spill_interval %s: want between 100ms and 1h", c.SpillInterval)
	}
	if c.OutboxMaxBytes < 64<<10 {
		return fmt.Errorf("outbox_max_bytes %s: want at least 64KiB", c.OutboxMaxBytes)
	}
	if c.OutboxMaxAge < time.Minute {
		return fmt.Errorf("outbox_max_age %s: want at least 1m", c.OutboxMaxAge)
	}
	if c.ReplayRate < 1 || c.ReplayRate > 100_000 {
		return fmt.Errorf("replay_rate %d: want between 1 and 100000 readings per second", c.ReplayRate)
	}
	return nil
}

// ByteSize is a number of bytes, written as an integer with an optional
// binary unit: 65536, 512KiB, 64MiB, 1GiB.
type ByteSize int64

var byteUnits = []struct {
	suffix string
	n      int64
}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"B", 1}}

// Set parses s; it makes ByteSize a flag.Value.
func (b *ByteSize) Set(s string) error {
	num, unit := strings.TrimSpace(s), int64(1)
	for _, u := range byteUnits {
		if rest, ok := strings.CutSuffix(num, u.suffix); ok {
			num, unit = strings.TrimSpace(rest), u.n
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n < 0 || n > (1<<62)/unit {
		return fmt.Errorf("size %q: want bytes, or a number with KiB, MiB or GiB", s)
	}
	*b = ByteSize(n * unit)
	return nil
}

// String formats b in the largest unit that divides it.
func (b ByteSize) String() string {
	for _, u := range byteUnits {
		if b != 0 && int64(b)%u.n == 0 {
			return strconv.FormatInt(int64(b)/u.n, 10) + u.suffix
		}
	}
	return "0B"
}

// UnmarshalYAML accepts the same forms as Set.
func (b *ByteSize) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: size: want a scalar", n.Line)
	}
	if err := b.Set(n.Value); err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	return nil
}

// tlsConfig returns nil for plain brokers.
func (c *Config) tlsConfig() (*tls.Config, error) {
	scheme, _, _ := strings.Cut(c.Broker, "://")
	switch scheme {
	case "ssl", "tls", "mqtts", "tcps", "wss":
	default:
		return nil, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: c.TLS.InsecureSkipVerify} //nolint:gosec // opt-in, warned about
	if c.TLS.CAFile != "" {
		pem, err := os.ReadFile(c.TLS.CAFile)
		if err != nil {
			return nil, fmt.Errorf("read tls ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls ca_file %s: no PEM certificates", c.TLS.CAFile)
		}
		cfg.RootCAs = pool
	}
	if c.TLS.CertFile != "" || c.TLS.KeyFile != "" {
		cert, err := tls.LoadX509KeyPair(c.TLS.CertFile, c.TLS.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("load tls client certificate: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}
