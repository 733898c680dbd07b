// Package mqttsub connects the hub to the broker with paho.mqtt.golang:
// it subscribes to every device's telemetry and status and publishes acks.
//
// The session is persistent (fixed client id, clean session off) and
// PUBACKs are manual: the broker keeps a message until the hub has
// committed it, so a hub restart loses nothing the broker still holds.
// Handlers run one goroutine per message (OrderMatters off), so a full
// ingest queue never stalls paho's keepalive.
package mqttsub

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/fleetwatch/fleetwatch/agent/telemetry"
	"github.com/fleetwatch/fleetwatch/hub"
)

// DefaultClientID is the hub's fixed MQTT client id: it names the
// persistent session the broker keeps across hub restarts.
const DefaultClientID = "fleetwatch-hub"

// Config describes the hub's broker connection.
type Config struct {
	Broker    string
	ClientID  string
	Username  string
	Password  string
	TLS       *tls.Config
	Topics    telemetry.Topics
	KeepAlive time.Duration
	// Handle receives every message; it must call Message.Ack once done.
	Handle func(hub.Message)
	Logger *slog.Logger
}

// Subscriber is the hub's MQTT client.
type Subscriber struct {
	cfg        Config
	client     mqtt.Client
	log        *slog.Logger
	subscribed atomic.Bool
	acksSent   atomic.Uint64
}

var _ hub.Acker = (*Subscriber)(nil)

// Open starts connecting; it returns at once and keeps retrying, so the
// hub starts even while the broker is down (/healthz reports it).
func Open(cfg Config) (*Subscriber, error) {
	if cfg.Handle == nil {
		return nil, fmt.Errorf("open mqtt subscriber: no handler")
	}
	if cfg.ClientID == "" {
		cfg.ClientID = DefaultClientID
	}
	if cfg.KeepAlive <= 0 {
		cfg.KeepAlive = 15 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Subscriber{cfg: cfg, log: cfg.Logger}
	opts := mqtt.NewClientOptions().
		AddBroker(cfg.Broker).
		SetClientID(cfg.ClientID).
		SetUsername(cfg.Username).
		SetPassword(cfg.Password).
		SetCleanSession(false).
		SetAutoAckDisabled(true).
		SetOrderMatters(false).
		SetKeepAlive(cfg.KeepAlive).
		SetPingTimeout(10 * time.Second).
		SetWriteTimeout(10 * time.Second).
		SetConnectTimeout(10 * time.Second).
		SetAutoReconnect(true).
		SetConnectRetry(true).
		SetConnectRetryInterval(time.Second).
		SetMaxReconnectInterval(10 * time.Second).
		// With a persistent session the broker may deliver before
		// Subscribe returns: the default handler takes those too.
		SetDefaultPublishHandler(s.handle).
		SetOnConnectHandler(s.onConnect).
		SetConnectionLostHandler(func(_ mqtt.Client, err error) {
			s.subscribed.Store(false)
			s.log.Warn("mqtt connection lost", "broker", cfg.Broker, "err", err)
		})
	if cfg.TLS != nil {
		opts.SetTLSConfig(cfg.TLS)
	}
	s.client = mqtt.NewClient(opts)
	s.client.Connect()
	return s, nil
}

func (s *Subscriber) onConnect(c mqtt.Client) {
	s.log.Info("mqtt connected", "broker", s.cfg.Broker, "client_id", s.cfg.ClientID)
	filters := map[string]byte{
		s.cfg.Topics.Filter(telemetry.KindTelemetry): 1,
		s.cfg.Topics.Filter(telemetry.KindStatus):    1,
	}
	tok := c.SubscribeMultiple(filters, s.handle)
	// Wait off paho's goroutine: blocking in OnConnect stalls the client.
	go func() {
		if !tok.WaitTimeout(30*time.Second) || tok.Error() != nil {
			s.log.Error("mqtt subscribe failed", "err", tok.Error())
			return
		}
		s.subscribed.Store(true)
		s.log.Info("mqtt subscribed", "filters", len(filters))
	}()
}

func (s *Subscriber) handle(_ mqtt.Client, m mqtt.Message) {
	s.cfg.Handle(hub.Message{Topic: m.Topic(), Payload: m.Payload(), Ack: m.Ack})
}

// PublishAck sends ack to device at QoS 1 without waiting.
func (s *Subscriber) PublishAck(device string, ack telemetry.Ack) {
	s.client.Publish(s.cfg.Topics.Ack(device), 1, false, ack.Encode())
	s.acksSent.Add(1)
}

// Ready reports whether the hub is connected and subscribed.
func (s *Subscriber) Ready() bool {
	return s.client.IsConnectionOpen() && s.subscribed.Load()
}

// AcksSent returns how many device acks were published.
func (s *Subscriber) AcksSent() uint64 { return s.acksSent.Load() }

// Close disconnects, giving in-flight acks up to 250 ms.
func (s *Subscriber) Close() {
	s.subscribed.Store(false)
	s.client.Disconnect(250)
}
