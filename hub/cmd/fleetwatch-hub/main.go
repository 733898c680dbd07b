// Command fleetwatch-hub receives telemetry from fleetwatch agents over
// MQTT, keeps its history in bbolt and serves the API, live feeds and
// dashboard. Without --broker it runs an embedded broker, so one command
// runs everything.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/fleetwatch/fleetwatch/agent/buildinfo"
	"github.com/fleetwatch/fleetwatch/agent/telemetry"
	"github.com/fleetwatch/fleetwatch/dashboard"
	"github.com/fleetwatch/fleetwatch/hub"
	"github.com/fleetwatch/fleetwatch/hub/alert"
	"github.com/fleetwatch/fleetwatch/hub/boltstore"
	"github.com/fleetwatch/fleetwatch/hub/fleet"
	"github.com/fleetwatch/fleetwatch/hub/mochi"
	"github.com/fleetwatch/fleetwatch/hub/mqttsub"
	"github.com/fleetwatch/fleetwatch/hub/notify"
	"github.com/fleetwatch/fleetwatch/hub/web"
)

// Version is set at build time with -ldflags "-X main.Version=...".
var Version = ""

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	m := NewMain()
	if err := m.Config.ParseFlags(os.Args[1:], os.Getenv, os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "fleetwatch-hub:", err)
		os.Exit(2)
	}
	if err := m.Run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "fleetwatch-hub:", err)
		os.Exit(1)
	}
	<-ctx.Done()
	stop() // a second signal now kills at once
	m.Logger.Info("shutting down")
	shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := m.Close(shutdown); err != nil {
		fmt.Fprintln(os.Stderr, "fleetwatch-hub:", err)
		os.Exit(1)
	}
}

// Main is the hub program, separate from main() so tests can run it.
type Main struct {
	Config Config
	Logger *slog.Logger
	Stderr io.Writer

	Store   *boltstore.Store
	Broker  *mochi.Broker
	Sub     *mqttsub.Subscriber
	Web     *web.Server
	Ingest  *hub.Ingester
	Alerter *alert.Alerter
	Notify  *notify.Notifier

	cancel context.CancelFunc
	done   chan struct{}
}

// NewMain returns a Main with the default configuration.
func NewMain() *Main {
	return &Main{Config: DefaultConfig(), Stderr: os.Stderr}
}

