// Package mqttpub publishes an agent's telemetry and presence over MQTT with
// paho.mqtt.golang, and hands the hub's acks back to the agent.
//
// paho's own store is not relied on for delivery (it is in memory, unordered
// and lost on restart): the session is clean, QoS 1 is used so the broker
// confirms each publish, and the agent's outbox resends whatever the hub has
// not acked.
//
// Reconnects are ours, not paho's: paho's backoff has no jitter (a fleet
// that lost its broker would reconnect in lockstep) and its retry loop
// hides why a connection failed. The Publisher retries with jittered
// exponential backoff capped at MaxReconnect and logs every failure with
// its cause (refused credentials, an untrusted certificate, …).
package mqttpub

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"sync"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/fleetwatch/fleetwatch/agent/telemetry"
)

// Defaults for Config.
const (
	DefaultKeepAlive      = 15 * time.Second
	DefaultMaxReconnect   = 30 * time.Second
	DefaultConnectTimeout = 10 * time.Second
	DefaultCloseTimeout   = 5 * time.Second
	// DefaultMinReconnect is the first retry delay after a failure.
	DefaultMinReconnect = 500 * time.Millisecond
)

// ErrNotConnected is returned by PublishTelemetry while the connection is down.
var ErrNotConnected = errors.New("not connected to broker")

// Config describes one device's connection.
type Config struct {
	Broker   string // e.g. tcp://127.0.0.1:1883, ssl://hub:8883
	ClientID string // default: "fleetwatch-agent-" + Device
	Username string
	Password string
	TLS      *tls.Config

	Topics telemetry.Topics
	Device string
	// Online is published retained on every connect.
	Online telemetry.Status

	KeepAlive      time.Duration
	MinReconnect   time.Duration
	MaxReconnect   time.Duration
	ConnectTimeout time.Duration

	// OnAck receives every valid ack for this device.
	OnAck func(telemetry.Ack)
	// OnConnect runs after each (re)connect, once online status is sent.
	OnConnect func()

	Logger *slog.Logger
}

// Publisher is a connected paho client for one device.
type Publisher struct {
	cfg    Config
	client mqtt.Client
	log    *slog.Logger

	lost chan error    // connection lost, from paho's handler
	stop chan struct{} // closed by Close: the supervisor exits
	done chan struct{} // closed when the supervisor has exited

	mu     sync.Mutex
	closed bool
}

