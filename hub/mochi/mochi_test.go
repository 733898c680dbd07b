package mochi_test

import (
	"errors"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/fleetwatch/fleetwatch/hub/mochi"
)

const waitTimeout = 5 * time.Second

func TestBroker_Open(t *testing.T) {
	t.Run("RetainedAndWill", func(t *testing.T) {
		b := mustOpen(t, mochi.Config{Addr: "127.0.0.1:0", Logger: testLogger(t)})
		const topic = "fleet/agent-1/status"

		// The agent's connection is captured so it can be killed without a
		// DISCONNECT, which is what makes the broker publish the Will.
		conns := make(chan net.Conn, 1)
		agent := mustConnect(t, b.URL(), "agent-1", func(o *paho.ClientOptions) {
			o.SetWill(topic, "offline", 1, true)
			o.SetCustomOpenConnectionFn(func(u *url.URL, _ paho.ClientOptions) (net.Conn, error) {
				c, err := net.DialTimeout("tcp", u.Host, waitTimeout)
				if err == nil {
					conns <- c
				}
				return c, err
			})
		})
		mustWait(t, agent.Publish(topic, 1, true, "online"))

		msgs := make(chan paho.Message, 10)
		sub := mustConnect(t, b.URL(), "hub-1", nil)
		mustWait(t, sub.Subscribe("fleet/+/status", 1, func(_ paho.Client, m paho.Message) { msgs <- m }))

		m := receive(t, msgs)
		if got, want := string(m.Payload()), "online"; got != want {
			t.Errorf("retained payload: got %q, want %q", got, want)
		}
		if got, want := m.Retained(), true; got != want {
			t.Errorf("retained flag: got %v, want %v", got, want)
		}

		(<-conns).Close()
		// The live copy of "online" may also arrive if mochi fanned it out
		// after the subscription was made; skip it.
		for m = receive(t, msgs); string(m.Payload()) == "online"; {
			m = receive(t, msgs)
		}
		if got, want := m.Topic(), topic; got != want {
			t.Errorf("will topic: got %q, want %q", got, want)
		}
		if got, want := string(m.Payload()), "offline"; got != want {
			t.Errorf("will payload: got %q, want %q", got, want)
		}

		// The Will was retained, so a hub connecting later sees it too.
		late := make(chan paho.Message, 10)
		sub2 := mustConnect(t, b.URL(), "hub-2", nil)
		mustWait(t, sub2.Subscribe(topic, 1, func(_ paho.Client, m paho.Message) { late <- m }))
		if got, want := string(receive(t, late).Payload()), "offline"; got != want {
			t.Errorf("retained will payload: got %q, want %q", got, want)
		}
	})

	t.Run("AddrInUse", func(t *testing.T) {
		b := mustOpen(t, mochi.Config{Addr: "127.0.0.1:0"})

		_, err := mochi.Open(mochi.Config{Addr: b.Addr()})
		if got, want := errors.Is(err, mochi.ErrAddrInUse), true; got != want {
			t.Fatalf("errors.Is(%v, ErrAddrInUse): got %v, want %v", err, got, want)
		}
		if got, want := err.Error(), b.Addr(); !strings.Contains(got, want) {
			t.Errorf("error: got %q, want it to name %q", got, want)
		}
	})

	t.Run("ReopenAfterClose", func(t *testing.T) {
		b := mustOpen(t, mochi.Config{Addr: "127.0.0.1:0"})
		mustConnect(t, b.URL(), "client", nil) // left connected: Close must end it
		// A connection that never sends CONNECT would block mochi's own
		// shutdown forever.
		raw, err := net.Dial("tcp", b.Addr())
		if err != nil {
			t.Fatal(err)
		}
		defer raw.Close()

		start := time.Now()
		if err := b.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		if elapsed := time.Since(start); elapsed > 3*time.Second {
			t.Errorf("Close took %s, want it bounded", elapsed)
		}
		if err := b.Close(); err != nil {
			t.Errorf("second Close: got %v, want nil", err)
		}

		b2, err := mochi.Open(mochi.Config{Addr: b.Addr()})
		if err != nil {
			t.Fatalf("reopen on %s: %v", b.Addr(), err)
		}
		if err := b2.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})

	t.Run("AllInterfaces", func(t *testing.T) {
		b := mustOpen(t, mochi.Config{Addr: ":0"})
		if got, want := b.URL(), "tcp://127.0.0.1:"; !strings.HasPrefix(got, want) {
			t.Errorf("URL: got %q, want prefix %q", got, want)
		}
		mustConnect(t, b.URL(), "client", nil)
		if got, want := b.Stats().ClientsConnected, int64(1); got != want {
			t.Errorf("ClientsConnected: got %d, want %d", got, want)
		}
	})
}

