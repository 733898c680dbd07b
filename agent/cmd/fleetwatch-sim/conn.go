package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/fleetwatch/fleetwatch/agent"
	"github.com/fleetwatch/fleetwatch/agent/mqttpub"
	"github.com/fleetwatch/fleetwatch/agent/telemetry"
)

// sharedConn carries many virtual devices over one MQTT connection, as a
// gateway or a load generator does: each device keeps its own agent, boot,
// seq, outbox and acks; only the socket is shared. MQTT allows one Last
// Will per connection, so devices on a shared connection have none.
type sharedConn struct {
	client mqtt.Client
	topics telemetry.Topics
	agents map[string]*agent.Agent // by device id, for acks; fixed before Open
	online map[string][]byte       // retained online status, by device id
	ids    []string
	log    *slog.Logger
}

// subscribeChunk bounds the filters of one SUBSCRIBE packet, well under
// the broker's packet size limit.
const subscribeChunk = 500

func newSharedConn(topics telemetry.Topics, log *slog.Logger) *sharedConn {
	return &sharedConn{topics: topics, agents: map[string]*agent.Agent{}, online: map[string][]byte{}, log: log}
}

// add registers a device; call before open.
func (c *sharedConn) add(a *agent.Agent, online telemetry.Status) error {
	b, err := online.Encode()
	if err != nil {
		return fmt.Errorf("add device %s: online status: %w", a.Device, err)
	}
	c.agents[a.Device], c.online[a.Device] = a, b
	c.ids = append(c.ids, a.Device)
	return nil
}

// open starts connecting in the background, like mqttpub.Open.
func (c *sharedConn) open(broker, clientID string) {
	opts := mqtt.NewClientOptions().
		AddBroker(broker).
		SetClientID(clientID).
		SetCleanSession(true).
		SetOrderMatters(false).
		SetKeepAlive(mqttpub.DefaultKeepAlive).
		SetPingTimeout(mqttpub.DefaultKeepAlive/2 + time.Second).
		SetWriteTimeout(10 * time.Second).
		SetConnectTimeout(mqttpub.DefaultConnectTimeout).
		SetAutoReconnect(true).
		SetConnectRetry(true).
		SetConnectRetryInterval(time.Second).
		SetMaxReconnectInterval(mqttpub.DefaultMaxReconnect).
		SetDefaultPublishHandler(c.handleAck).
		SetOnConnectHandler(c.onConnect).
		SetConnectionLostHandler(func(_ mqtt.Client, err error) {
			c.log.Warn("mqtt connection lost", "client", clientID, "err", err)
		})
	c.client = mqtt.NewClient(opts)
	c.client.Connect()
}

func (c *sharedConn) onConnect(cl mqtt.Client) {
	// As in mqttpub: never wait on a token on paho's goroutine.
	for i := 0; i < len(c.ids); i += subscribeChunk {
		filters := map[string]byte{}
		for _, id := range c.ids[i:min(i+subscribeChunk, len(c.ids))] {
			filters[c.topics.Ack(id)] = 1
		}
		cl.SubscribeMultiple(filters, c.handleAck)
	}
	for _, id := range c.ids {
		cl.Publish(c.topics.Status(id), 1, true, c.online[id])
	}
	go func() {
		for _, id := range c.ids {
			c.agents[id].Reconnected()
		}
	}()
}

func (c *sharedConn) handleAck(_ mqtt.Client, m mqtt.Message) {
	device, kind, err := c.topics.Parse(m.Topic())
	a, ok := c.agents[device]
	if err != nil || kind != telemetry.KindAck || !ok {
		return
	}
	ack, err := telemetry.DecodeAck(m.Payload())
	if err != nil {
		c.log.Warn("bad ack from hub", "topic", m.Topic(), "err", err)
		return
	}
	a.HandleAck(ack)
}

// publisher returns the agent.Publisher of one device on this connection.
func (c *sharedConn) publisher(device string) agent.Publisher {
	return &sharedPub{c: c, topic: c.topics.Telemetry(device)}
}

// close publishes every device's retained offline(shutdown) status, waits
// for them up to ctx, and disconnects.
func (c *sharedConn) close(ctx context.Context) error {
	if !c.client.IsConnectionOpen() {
		c.client.Disconnect(0)
		return nil
	}
	st := telemetry.Offline(telemetry.ReasonShutdown)
	b, _ := st.Encode()
	toks := make([]mqtt.Token, 0, len(c.ids))
	for _, id := range c.ids {
		toks = append(toks, c.client.Publish(c.topics.Status(id), 1, true, b))
	}
	var err error
	for _, t := range toks {
		select {
		case <-t.Done():
		case <-ctx.Done():
			err = fmt.Errorf("close shared connection: offline status: %w", ctx.Err())
		}
		if err != nil {
			break
		}
	}
	c.client.Disconnect(250)
	return err
}

// sharedPub publishes one device's telemetry on a shared connection, with
// mqttpub.Publisher's semantics: QoS 1, no wait, the ack confirms delivery.
type sharedPub struct {
	c     *sharedConn
	topic string
}

func (p *sharedPub) PublishTelemetry(_ context.Context, payload []byte) error {
	if !p.c.client.IsConnectionOpen() {
		return mqttpub.ErrNotConnected
	}
	tok := p.c.client.Publish(p.topic, 1, false, payload)
	select {
	case <-tok.Done():
		if err := tok.Error(); err != nil {
			return fmt.Errorf("publish telemetry: %w", err)
		}
	default:
	}
	return nil
}

// gatedPub swallows publishes while an outage builds its backlog: the
// readings are marked sent without leaving, and Agent.Reconnected later
// marks them unsent, so the agent sends the whole backlog as a device
// coming back after a long outage does.
type gatedPub struct {
	next   agent.Publisher
	opened chan struct{} // closed once publishes go through
}

func newGatedPub(next agent.Publisher) *gatedPub {
	return &gatedPub{next: next, opened: make(chan struct{})}
}

func (g *gatedPub) open() { close(g.opened) }

func (g *gatedPub) PublishTelemetry(ctx context.Context, payload []byte) error {
	select {
	case <-g.opened:
		return g.next.PublishTelemetry(ctx, payload)
	default:
		return nil
	}
}
