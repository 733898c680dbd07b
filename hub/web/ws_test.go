package web_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/fleetwatch/fleetwatch/agent/telemetry"
	"github.com/fleetwatch/fleetwatch/hub"
	"github.com/fleetwatch/fleetwatch/hub/fleet"
	"github.com/fleetwatch/fleetwatch/hub/web"
)

type wsMsg struct {
	Type    string          `json:"type"`
	Channel string          `json:"channel"`
	ID      uint64          `json:"id"`
	Error   string          `json:"error"`
	Reason  string          `json:"reason"`
	Data    json.RawMessage `json:"data"`
}

func wsURL(f *fixture) string { return "ws" + strings.TrimPrefix(f.srv.URL(), "http") + "/ws" }

// dialWS opens a WebSocket to the fixture with header, closing it when the
// test ends.
func dialWS(t *testing.T, f *fixture, header http.Header) *websocket.Conn {
	t.Helper()
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
	c, resp, err := d.Dial(wsURL(f), header)
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		t.Fatalf("dial %s: %v (HTTP %d)", wsURL(f), err, status)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func wsSend(t *testing.T, c *websocket.Conn, msg string) {
	t.Helper()
	c.SetWriteDeadline(time.Now().Add(2 * time.Second))
	if err := c.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
		t.Fatalf("send %s: %v", msg, err)
	}
}

func wsRead(t *testing.T, c *websocket.Conn) wsMsg {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	typ, b, err := c.ReadMessage()
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	if typ != websocket.TextMessage {
		t.Fatalf("message type %d, want text", typ)
	}
	var m wsMsg
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("message %s is not JSON: %v", b, err)
	}
	if m.Type == "" {
		t.Fatalf("message %s has no type", b)
	}
	return m
}

// wsExpect reads one message and checks its type and channel.
func wsExpect(t *testing.T, c *websocket.Conn, typ, channel string) wsMsg {
	t.Helper()
	m := wsRead(t, c)
	if m.Type != typ || m.Channel != channel {
		t.Fatalf("got %+v, want type %q channel %q", m, typ, channel)
	}
	return m
}

