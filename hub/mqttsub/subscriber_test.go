package mqttsub_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/fleetwatch/fleetwatch/agent/mqttpub/mosquittotest"
	"github.com/fleetwatch/fleetwatch/agent/telemetry"
	"github.com/fleetwatch/fleetwatch/hub"
	"github.com/fleetwatch/fleetwatch/hub/mqttsub"
)

// inbox collects what the subscriber hands to the hub.
type inbox struct {
	mu   sync.Mutex
	msgs []hub.Message
}

func (in *inbox) handle(m hub.Message) {
	in.mu.Lock()
	in.msgs = append(in.msgs, m)
	in.mu.Unlock()
}

func (in *inbox) wait(t *testing.T, n int) []hub.Message {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		in.mu.Lock()
		if len(in.msgs) >= n {
			out := append([]hub.Message(nil), in.msgs...)
			in.mu.Unlock()
			return out
		}
		in.mu.Unlock()
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("fewer than %d messages within 10s", n)
	return nil
}

func open(t *testing.T, url string, in *inbox) *mqttsub.Subscriber {
	t.Helper()
	topics, _ := telemetry.NewTopics("")
	s, err := mqttsub.Open(mqttsub.Config{Broker: url, ClientID: "hub-test", Topics: topics, Handle: in.handle})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !s.Ready() {
		if time.Now().After(deadline) {
			t.Fatal("subscriber not ready within 10s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	return s
}

func client(t *testing.T, url string) mqtt.Client {
	t.Helper()
	c := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(url).SetClientID(fmt.Sprintf("dev-%d", time.Now().UnixNano())))
	if tok := c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("connect: %v", tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(50) })
	return c
}

func publish(t *testing.T, c mqtt.Client, topic, payload string) {
	t.Helper()
	if tok := c.Publish(topic, 1, false, payload); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("publish: %v", tok.Error())
	}
}

func TestSubscriber(t *testing.T) {
	broker := mosquittotest.Start(t)
	dev := client(t, broker.URL())

	t.Run("ReceivesTelemetryAndStatus", func(t *testing.T) {
		in := &inbox{}
		s := open(t, broker.URL(), in)
		defer s.Close()
		publish(t, dev, "fleetwatch/pi-1/telemetry", `{"a":1}`)
		publish(t, dev, "fleetwatch/pi-1/status", `{"v":1,"state":"offline","reason":"lost"}`)
		publish(t, dev, "fleetwatch/pi-1/other", `ignored`)
		msgs := in.wait(t, 2)
		topics := map[string]bool{}
		for _, m := range msgs {
			topics[m.Topic] = true
			m.Ack()
		}
		if !topics["fleetwatch/pi-1/telemetry"] || !topics["fleetwatch/pi-1/status"] {
			t.Fatalf("topics=%v, want telemetry and status", topics)
		}
		time.Sleep(100 * time.Millisecond)
		if got := len(in.wait(t, 0)); got != 2 {
			t.Fatalf("got %d messages, want 2 (other kinds are not subscribed)", got)
		}
	})

	t.Run("UnackedRedeliveredAfterRestart", func(t *testing.T) {
		// Drain leftovers of the persistent session first.
		in := &inbox{}
		s := open(t, broker.URL(), in)
		time.Sleep(200 * time.Millisecond)
		for _, m := range in.wait(t, 0) {
			m.Ack()
		}
		in.mu.Lock()
		in.msgs = nil
		in.mu.Unlock()

		publish(t, dev, "fleetwatch/pi-2/telemetry", `{"unacked":1}`)
		publish(t, dev, "fleetwatch/pi-2/telemetry", `{"acked":1}`)
		for _, m := range in.wait(t, 2) {
			if string(m.Payload) == `{"acked":1}` {
				m.Ack()
			}
		}
		time.Sleep(100 * time.Millisecond) // let the PUBACK reach the broker
		s.Close()

		// The hub comes back with the same client id: the broker
		// redelivers only what was never acked.
		in2 := &inbox{}
		s2 := open(t, broker.URL(), in2)
		defer s2.Close()
		msgs := in2.wait(t, 1)
		time.Sleep(300 * time.Millisecond)
		msgs = in2.wait(t, len(msgs))
		if got, want := len(msgs), 1; got != want {
			t.Fatalf("redelivered %d messages, want %d", got, want)
		}
		if got, want := string(msgs[0].Payload), `{"unacked":1}`; got != want {
			t.Fatalf("redelivered %s, want %s", got, want)
		}
		msgs[0].Ack()
	})

	t.Run("PublishAck", func(t *testing.T) {
		got := make(chan []byte, 1)
		tok := dev.Subscribe("fleetwatch/pi-3/ack", 1, func(_ mqtt.Client, m mqtt.Message) { got <- m.Payload() })
		if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			t.Fatal(tok.Error())
		}
		s := open(t, broker.URL(), &inbox{})
		defer s.Close()
		s.PublishAck("pi-3", telemetry.Ack{V: 1, Boot: "b1", Seq: 42})
		select {
		case b := <-got:
			if want := `{"v":1,"boot":"b1","seq":42}`; string(b) != want {
				t.Fatalf("ack=%s, want %s", b, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("no ack within 5s")
		}
		if got, want := s.AcksSent(), uint64(1); got != want {
			t.Fatalf("AcksSent=%d, want %d", got, want)
		}
	})

	t.Run("NotReadyWhileBrokerDown", func(t *testing.T) {
		s := open(t, broker.URL(), &inbox{})
		defer s.Close()
		broker.Kill()
		deadline := time.Now().Add(10 * time.Second)
		for s.Ready() {
			if time.Now().After(deadline) {
				t.Fatal("still ready 10s after the broker died")
			}
			time.Sleep(20 * time.Millisecond)
		}
		broker.Restart()
		deadline = time.Now().Add(15 * time.Second)
		for !s.Ready() {
			if time.Now().After(deadline) {
				t.Fatal("not ready again 15s after the broker came back")
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
}

func TestOpen_NoHandler(t *testing.T) {
	if _, err := mqttsub.Open(mqttsub.Config{Broker: "tcp://127.0.0.1:1"}); err == nil {
		t.Fatal("err=nil, want an error for a missing handler")
	}
}