// Open validates cfg and starts connecting in the background; it does not
// wait for the broker, so an agent that boots before its network comes up
// still starts collecting.
func Open(cfg Config) (*Publisher, error) {
	if err := telemetry.ValidateDeviceID(cfg.Device); err != nil {
		return nil, fmt.Errorf("open publisher: %w", err)
	}
	if err := telemetry.ValidatePrefix(cfg.Topics.Prefix); err != nil {
		return nil, fmt.Errorf("open publisher: %w", err)
	}
	online, err := cfg.Online.Encode()
	if err != nil {
		return nil, fmt.Errorf("open publisher: online status: %w", err)
	}
	lost := telemetry.Offline(telemetry.ReasonLost)
	will, _ := lost.Encode()
	if cfg.ClientID == "" {
		cfg.ClientID = "fleetwatch-agent-" + cfg.Device
	}
	if cfg.KeepAlive <= 0 {
		cfg.KeepAlive = DefaultKeepAlive
	}
	if cfg.MaxReconnect <= 0 {
		cfg.MaxReconnect = DefaultMaxReconnect
	}
	if cfg.MinReconnect <= 0 {
		cfg.MinReconnect = min(DefaultMinReconnect, cfg.MaxReconnect)
	}
	if cfg.ConnectTimeout <= 0 {
		cfg.ConnectTimeout = DefaultConnectTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	p := &Publisher{cfg: cfg, log: cfg.Logger, lost: make(chan error, 1), stop: make(chan struct{}), done: make(chan struct{})}

	opts := mqtt.NewClientOptions().
		AddBroker(cfg.Broker).
		SetClientID(cfg.ClientID).
		SetUsername(cfg.Username).
		SetPassword(cfg.Password).
		SetCleanSession(true).
		SetOrderMatters(false).
		SetKeepAlive(cfg.KeepAlive).
		SetPingTimeout(cfg.KeepAlive/2+time.Second).
		SetWriteTimeout(10*time.Second).
		SetConnectTimeout(cfg.ConnectTimeout).
		SetAutoReconnect(false).
		SetConnectRetry(false).
		SetBinaryWill(cfg.Topics.Status(cfg.Device), will, 1, true).
		SetOnConnectHandler(func(c mqtt.Client) { p.onConnect(c, online) }).
		SetConnectionLostHandler(func(_ mqtt.Client, err error) {
			select {
			case p.lost <- err:
			default:
			}
		})
	if cfg.TLS != nil {
		opts.SetTLSConfig(cfg.TLS)
	}
	p.client = mqtt.NewClient(opts)
	go p.supervise()
	return p, nil
}

// supervise keeps the connection up until Close: connect, wait for the
// loss, back off with jitter, again.
func (p *Publisher) supervise() {
	defer close(p.done)
	failures := 0
	for {
		tok := p.client.Connect()
		var err error
		select {
		case <-tok.Done():
			err = tok.Error()
		case <-p.stop:
			return
		}
		if err == nil {
			failures = 0
			select {
			case err := <-p.lost:
				p.log.Warn("mqtt connection lost", "broker", p.cfg.Broker, "err", err)
			case <-p.stop:
				return
			}
		} else {
			failures++
		}
		delay := Backoff(failures, p.cfg.MinReconnect, p.cfg.MaxReconnect, rand.Float64)
		if err != nil {
			p.log.Warn("mqtt connect failed", "broker", p.cfg.Broker, "err", err, "attempt", failures, "retry_in", delay.Round(time.Millisecond))
		}
		select {
		case <-time.After(delay):
		case <-p.stop:
			return
		}
	}
}

// Backoff returns the delay before reconnect attempt n (n ≥ 1 failures so
// far; 0 right after a loss): exponential from min, capped at max, with
// ±25 % jitter so a fleet does not reconnect in lockstep.
func Backoff(n int, min, max time.Duration, rnd func() float64) time.Duration {
	d := min
	for i := 1; i < n && d < max; i++ {
		d *= 2
	}
	d = time.Duration(float64(d) * (0.75 + 0.5*rnd()))
	return time.Duration(math.Min(float64(d), float64(max)))
}

func (p *Publisher) onConnect(c mqtt.Client, online []byte) {
	p.log.Info("mqtt connected", "broker", p.cfg.Broker, "device", p.cfg.Device)
	// Handlers run on paho's goroutines: never wait on tokens here, or a
	// slow broker deadlocks the client.
	c.Subscribe(p.cfg.Topics.Ack(p.cfg.Device), 1, p.handleAck)
	c.Publish(p.cfg.Topics.Status(p.cfg.Device), 1, true, online)
	if p.cfg.OnConnect != nil {
		go p.cfg.OnConnect()
	}
}

func (p *Publisher) handleAck(_ mqtt.Client, m mqtt.Message) {
	ack, err := telemetry.DecodeAck(m.Payload())
	if err != nil {
		p.log.Warn("bad ack from hub", "topic", m.Topic(), "err", err)
		return
	}
	if p.cfg.OnAck != nil {
		p.cfg.OnAck(ack)
	}
}

// PublishTelemetry sends payload at QoS 1 without waiting for the broker:
// delivery is confirmed end to end by the hub's ack.
func (p *Publisher) PublishTelemetry(ctx context.Context, payload []byte) error {
	if !p.client.IsConnectionOpen() {
		return ErrNotConnected
	}
	tok := p.client.Publish(p.cfg.Topics.Telemetry(p.cfg.Device), 1, false, payload)
	select {
	case <-tok.Done():
		if err := tok.Error(); err != nil {
			return fmt.Errorf("publish telemetry: %w", err)
		}
	default: // in flight; the outbox resends it if no ack comes
	}
	return nil
}

// Connected reports whether the connection to the broker is up.
func (p *Publisher) Connected() bool { return p.client.IsConnectionOpen() }

// Close publishes the retained offline(shutdown) status, waits for it up to
// ctx or DefaultCloseTimeout, and disconnects. It is idempotent.
func (p *Publisher) Close(ctx context.Context) error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	p.mu.Unlock()
	close(p.stop)
	<-p.done

	var err error
	if p.client.IsConnectionOpen() {
		st := telemetry.Offline(telemetry.ReasonShutdown)
		b, _ := st.Encode()
		tok := p.client.Publish(p.cfg.Topics.Status(p.cfg.Device), 1, true, b)
		timer := time.NewTimer(DefaultCloseTimeout)
		defer timer.Stop()
		select {
		case <-tok.Done():
			err = tok.Error()
		case <-ctx.Done():
			err = ctx.Err()
		case <-timer.C:
			err = errors.New("timed out")
		}
		if err != nil {
			err = fmt.Errorf("publish offline status: %w", err)
		}
	}
	p.client.Disconnect(250)
	return err
}
