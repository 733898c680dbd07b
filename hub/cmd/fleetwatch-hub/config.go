package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/fleetwatch/fleetwatch/agent/telemetry"
	"github.com/fleetwatch/fleetwatch/hub/alert"
	"github.com/fleetwatch/fleetwatch/hub/boltstore"
	"github.com/fleetwatch/fleetwatch/hub/fleet"
	"github.com/fleetwatch/fleetwatch/hub/web"
)

// Config is everything the hub can be told. Precedence, lowest first:
// defaults, the YAML file (--config), FLEETWATCH_* environment, flags.
type Config struct {
	HTTP           string        `yaml:"http"`
	Broker         string        `yaml:"broker"`
	MQTTListen     string        `yaml:"mqtt_listen"`
	Data           string        `yaml:"data"`
	TopicPrefix    string        `yaml:"topic_prefix"`
	ClientID       string        `yaml:"client_id"`
	MQTTUsername   string        `yaml:"mqtt_username"`
	MQTTPassword   string        `yaml:"mqtt_password"`
	CommitInterval time.Duration `yaml:"commit_interval"`
	FleetInterval  time.Duration `yaml:"fleet_interval"`
	SummaryMetrics []string      `yaml:"summary_metrics"`
	Heartbeat      time.Duration `yaml:"sse_heartbeat"`
	AllowedOrigins []string      `yaml:"allowed_origins"`
	MaxConns       int           `yaml:"max_connections"`
	MaxConnsPerIP  int           `yaml:"max_connections_per_ip"`
	Retention      Retention     `yaml:"retention"`
	Alerts         Alerts        `yaml:"alerts"`
	LogLevel       string        `yaml:"log_level"`
	LogFormat      string        `yaml:"log_format"`
}

// Retention is how long the history store keeps each tier.
type Retention struct {
	Raw    Duration `yaml:"raw"`    // samples as sent
	Minute Duration `yaml:"minute"` // 1-minute rollups
	Hour   Duration `yaml:"hour"`   // 1-hour rollups
}

// Duration is a time.Duration that also reads whole days ("7d", "90d"),
// the unit retention is thought of in.
type Duration time.Duration

// Set parses "7d", "36h", "90m" and the like (flag.Value).
func (d *Duration) Set(s string) error {
	if days, ok := strings.CutSuffix(s, "d"); ok {
		var n int64
		if _, err := fmt.Sscanf(days, "%d", &n); err != nil || n <= 0 || fmt.Sprint(n) != days {
			return fmt.Errorf("duration %q: want a whole number of days like 7d, or a Go duration like 36h", s)
		}
		*d = Duration(time.Duration(n) * 24 * time.Hour)
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("duration %q: want a whole number of days like 7d, or a Go duration like 36h", s)
	}
	*d = Duration(v)
	return nil
}

func (d Duration) String() string {
	if v := time.Duration(d); v%(24*time.Hour) == 0 && v > 0 {
		return fmt.Sprintf("%dd", v/(24*time.Hour))
	}
	return time.Duration(d).String()
}

// UnmarshalYAML reads a duration string.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	var s string
	if err := n.Decode(&s); err != nil {
		return err
	}
	return d.Set(s)
}

// DefaultConfig returns the configuration of a plain `fleetwatch-hub`.
func DefaultConfig() Config {
	return Config{
		HTTP:           ":8080",
		MQTTListen:     ":1883",
		Data:           "./data",
		TopicPrefix:    telemetry.DefaultPrefix,
		ClientID:       "fleetwatch-hub",
		CommitInterval: 500 * time.Millisecond,
		FleetInterval:  time.Second,
		SummaryMetrics: fleet.DefaultHeadline,
		MaxConns:       web.DefaultMaxConns,
		MaxConnsPerIP:  web.DefaultMaxConnsPerIP,
		Heartbeat:      15 * time.Second,
		Retention: Retention{
			Raw:    Duration(boltstore.DefaultRawRetention),
			Minute: Duration(boltstore.DefaultMinuteRetention),
			Hour:   Duration(boltstore.DefaultHourRetention),
		},
		Alerts:    Alerts{Every: alert.DefaultEvery},
		LogLevel:  "info",
		LogFormat: "text",
	}
}

