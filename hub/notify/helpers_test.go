package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fleetwatch/fleetwatch/hub"
)

// hit is one request a test server received.
type hit struct {
	Method string
	Header http.Header
	Body   []byte
	At     time.Time
}

// replyFunc answers the n-th (0-based) request; nil answers 200.
type replyFunc func(s *server, n int, w http.ResponseWriter, r *http.Request)

// server is a real HTTP server on 127.0.0.1 that records every request.
type server struct {
	*httptest.Server
	reply replyFunc
	stop  chan struct{} // closed at cleanup to release hanging handlers

	mu   sync.Mutex
	hits []hit
}

func newServer(t *testing.T, reply replyFunc) *server {
	t.Helper()
	s := &server{reply: reply, stop: make(chan struct{})}
	s.Server = httptest.NewServer(http.HandlerFunc(s.handle))
	t.Cleanup(s.Close)
	// Cleanups run last-in first-out: release handlers before Close waits for them.
	t.Cleanup(func() { close(s.stop) })
	return s
}

func (s *server) handle(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	n := len(s.hits)
	s.hits = append(s.hits, hit{Method: r.Method, Header: r.Header.Clone(), Body: body, At: time.Now()})
	s.mu.Unlock()
	if s.reply != nil {
		s.reply(s, n, w, r)
	}
}

// hang blocks until the client gives up or the test ends.
func (s *server) hang(r *http.Request) {
	select {
	case <-r.Context().Done():
	case <-s.stop:
	}
}

func (s *server) received() []hit {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]hit(nil), s.hits...)
}

func (s *server) count() int { return len(s.received()) }

// status replies code with body to every request.
func status(code int, body string) replyFunc {
	return func(_ *server, _ int, w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(code)
		_, _ = io.WriteString(w, body)
	}
}

// testNotifier has intervals short enough for the package to test in seconds.
func testNotifier(rs ...Receiver) *Notifier {
	return &Notifier{
		Receivers:   rs,
		MinBackoff:  5 * time.Millisecond,
		MaxBackoff:  20 * time.Millisecond,
		RepeatCheck: 5 * time.Millisecond,
	}
}

// start runs n until the test ends; stop cancels it and returns Run's error.
func start(t *testing.T, n *Notifier) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	stop = sync.OnceValue(func() error {
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(5 * time.Second):
			t.Error("Run did not return within 5s of cancel")
			return nil
		}
	})
	t.Cleanup(func() { _ = stop() })
	return stop
}

// waitFor polls cond until it holds or fails the test after 3s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func firing(id string) hub.Alert {
	return hub.Alert{
		ID: id, Rule: "cpu-high", Device: "pi-7", Metric: "cpu.percent",
		Severity: hub.SeverityCritical, State: hub.AlertFiring,
		Value: 97.2, Threshold: 90, Summary: "pi-7 cpu.percent 97.2 > 90 for 2m",
		StartedAt: 1700000000000, UpdatedAt: 1700000120000,
	}
}

func resolved(a hub.Alert) hub.Alert {
	a.State = hub.AlertResolved
	a.ResolvedAt = a.UpdatedAt + 60000
	a.UpdatedAt = a.ResolvedAt
	return a
}

// decoded is the json format's envelope as a receiver sees it.
type decoded struct {
	Version int       `json:"version"`
	Status  string    `json:"status"`
	Repeat  bool      `json:"repeat"`
	Alert   hub.Alert `json:"alert"`
}

func decode(t *testing.T, h hit) decoded {
	t.Helper()
	var d decoded
	if err := json.Unmarshal(h.Body, &d); err != nil {
		t.Fatalf("body %q: %v", h.Body, err)
	}
	return d
}

func decodeAll(t *testing.T, hs []hit) []decoded {
	t.Helper()
	out := make([]decoded, len(hs))
	for i, h := range hs {
		out[i] = decode(t, h)
	}
	return out
}

// logBuf collects JSON log lines; safe for the notifier's goroutines.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func (l *logBuf) logger() *slog.Logger {
	return slog.New(slog.NewJSONHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// records returns the logged records whose message is msg.
func (l *logBuf) records(t *testing.T, msg string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for line := range strings.Lines(l.String()) {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if rec["msg"] == msg {
			out = append(out, rec)
		}
	}
	return out
}