func TestBroker_Auth(t *testing.T) {
	b := mustOpen(t, mochi.Config{
		Addr: "127.0.0.1:0", Username: "fleet", Password: "s3cret", Logger: testLogger(t),
	})

	for _, tt := range []struct {
		name, user, pass string
		wantOK           bool
	}{
		{"RightPassword", "fleet", "s3cret", true},
		{"WrongPassword", "fleet", "s3cret!", false},
		{"WrongUser", "admin", "s3cret", false},
		{"Anonymous", "", "", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, err := connect(b.URL(), tt.name, func(o *paho.ClientOptions) {
				o.SetUsername(tt.user).SetPassword(tt.pass)
			})
			if err == nil {
				c.Disconnect(100)
			}
			if got, want := err == nil, tt.wantOK; got != want {
				t.Errorf("connected: got %v (err %v), want %v", got, err, want)
			}
		})
	}
}

func TestBroker_ACL(t *testing.T) {
	b := mustOpen(t, mochi.Config{Addr: "127.0.0.1:0", Logger: testLogger(t)})

	msgs := make(chan paho.Message, 10)
	sub := mustConnect(t, b.URL(), "sub", nil)
	mustWait(t, sub.Subscribe("$fleet/x", 0, func(_ paho.Client, m paho.Message) { msgs <- m }))
	mustWait(t, sub.Subscribe("fleet/x", 0, func(_ paho.Client, m paho.Message) { msgs <- m }))

	pub := mustConnect(t, b.URL(), "pub", nil)
	mustWait(t, pub.Publish("$fleet/x", 0, false, "denied"))
	mustWait(t, pub.Publish("fleet/x", 0, false, "allowed"))

	// Messages from one publisher arrive in order, so had the '$' publish
	// been let through it would come first.
	if got, want := string(receive(t, msgs).Payload()), "allowed"; got != want {
		t.Errorf("first message: got %q, want %q", got, want)
	}
}

func mustOpen(t testing.TB, cfg mochi.Config) *mochi.Broker {
	t.Helper()
	b, err := mochi.Open(cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return b
}

// connect dials an MQTT 3.1.1 client as the agents and the hub do.
func connect(brokerURL, clientID string, configure func(*paho.ClientOptions)) (paho.Client, error) {
	o := paho.NewClientOptions().
		AddBroker(brokerURL).
		SetClientID(clientID).
		SetProtocolVersion(4).
		SetAutoReconnect(false).
		SetConnectTimeout(waitTimeout)
	if configure != nil {
		configure(o)
	}
	c := paho.NewClient(o)
	tok := c.Connect()
	if !tok.WaitTimeout(waitTimeout) {
		return nil, errors.New("connect timed out")
	}
	return c, tok.Error()
}

func mustConnect(t testing.TB, brokerURL, clientID string, configure func(*paho.ClientOptions)) paho.Client {
	t.Helper()
	c, err := connect(brokerURL, clientID, configure)
	if err != nil {
		t.Fatalf("connect %s: %v", clientID, err)
	}
	t.Cleanup(func() { c.Disconnect(100) })
	return c
}

func mustWait(t testing.TB, tok paho.Token) {
	t.Helper()
	if !tok.WaitTimeout(waitTimeout) {
		t.Fatalf("token timed out after %s", waitTimeout)
	}
	if err := tok.Error(); err != nil {
		t.Fatal(err)
	}
}

func receive(t testing.TB, msgs <-chan paho.Message) paho.Message {
	t.Helper()
	select {
	case m := <-msgs:
		return m
	case <-time.After(waitTimeout):
		t.Fatalf("no message within %s", waitTimeout)
		return nil
	}
}

// testLogger shows the broker's warnings in the test output.
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
}