// Run opens every part and returns once they are running.
func (m *Main) Run(ctx context.Context) (err error) {
	c := m.Config
	if m.Logger == nil {
		m.Logger = newLogger(m.Stderr, c.LogLevel, c.LogFormat)
	}
	log := m.Logger
	defer func() {
		if err != nil {
			m.Close(context.Background()) //nolint:errcheck // reporting the first error
		}
	}()
	topics, err := telemetry.NewTopics(c.TopicPrefix)
	if err != nil {
		return err
	}
	m.Store, err = boltstore.Open(filepath.Join(c.Data, "fleetwatch.db"), boltstore.Options{
		RawRetention:    time.Duration(c.Retention.Raw),
		MinuteRetention: time.Duration(c.Retention.Minute),
		HourRetention:   time.Duration(c.Retention.Hour),
		Logger:          log.With("system", "store"),
	})
	if err != nil {
		return err
	}
	recs, err := m.Store.Devices()
	if err != nil {
		return err
	}
	registry := hub.NewRegistry(recs)
	registry.SetHeadline(c.SummaryMetrics)
	feed := hub.NewFeed(hub.FeedOptions{})

	brokerURL := c.Broker
	if brokerURL == "" {
		m.Broker, err = mochi.Open(mochi.Config{Addr: c.MQTTListen, Username: c.MQTTUsername, Password: c.MQTTPassword, Logger: log.With("system", "broker")})
		if errors.Is(err, mochi.ErrAddrInUse) {
			return fmt.Errorf("embedded MQTT broker: %s is already in use; stop what listens there, pick another --mqtt-listen, or use that broker with --broker tcp://127.0.0.1:1883", c.MQTTListen)
		}
		if err != nil {
			return err
		}
		brokerURL = m.Broker.URL()
	}

	m.Ingest = &hub.Ingester{
		Topics:         topics,
		Store:          m.Store,
		Registry:       registry,
		Feed:           feed,
		CommitInterval: c.CommitInterval,
		Logger:         log.With("system", "ingest"),
	}
	m.Sub, err = mqttsub.Open(mqttsub.Config{
		Broker: brokerURL, ClientID: c.ClientID, Username: c.MQTTUsername, Password: c.MQTTPassword,
		Topics: topics, Handle: m.Ingest.Handle, Logger: log.With("system", "mqtt"),
	})
	if err != nil {
		return err
	}
	m.Ingest.Acker = m.Sub

	if err := m.openAlerting(registry, feed); err != nil {
		return err
	}

	dash, err := dashboard.Handler(dashboard.FS)
	if err != nil {
		return err
	}
	m.Web = &web.Server{
		Addr: c.HTTP, Registry: registry, History: m.Store, Feed: feed, Stats: &m.Ingest.Stats,
		Alerts: m.Alerter, Records: m.Store,
		MaxConns: c.MaxConns, MaxConnsPerIP: c.MaxConnsPerIP,
		Dashboard: dash, AllowedOrigins: c.AllowedOrigins, Heartbeat: c.Heartbeat,
		Ready:  m.ready,
		Gauges: m.gauges,
		Logger: log.With("system", "web"),
	}
	if err := m.Web.Open(); err != nil {
		return err
	}

	runCtx, cancel := context.WithCancel(context.Background())
	m.cancel = cancel
	m.done = make(chan struct{})
	go func() {
		defer close(m.done)
		var wg sync.WaitGroup
		defer wg.Wait()
		wg.Go(func() { registry.BroadcastFleet(runCtx, feed, c.FleetInterval, time.Now) })
		wg.Go(func() { m.Alerter.Run(runCtx) }) //nolint:errcheck // returns ctx's error on shutdown
		wg.Go(func() {
			if err := m.Notify.Run(runCtx); err != nil {
				log.Error("notifier stopped", "err", err)
			}
		})
		m.Ingest.Run(runCtx) //nolint:errcheck // returns ctx's error on shutdown
	}()
	log.Info("fleetwatch hub running", "version", version(), "http", m.Web.URL(), "broker", brokerURL, "data", c.Data, "devices", len(recs))
	return nil
}

// openAlerting builds the alert engine from the configured rules, takes
// back the alerts that were firing, and wires the alerter to the store's
// writer, the live feed and the webhooks.
func (m *Main) openAlerting(registry *hub.Registry, feed *hub.Feed) error {
	c := m.Config.Alerts
	rules, err := c.rules()
	if err != nil {
		return err
	}
	receivers, err := c.receivers()
	if err != nil {
		return err
	}
	engine, err := alert.NewEngine(rules)
	if err != nil {
		return err
	}
	firing, err := m.Store.Alerts(hub.AlertQuery{State: hub.AlertFiring, Limit: boltstore.MaxAlertLimit})
	if err != nil {
		return err
	}
	gone := engine.Restore(firing, time.Now().UnixMilli())
	m.Notify = &notify.Notifier{Receivers: receivers, Logger: m.Logger.With("system", "notify")}
	m.Alerter = &alert.Alerter{
		Engine: engine,
		Every:  c.Every,
		Fleet:  func(now int64) []fleet.Device { return registry.Snapshot(now).Devices },
		Events: registry.TakeEvents,
		Completeness: func(device string, from, to int64) (float64, error) {
			c, err := m.Store.Completeness(device, from, to)
			return c.Ratio, err
		},
		Record: m.Ingest.Record,
		Publish: func(a hub.Alert) {
			feed.Publish(hub.EventAlert, hub.ChannelAlerts, a) //nolint:errcheck // an alert always encodes
		},
		Notify: m.Notify.Notify,
		Logger: m.Logger.With("system", "alert"),
	}
	m.Ingest.Record(gone, nil)
	return nil
}

