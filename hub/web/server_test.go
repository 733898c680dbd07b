package web_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/fleetwatch/fleetwatch/agent/telemetry"
	"github.com/fleetwatch/fleetwatch/hub"
	"github.com/fleetwatch/fleetwatch/hub/boltstore"
	"github.com/fleetwatch/fleetwatch/hub/web"
)

const t0 = int64(1_764_368_400_000)

var topics = telemetry.Topics{Prefix: telemetry.DefaultPrefix}

// fixture is a real hub without a broker: a bbolt store in a temporary
// directory, the Ingester's live and durable paths, and a web.Server on a
// loopback port.
type fixture struct {
	srv    *web.Server
	in     *hub.Ingester
	store  *boltstore.Store
	now    atomic.Int64 // ms, read by the ingester and the server
	ready  atomic.Bool
	client *http.Client
}

func newFixture(t *testing.T, configure ...func(*web.Server)) *fixture {
	t.Helper()
	f := &fixture{client: &http.Client{Timeout: 5 * time.Second}}
	f.now.Store(t0 + 100_000)
	f.ready.Store(true)
	clock := func() time.Time { return time.UnixMilli(f.now.Load()) }

	store, err := boltstore.Open(filepath.Join(t.TempDir(), "fleetwatch.db"), boltstore.Options{LockTimeout: 100 * time.Millisecond, Now: clock})
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	f.store = store
	t.Cleanup(func() {
		if err := store.Check(); err != nil {
			t.Errorf("store check: %v", err)
		}
		if err := store.Close(); err != nil {
			t.Errorf("close store: %v", err)
		}
	})

	recs, err := store.Devices()
	if err != nil {
		t.Fatalf("load devices: %v", err)
	}
	reg := hub.NewRegistry(recs)
	feed := hub.NewFeed(hub.FeedOptions{})
	f.in = &hub.Ingester{Topics: topics, Store: store, Registry: reg, Feed: feed, CommitInterval: 5 * time.Millisecond, Now: clock}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); f.in.Run(ctx) }() //nolint:errcheck // always ctx.Err()
	t.Cleanup(func() { cancel(); <-done })

	f.srv = &web.Server{
		Addr: "127.0.0.1:0", Registry: reg, History: store, Records: store, Feed: feed, Stats: &f.in.Stats,
		Ready: func() error {
			if !f.ready.Load() {
				return errors.New("broker not connected and subscribed")
			}
			return nil
		}, Now: clock,
	}
	for _, c := range configure {
		c(f.srv)
	}
	if err := f.srv.Open(); err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		start := time.Now()
		if err := f.srv.Close(ctx); err != nil {
			t.Errorf("Close: %v", err)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("Close took %v, want it to end live streams promptly", d)
		}
	})
	return f
}

// handle passes one MQTT message through the Ingester and waits until it is
// settled: committed, or rejected.
func (f *fixture) handle(t *testing.T, topic string, payload []byte) {
	t.Helper()
	acked := make(chan struct{})
	f.in.Handle(hub.Message{Topic: topic, Payload: payload, Ack: func() { close(acked) }})
	select {
	case <-acked:
	case <-time.After(5 * time.Second):
		t.Fatalf("message on %s not acked within 5s", topic)
	}
}

// readings ingests readings of device at t0+seq s with cpu.percent=seq.
func (f *fixture) readings(t *testing.T, device, boot string, seqs ...uint64) {
	t.Helper()
	e := telemetry.Envelope{V: telemetry.Version, Device: device, Boot: boot, Tags: map[string]string{"site": "home"}}
	for _, s := range seqs {
		e.Readings = append(e.Readings, telemetry.Reading{Seq: s, TS: tsOf(s), Metrics: telemetry.Metrics{"cpu.percent": float64(s)}})
	}
	b, err := e.Encode()
	if err != nil {
		t.Fatalf("encode envelope: %v", err)
	}
	f.handle(t, topics.Telemetry(device), b)
}

func (f *fixture) status(t *testing.T, device string, st telemetry.Status) {
	t.Helper()
	b, err := st.Encode()
	if err != nil {
		t.Fatalf("encode status: %v", err)
	}
	f.handle(t, topics.Status(device), b)
}

func tsOf(seq uint64) int64 { return t0 + int64(seq)*1000 }

func online() telemetry.Status {
	return telemetry.Status{V: 1, State: telemetry.StateOnline, Boot: "b1", Hostname: "kitchen",
		Model: "Raspberry Pi 4 Model B Rev 1.5", Arch: "arm64", AgentVersion: "0.1.0", IntervalMS: 10_000}
}

// get performs GET path with optional header pairs and returns the response
// with its body read.
func (f *fixture) get(t *testing.T, path string, header ...string) (*http.Response, []byte) {
	t.Helper()
	return f.do(t, http.MethodGet, path, header...)
}

func (f *fixture) post(t *testing.T, path string, header ...string) (*http.Response, []byte) {
	t.Helper()
	return f.do(t, http.MethodPost, path, header...)
}

// do sends a body-less request with header (name, value, ...) and reads
// the whole answer.
func (f *fixture) do(t *testing.T, method, path string, header ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, f.srv.URL()+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := f.client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	return resp, body
}

func wantStatus(t *testing.T, resp *http.Response, body []byte, want int) {
	t.Helper()
	if resp.StatusCode != want {
		t.Fatalf("GET %s = %d %s, want %d", resp.Request.URL.Path, resp.StatusCode, body, want)
	}
}

