package mqttpub_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/fleetwatch/fleetwatch/agent/mqttpub"
	"github.com/fleetwatch/fleetwatch/agent/mqttpub/mosquittotest"
	"github.com/fleetwatch/fleetwatch/agent/telemetry"
)

func TestPublisher(t *testing.T) {
	broker := mosquittotest.Start(t)
	proxy := startProxy(t, broker.Addr())
	topics, _ := telemetry.NewTopics("")
	obs := watch(t, broker.URL(), "fleetwatch/#")

	acks := make(chan telemetry.Ack, 16)
	connects := make(chan struct{}, 16)
	online := telemetry.Status{V: 1, State: telemetry.StateOnline, Boot: "boot-1", IntervalMS: 1000}
	pub, err := mqttpub.Open(mqttpub.Config{
		Broker: "tcp://" + proxy.addr(), Topics: topics, Device: "pi-test", Online: online,
		KeepAlive: 2 * time.Second, MaxReconnect: 500 * time.Millisecond,
		OnAck:     func(a telemetry.Ack) { acks <- a },
		OnConnect: func() { connects <- struct{}{} },
	})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close(context.Background())
	waitChan(t, connects, "first connect")

	t.Run("OnlineStatusRetained", func(t *testing.T) {
		st := obs.wait(t, "fleetwatch/pi-test/status", func(b []byte) bool { return true })
		got, err := telemetry.DecodeStatus(st)
		if err != nil {
			t.Fatal(err)
		}
		if got.State != "online" || got.Boot != "boot-1" {
			t.Fatalf("status=%+v, want online boot-1", got)
		}
	})

	t.Run("PublishTelemetry", func(t *testing.T) {
		payload := []byte(`{"v":1,"device":"pi-test","boot":"boot-1","readings":[{"seq":1,"ts":1,"metrics":{"x":1}}]}`)
		if err := pub.PublishTelemetry(context.Background(), payload); err != nil {
			t.Fatal(err)
		}
		got := obs.wait(t, "fleetwatch/pi-test/telemetry", func(b []byte) bool { return true })
		if string(got) != string(payload) {
			t.Fatalf("telemetry=%s, want %s", got, payload)
		}
	})

	t.Run("AckDelivered", func(t *testing.T) {
		obs.publish(t, "fleetwatch/pi-test/ack", []byte(`{"v":1,"boot":"boot-1","seq":7}`))
		obs.publish(t, "fleetwatch/pi-test/ack", []byte(`{"v":1,"seq":"bad"}`)) // ignored
		a := waitChan(t, acks, "ack")
		if got, want := a, (telemetry.Ack{V: 1, Boot: "boot-1", Seq: 7}); got != want {
			t.Fatalf("ack=%+v, want %+v", got, want)
		}
	})

	t.Run("LastWillOnLostConnection", func(t *testing.T) {
		proxy.cut() // the broker sees the TCP connection die without DISCONNECT
		obs.wait(t, "fleetwatch/pi-test/status", func(b []byte) bool {
			st, err := telemetry.DecodeStatus(b)
			return err == nil && st.State == "offline" && st.Reason == "lost"
		})
		if err := pub.PublishTelemetry(context.Background(), []byte("{}")); !errors.Is(err, mqttpub.ErrNotConnected) && err != nil {
			t.Fatalf("publish while down: err=%v, want ErrNotConnected or nil (if already back)", err)
		}
	})

	t.Run("ReconnectRepublishesOnline", func(t *testing.T) {
		waitChan(t, connects, "reconnect")
		obs.wait(t, "fleetwatch/pi-test/status", func(b []byte) bool {
			st, err := telemetry.DecodeStatus(b)
			return err == nil && st.State == "online"
		})
	})

	t.Run("CloseSendsShutdown", func(t *testing.T) {
		if err := pub.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		obs.wait(t, "fleetwatch/pi-test/status", func(b []byte) bool {
			st, err := telemetry.DecodeStatus(b)
			return err == nil && st.State == "offline" && st.Reason == "shutdown"
		})
	})
}

func TestOpen_Errors(t *testing.T) {
	topics, _ := telemetry.NewTopics("")
	online := telemetry.Status{V: 1, State: "online", Boot: "b"}
	for name, cfg := range map[string]mqttpub.Config{
		"ErrBadDevice": {Broker: "tcp://127.0.0.1:1", Topics: topics, Device: "a/b", Online: online},
		"ErrBadPrefix": {Broker: "tcp://127.0.0.1:1", Topics: telemetry.Topics{Prefix: "a/#"}, Device: "a", Online: online},
		"ErrBadOnline": {Broker: "tcp://127.0.0.1:1", Topics: topics, Device: "a", Online: telemetry.Status{V: 1, State: "online"}},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := mqttpub.Open(cfg); err == nil {
				t.Fatal("err=nil, want an error")
			}
		})
	}
}

// watcher is a plain MQTT client recording what the broker delivers.
type watcher struct {
	client mqtt.Client
	mu     sync.Mutex
	seen   map[string][][]byte
}

func watch(t *testing.T, url, filter string) *watcher {
	t.Helper()
	w := &watcher{seen: map[string][][]byte{}}
	w.client = mqtt.NewClient(mqtt.NewClientOptions().AddBroker(url).SetClientID(fmt.Sprintf("watch-%d", time.Now().UnixNano())))
	if tok := w.client.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("watcher connect: %v", tok.Error())
	}
	tok := w.client.Subscribe(filter, 1, func(_ mqtt.Client, m mqtt.Message) {
		w.mu.Lock()
		w.seen[m.Topic()] = append(w.seen[m.Topic()], m.Payload())
		w.mu.Unlock()
	})
	if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("watcher subscribe: %v", tok.Error())
	}
	t.Cleanup(func() { w.client.Disconnect(50) })
	return w
}

func (w *watcher) wait(t *testing.T, topic string, match func([]byte) bool) []byte {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		w.mu.Lock()
		for _, b := range w.seen[topic] {
			if match(b) {
				w.mu.Unlock()
				return b
			}
		}
		w.mu.Unlock()
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no matching message on %s within 10s", topic)
	return nil
}

func (w *watcher) publish(t *testing.T, topic string, payload []byte) {
	t.Helper()
	if tok := w.client.Publish(topic, 1, false, payload); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("publish: %v", tok.Error())
	}
}

func waitChan[T any](t *testing.T, c <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-c:
		return v
	case <-time.After(10 * time.Second):
		t.Fatalf("no %s within 10s", what)
	}
	var zero T
	return zero
}

// proxy forwards TCP to the broker and can cut every connection, which is
// what a pulled cable or a dead Wi-Fi looks like to the broker.
type proxy struct {
	ln    net.Listener
	mu    sync.Mutex
	conns []net.Conn
}

func startProxy(t *testing.T, target string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, u)
			p.mu.Unlock()
			go func() { io.Copy(u, c); u.Close() }() //nolint:errcheck
			go func() { io.Copy(c, u); c.Close() }() //nolint:errcheck
		}
	}()
	t.Cleanup(func() { ln.Close(); p.cut() })
	return p
}

func (p *proxy) addr() string { return p.ln.Addr().String() }

func (p *proxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}
