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
	Heartbeat      time.Duration `yaml:"sse_heartbeat"`
	AllowedOrigins []string      `yaml:"allowed_origins"`
	LogLevel       string        `yaml:"log_level"`
	LogFormat      string        `yaml:"log_format"`
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
		Heartbeat:      15 * time.Second,
		LogLevel:       "info",
		LogFormat:      "text",
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
	if c.Heartbeat <= 0 {
		return fmt.Errorf("sse_heartbeat %s: must be positive", c.Heartbeat)
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		return fmt.Errorf("log_level %q: want debug, info, warn or error", c.LogLevel)
	}
	return nil
}