// wantJSONError checks an error response: JSON with a non-empty "error".
func wantJSONError(t *testing.T, resp *http.Response, body []byte, status int) {
	t.Helper()
	wantStatus(t, resp, body, status)
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	var e struct {
		Error string `json:"error"`
	}
	if err := json.Unmarshal(body, &e); err != nil || e.Error == "" {
		t.Errorf("error body %s: want JSON {\"error\": ...} (%v)", body, err)
	}
}

func TestServer_metrics(t *testing.T) {
	f := newFixture(t, func(s *web.Server) {
		s.Gauges = func() []web.Gauge {
			return []web.Gauge{{Name: "fleetwatch_store_bytes", Type: "gauge", Help: "Size of the store file.", Value: 32768}}
		}
	})
	f.readings(t, "pi-a", "b1", 1, 2)
	f.readings(t, "pi-a", "b1", 2) // a redelivery
	f.handle(t, topics.Telemetry("pi-a"), []byte(`{"v":1,"readings":[`))
	f.handle(t, "nowhere/pi-a/telemetry", []byte(`{}`))

	resp, body := f.get(t, "/metrics")
	wantStatus(t, resp, body, http.StatusOK)
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("Content-Type = %q, want text/plain", ct)
	}
	text := string(body)
	for _, want := range []string{
		"fleetwatch_readings_ingested_total 2\n",
		"fleetwatch_readings_duplicate_total 1\n",
		"fleetwatch_messages_total 4\n",
		`fleetwatch_messages_rejected_total{reason="bad_json"} 1` + "\n",
		`fleetwatch_messages_rejected_total{reason="bad_topic"} 1` + "\n",
		`fleetwatch_messages_rejected_total{reason="bad_seq"} 0` + "\n",
		`fleetwatch_devices{state="online"} 1` + "\n",
		"# TYPE fleetwatch_store_bytes gauge\nfleetwatch_store_bytes 32768\n",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	// Every line is a comment or a sample the Prometheus text format accepts.
	sample := regexp.MustCompile(`^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[a-z_]+="[^"]*"(,[a-z_]+="[^"]*")*\})? (\S+)$`)
	for i, line := range strings.Split(strings.TrimSuffix(text, "\n"), "\n") {
		if strings.HasPrefix(line, "# HELP ") || strings.HasPrefix(line, "# TYPE ") {
			continue
		}
		m := sample.FindStringSubmatch(line)
		if m == nil {
			t.Errorf("line %d %q is not a Prometheus sample", i+1, line)
			continue
		}
		if _, err := strconv.ParseFloat(m[3], 64); err != nil {
			t.Errorf("line %d %q: value: %v", i+1, line, err)
		}
	}
}

func TestServer_healthz(t *testing.T) {
	f := newFixture(t)
	tests := []struct {
		name       string
		ready      bool
		wantStatus int
		want       string
	}{
		{"ready", true, http.StatusOK, "ok"},
		{"not ready", false, http.StatusServiceUnavailable, "unavailable"},
		{"ready again", true, http.StatusOK, "ok"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f.ready.Store(tt.ready)
			resp, body := f.get(t, "/healthz")
			wantStatus(t, resp, body, tt.wantStatus)
			var h struct {
				Status string `json:"status"`
			}
			if err := json.Unmarshal(body, &h); err != nil || h.Status != tt.want {
				t.Errorf("body %s: want status %q (%v)", body, tt.want, err)
			}
		})
	}
}

func TestServer_unknownAPI(t *testing.T) {
	f := newFixture(t)
	resp, body := f.get(t, "/api/v1/nothing")
	wantJSONError(t, resp, body, http.StatusNotFound)
}

func TestServer_Close(t *testing.T) {
	f := newFixture(t)
	events := openSSE(t, f)
	<-events // the first fleet event: the stream is open
	ws := dialWS(t, f, nil)

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	if err := f.srv.Close(ctx); err != nil {
		t.Errorf("Close with open streams: %v", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("Close with open streams took %v, want well under a second", d)
	}
	select {
	case ev, ok := <-events:
		if ok {
			t.Errorf("SSE stream still open after Close: got %+v", ev)
		}
	case <-time.After(2 * time.Second):
		t.Error("SSE stream still open 2s after Close")
	}
	ws.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, _, err := ws.ReadMessage(); err == nil {
		t.Error("WebSocket still open after Close")
	} else if ne := net.Error(nil); errors.As(err, &ne) && ne.Timeout() {
		t.Errorf("WebSocket not closed by Close: %v", err)
	}
	// The fixture's cleanup closes the server again, which must be harmless.
}

// TestServer_CloseDuringUpgrade closes servers right after a WebSocket
// handshake, while the server may not have registered the session yet: the
// connection must still be closed, not left open until its read deadline.
func TestServer_CloseDuringUpgrade(t *testing.T) {
	const rounds = 100
	open := 0
	for range rounds {
		s := &web.Server{Addr: "127.0.0.1:0", Registry: hub.NewRegistry(nil), Feed: hub.NewFeed(hub.FeedOptions{}), Stats: &hub.Stats{}}
		if err := s.Open(); err != nil {
			t.Fatalf("Open: %v", err)
		}
		d := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
		c, _, err := d.Dial("ws"+strings.TrimPrefix(s.URL(), "http")+"/ws", nil)
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := s.Close(ctx); err != nil {
			t.Errorf("Close: %v", err)
		}
		cancel()
		c.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		if _, _, err := c.ReadMessage(); err == nil {
			t.Error("read a message from a closed server")
		} else if ne := net.Error(nil); errors.As(err, &ne) && ne.Timeout() {
			open++
		}
		c.Close()
	}
	if open > 0 {
		t.Errorf("%d of %d WebSockets stayed open after Close", open, rounds)
	}
}