func TestServer_ws(t *testing.T) {
	f := newFixture(t)
	f.readings(t, "pi-a", "b1", 1)

	t.Run("subscribe fleet", func(t *testing.T) {
		c := dialWS(t, f, nil)
		wsSend(t, c, `{"type":"subscribe","channel":"fleet"}`)
		wsExpect(t, c, "subscribed", "fleet")
		m := wsExpect(t, c, "fleet", "")
		var snap fleet.Snapshot
		if err := json.Unmarshal(m.Data, &snap); err != nil {
			t.Fatalf("fleet data %s: %v", m.Data, err)
		}
		if snap.Version == 0 || len(snap.Devices) != 1 || snap.Devices[0].ID != "pi-a" {
			t.Errorf("fleet data = %s, want a versioned snapshot with pi-a", m.Data)
		}
		// Status changes are part of the fleet channel.
		f.status(t, "pi-b", telemetry.Offline(telemetry.ReasonShutdown))
		m = wsExpect(t, c, "status", "")
		var st struct{ Device, State, Reason string }
		if err := json.Unmarshal(m.Data, &st); err != nil || st.Device != "pi-b" || st.State != fleet.Offline || st.Reason != telemetry.ReasonShutdown {
			t.Errorf("status data = %s, want pi-b offline (shutdown)", m.Data)
		}
	})

	t.Run("subscribe device", func(t *testing.T) {
		c := dialWS(t, f, nil)
		wsSend(t, c, `{"type":"subscribe","channel":"device:x"}`)
		wsExpect(t, c, "subscribed", "device:x")
		mustPublish(t, f, hub.EventReading, "device:other", map[string]any{"device": "other", "seq": 1, "ts": t0, "metrics": map[string]float64{"a": 1}})
		mustPublish(t, f, hub.EventReading, "device:x", map[string]any{"device": "x", "seq": 7, "ts": t0, "metrics": map[string]float64{"cpu.percent": 3.5}})
		m := wsExpect(t, c, "reading", "device:x")
		var r struct {
			Device  string             `json:"device"`
			Seq     uint64             `json:"seq"`
			TS      int64              `json:"ts"`
			Metrics map[string]float64 `json:"metrics"`
		}
		if err := json.Unmarshal(m.Data, &r); err != nil || r.Device != "x" || r.Seq != 7 || r.TS != t0 || r.Metrics["cpu.percent"] != 3.5 {
			t.Errorf("reading data = %s, want device x seq 7", m.Data)
		}

		// A reading that comes through MQTT reaches its channel too.
		wsSend(t, c, `{"type":"subscribe","channel":"device:pi-a"}`)
		wsExpect(t, c, "subscribed", "device:pi-a")
		f.readings(t, "pi-a", "b1", 2)
		m = wsExpect(t, c, "reading", "device:pi-a")
		if err := json.Unmarshal(m.Data, &r); err != nil || r.Device != "pi-a" || r.Seq != 2 || r.TS != tsOf(2) {
			t.Errorf("reading data = %s, want pi-a seq 2", m.Data)
		}
	})

	t.Run("unsubscribe", func(t *testing.T) {
		c := dialWS(t, f, nil)
		wsSend(t, c, `{"type":"subscribe","channel":"device:x"}`)
		wsExpect(t, c, "subscribed", "device:x")
		wsSend(t, c, `{"type":"subscribe","channel":"device:y"}`)
		wsExpect(t, c, "subscribed", "device:y")
		wsSend(t, c, `{"type":"unsubscribe","channel":"device:x"}`)
		wsExpect(t, c, "unsubscribed", "device:x")
		// Events are delivered in order: had x's reading been sent, it
		// would come before y's.
		mustPublish(t, f, hub.EventReading, "device:x", map[string]int{"seq": 1})
		mustPublish(t, f, hub.EventReading, "device:y", map[string]int{"seq": 2})
		wsExpect(t, c, "reading", "device:y")
	})

	t.Run("ping", func(t *testing.T) {
		c := dialWS(t, f, nil)
		wsSend(t, c, `{"type":"ping"}`)
		wsExpect(t, c, "pong", "")
	})

	t.Run("bad messages keep the connection", func(t *testing.T) {
		c := dialWS(t, f, nil)
		for _, msg := range []string{
			`garbage`,
			`{"type":`,
			`["subscribe"]`,
			`{"type":"dance"}`,
			`{"type":"subscribe","channel":"weather"}`,
			`{"type":"subscribe","channel":"device:-bad"}`,
			`{"type":"subscribe"}`,
		} {
			wsSend(t, c, msg)
			if m := wsExpect(t, c, "error", ""); m.Error == "" {
				t.Errorf("reply to %s has an empty error", msg)
			}
		}
		wsSend(t, c, `{"type":"ping"}`)
		wsExpect(t, c, "pong", "")
	})

	t.Run("oversized message closes the connection", func(t *testing.T) {
		c := dialWS(t, f, nil)
		wsSend(t, c, `{"type":"ping","pad":"`+strings.Repeat("x", web.DefaultMaxWSMessage)+`"}`)
		c.SetReadDeadline(time.Now().Add(2 * time.Second))
		_, b, err := c.ReadMessage()
		if !websocket.IsCloseError(err, websocket.CloseMessageTooBig) && !websocket.IsUnexpectedCloseError(err) {
			t.Errorf("after an oversized message: read %s, %v; want the connection closed", b, err)
		}
	})
}

func mustPublish(t *testing.T, f *fixture, typ, channel string, data any) *hub.Event {
	t.Helper()
	ev, err := f.srv.Feed.Publish(typ, channel, data)
	if err != nil {
		t.Fatalf("Publish: %v", err)
	}
	return ev
}

func TestServer_wsOrigin(t *testing.T) {
	f := newFixture(t, func(s *web.Server) { s.AllowedOrigins = []string{"https://dash.example.org/"} })
	self := f.srv.URL()
	tests := []struct {
		name   string
		origin string
		ok     bool
	}{
		{"no origin (not a browser)", "", true},
		{"same origin", self, true},
		{"same origin, other case", strings.ToUpper(self), true},
		{"allow-listed", "https://dash.example.org", true},
		{"cross origin", "https://evil.example", false},
		{"same host, other port", "http://127.0.0.1:1", false},
		{"allow-listed host over another scheme", "http://dash.example.org", false},
		{"null", "null", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			if tt.origin != "" {
				h.Set("Origin", tt.origin)
			}
			d := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
			c, resp, err := d.Dial(wsURL(f), h)
			if tt.ok {
				if err != nil {
					t.Fatalf("Origin %q refused: %v", tt.origin, err)
				}
				defer c.Close()
				wsSend(t, c, `{"type":"ping"}`)
				wsExpect(t, c, "pong", "")
				return
			}
			if err == nil {
				c.Close()
				t.Fatalf("Origin %q accepted, want the handshake refused", tt.origin)
			}
			if resp == nil || resp.StatusCode != http.StatusForbidden {
				t.Errorf("Origin %q: handshake error %v, response %v; want 403", tt.origin, err, resp)
			}
		})
	}
}