// ParseFlags fills c from args, the environment and the config file.
func (c *Config) ParseFlags(args []string, getenv func(string) string, stderr io.Writer) error {
	fs := flag.NewFlagSet("fleetwatch-hub", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "", "YAML config file (unknown keys are errors)")
	var f Config
	fs.StringVar(&f.HTTP, "http", c.HTTP, "HTTP listen address for the API and dashboard")
	fs.StringVar(&f.Broker, "broker", c.Broker, "MQTT broker URL, e.g. tcp://127.0.0.1:1883 (empty: run the embedded broker)")
	fs.StringVar(&f.MQTTListen, "mqtt-listen", c.MQTTListen, "listen address of the embedded broker")
	fs.StringVar(&f.Data, "data", c.Data, "data directory (history store)")
	fs.StringVar(&f.TopicPrefix, "topic-prefix", c.TopicPrefix, "MQTT topic prefix")
	fs.StringVar(&f.ClientID, "client-id", c.ClientID, "MQTT client id (names the hub's persistent session)")
	fs.StringVar(&f.MQTTUsername, "mqtt-username", c.MQTTUsername, "MQTT username (password: FLEETWATCH_MQTT_PASSWORD)")
	fs.DurationVar(&f.CommitInterval, "commit-interval", c.CommitInterval, "longest a reading waits for its durable commit")
	f.Retention = c.Retention
	fs.Var(&f.Retention.Raw, "retention-raw", "how long raw samples are kept")
	fs.Var(&f.Retention.Minute, "retention-1m", "how long 1-minute rollups are kept")
	fs.Var(&f.Retention.Hour, "retention-1h", "how long 1-hour rollups are kept")
	fs.IntVar(&f.MaxConns, "max-connections", c.MaxConns, "live connections (WebSocket, SSE, long-poll) in total; past it 503")
	fs.IntVar(&f.MaxConnsPerIP, "max-connections-per-ip", c.MaxConnsPerIP, "live connections from one address; past it 429")
	fs.StringVar(&f.LogLevel, "log-level", c.LogLevel, "debug, info, warn or error")
	fs.StringVar(&f.LogFormat, "log-format", c.LogFormat, "text or json")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: fleetwatch-hub [flags]\n\nRuns the Fleetwatch hub: MQTT ingest, history store, API, live feeds and dashboard.\n\nFlags:")
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
	c.env(getenv)
	set := map[string]bool{}
	fs.Visit(func(fl *flag.Flag) { set[fl.Name] = true })
	apply := func(name string, dst *string, v string) {
		if set[name] {
			*dst = v
		}
	}
	apply("http", &c.HTTP, f.HTTP)
	apply("broker", &c.Broker, f.Broker)
	apply("mqtt-listen", &c.MQTTListen, f.MQTTListen)
	apply("data", &c.Data, f.Data)
	apply("topic-prefix", &c.TopicPrefix, f.TopicPrefix)
	apply("client-id", &c.ClientID, f.ClientID)
	apply("mqtt-username", &c.MQTTUsername, f.MQTTUsername)
	apply("log-level", &c.LogLevel, f.LogLevel)
	apply("log-format", &c.LogFormat, f.LogFormat)
	if set["commit-interval"] {
		c.CommitInterval = f.CommitInterval
	}
	if set["max-connections"] {
		c.MaxConns = f.MaxConns
	}
	if set["max-connections-per-ip"] {
		c.MaxConnsPerIP = f.MaxConnsPerIP
	}
	for name, p := range map[string][2]*Duration{
		"retention-raw": {&c.Retention.Raw, &f.Retention.Raw},
		"retention-1m":  {&c.Retention.Minute, &f.Retention.Minute},
		"retention-1h":  {&c.Retention.Hour, &f.Retention.Hour},
	} {
		if set[name] {
			*p[0] = *p[1]
		}
	}
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

func (c *Config) env(getenv func(string) string) {
	for name, dst := range map[string]*string{
		"FLEETWATCH_HTTP":          &c.HTTP,
		"FLEETWATCH_BROKER":        &c.Broker,
		"FLEETWATCH_MQTT_LISTEN":   &c.MQTTListen,
		"FLEETWATCH_DATA":          &c.Data,
		"FLEETWATCH_TOPIC_PREFIX":  &c.TopicPrefix,
		"FLEETWATCH_MQTT_USERNAME": &c.MQTTUsername,
		"FLEETWATCH_MQTT_PASSWORD": &c.MQTTPassword,
		"FLEETWATCH_LOG_LEVEL":     &c.LogLevel,
	} {
		if v := getenv(name); v != "" {
			*dst = v
		}
	}
}

// Validate reports the first unusable setting.
func (c *Config) Validate() error {
	if err := telemetry.ValidatePrefix(c.TopicPrefix); err != nil {
		return fmt.Errorf("topic_prefix: %w", err)
	}
	if c.HTTP == "" {
		return errors.New("http: listen address is empty")
	}
	if c.Broker == "" && c.MQTTListen == "" {
		return errors.New("mqtt_listen: empty, and no broker given")
	}
	if c.Broker != "" && !strings.Contains(c.Broker, "://") {
		return fmt.Errorf("broker %q: want a URL like tcp://host:1883", c.Broker)
	}
	if c.Data == "" {
		return errors.New("data: directory is empty")
	}
	if c.CommitInterval <= 0 || c.CommitInterval > 10*time.Second {
		return fmt.Errorf("commit_interval %s: want between 1ms and 10s", c.CommitInterval)
	}
	if c.FleetInterval <= 0 {
		return fmt.Errorf("fleet_interval %s: must be positive", c.FleetInterval)
	}
	for _, m := range c.SummaryMetrics {
		if !telemetry.ValidMetricName(m) {
			return fmt.Errorf("summary_metrics: %q is not a metric name", m)
		}
	}
	if len(c.SummaryMetrics) > 32 {
		return fmt.Errorf("summary_metrics: %d metrics, want at most 32 (every browser gets them each second)", len(c.SummaryMetrics))
	}
	if c.Heartbeat <= 0 {
		return fmt.Errorf("sse_heartbeat %s: must be positive", c.Heartbeat)
	}
	if c.MaxConns < 1 || c.MaxConnsPerIP < 1 || c.MaxConnsPerIP > c.MaxConns {
		return fmt.Errorf("max_connections %d, max_connections_per_ip %d: want both at least 1, per IP at most the total", c.MaxConns, c.MaxConnsPerIP)
	}
	r := c.Retention
	switch {
	case time.Duration(r.Raw) < 10*time.Minute:
		return fmt.Errorf("retention.raw %s: want at least 10m", r.Raw)
	case r.Minute < r.Raw:
		return fmt.Errorf("retention.minute %s: want at least retention.raw (%s)", r.Minute, r.Raw)
	case r.Hour < r.Minute:
		return fmt.Errorf("retention.hour %s: want at least retention.minute (%s)", r.Hour, r.Minute)
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		return fmt.Errorf("log_level %q: want debug, info, warn or error", c.LogLevel)
	}
	return c.Alerts.validate()
}
