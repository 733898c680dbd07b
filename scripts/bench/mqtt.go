package main

import (
	"fmt"
	"sync/atomic"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/fleetwatch/fleetwatch/agent/telemetry"
)

// stampMetric is the publish time fleetwatch-sim --stamp adds, µs since
// the epoch.
const stampMetric = "bench.sent_us"

// PlainSub is the broker baseline: a bare MQTT subscriber on the topics
// the hub subscribes to, at the same QoS, decoding the same payloads with
// the same decoder, and doing nothing else.
type PlainSub struct {
	client   mqtt.Client
	messages atomic.Uint64
	readings atomic.Uint64
	bad      atomic.Uint64
	Latency  Recorder // publish → receive, ms
	sample   atomic.Pointer[map[string]bool]
}

// SampleOnly limits latency samples to these devices (all are counted).
func (s *PlainSub) SampleOnly(ids []string) {
	m := make(map[string]bool, len(ids))
	for _, id := range ids {
		m[id] = true
	}
	s.sample.Store(&m)
}

// openPlainSub connects and subscribes, waiting up to 10 s.
func openPlainSub(broker string) (*PlainSub, error) {
	s := &PlainSub{}
	topics, _ := telemetry.NewTopics(telemetry.DefaultPrefix)
	opts := mqtt.NewClientOptions().
		AddBroker(broker).
		SetClientID(fmt.Sprintf("fleetwatch-bench-plain-%d", time.Now().UnixNano())).
		SetCleanSession(true).
		SetOrderMatters(false). // as the hub: one goroutine per message
		SetKeepAlive(15 * time.Second).
		SetAutoReconnect(false)
	s.client = mqtt.NewClient(opts)
	if tok := s.client.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		return nil, fmt.Errorf("plain subscriber: connect %s: %v", broker, tok.Error())
	}
	tok := s.client.Subscribe(topics.Filter(telemetry.KindTelemetry), 1, func(_ mqtt.Client, m mqtt.Message) {
		s.handle(topics, m.Topic(), m.Payload())
	})
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		s.client.Disconnect(0)
		return nil, fmt.Errorf("plain subscriber: subscribe: %v", tok.Error())
	}
	return s, nil
}

func (s *PlainSub) handle(topics telemetry.Topics, topic string, payload []byte) {
	now := time.Now()
	s.messages.Add(1)
	device, _, err := topics.Parse(topic)
	if err != nil {
		s.bad.Add(1)
		return
	}
	env, err := telemetry.DecodeTelemetry(device, payload, now)
	if err != nil {
		s.bad.Add(1)
		return
	}
	s.readings.Add(uint64(len(env.Readings)))
	if m := s.sample.Load(); m != nil && !(*m)[device] {
		return
	}
	us := now.UnixMicro()
	for _, r := range env.Readings {
		if sent, ok := r.Metrics[stampMetric]; ok {
			s.Latency.Add(float64(us-int64(sent)) / 1000)
		}
	}
}

// Counts returns messages and readings received so far.
func (s *PlainSub) Counts() (messages, readings uint64) {
	return s.messages.Load(), s.readings.Load()
}

// Close disconnects.
func (s *PlainSub) Close() { s.client.Disconnect(100) }