// ready is /healthz: the broker subscription is live and the last commit
// succeeded. While commits fail (disk full, read-only file system) the
// writer retries and holds every ack, so the hub is not ready even though
// it still serves reads; the failing commit's error is in the log and
// fleetwatch_commit_failing is 1 at /metrics.
func (m *Main) ready() error {
	if !m.Sub.Ready() {
		return errors.New("broker not connected and subscribed")
	}
	if err := m.Ingest.CommitErr(); err != nil {
		return fmt.Errorf("store commits failing, acks held: %w", err)
	}
	return nil
}

func (m *Main) gauges() []web.Gauge {
	st := m.Store.Stats()
	g := []web.Gauge{
		{Name: "fleetwatch_store_write_tx_total", Type: "counter", Help: "Store write transactions (two fsyncs each).", Value: float64(m.Ingest.Stats.Commits.Load())},
		{Name: "fleetwatch_store_free_pages", Type: "gauge", Help: "Free pages in the store file.", Value: float64(st.FreePageN)},
		{Name: "fleetwatch_store_series", Type: "gauge", Help: "Series (device, metric) in the store.", Value: float64(m.Store.SeriesCount())},
		{Name: "fleetwatch_acks_sent_total", Type: "counter", Help: "End-to-end acks published to devices.", Value: float64(m.Sub.AcksSent())},
		{Name: "fleetwatch_commit_failing", Type: "gauge", Help: "1 while the last store commit failed (disk full, read-only file system, ...): acks are held and /healthz answers 503.", Value: b2f(m.Ingest.CommitErr() != nil)},
	}
	if file, live, err := m.Store.Size(); err == nil {
		g = append(g,
			web.Gauge{Name: "fleetwatch_store_file_bytes", Type: "gauge", Help: "Size of the store file (bbolt's high-water mark).", Value: float64(file)},
			web.Gauge{Name: "fleetwatch_store_live_bytes", Type: "gauge", Help: "Bytes of the store file in use (the rest is free pages bbolt reuses).", Value: float64(live)},
		)
	}
	if m.Broker != nil {
		bs := m.Broker.Stats()
		g = append(g,
			web.Gauge{Name: "fleetwatch_broker_clients", Type: "gauge", Help: "Clients connected to the embedded broker.", Value: float64(bs.ClientsConnected)},
			web.Gauge{Name: "fleetwatch_broker_messages_dropped_total", Type: "counter", Help: "Messages the embedded broker dropped.", Value: float64(bs.MessagesDropped + bs.InflightDropped)},
		)
	}
	return g
}

// Close shuts down in reverse order, bounded by ctx: the web server, the
// writer (which commits what is queued), the broker subscription, the
// embedded broker, and the store.
func (m *Main) Close(ctx context.Context) error {
	var errs []error
	if m.Web != nil {
		errs = append(errs, m.Web.Close(ctx))
	}
	if m.cancel != nil {
		// The writer commits and acks what is queued; messages arriving
		// meanwhile stay unacked and the broker redelivers them.
		m.cancel()
		select {
		case <-m.done:
		case <-ctx.Done():
			errs = append(errs, fmt.Errorf("writer did not stop: %w", ctx.Err()))
		}
	}
	if m.Sub != nil {
		m.Sub.Close()
	}
	if m.Broker != nil {
		errs = append(errs, m.Broker.Close())
	}
	if m.Store != nil {
		errs = append(errs, m.Store.Close())
	}
	return errors.Join(errs...)
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func newLogger(w io.Writer, level, format string) *slog.Logger {
	var lv slog.Level
	lv.UnmarshalText([]byte(level)) //nolint:errcheck // validated in Config
	opts := &slog.HandlerOptions{Level: lv}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

func version() string { return buildinfo.Version(Version) }
