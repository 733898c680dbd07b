// Package web is the hub's HTTP face: the JSON API, live delivery over
// WebSocket (melody) and SSE, Prometheus metrics, health, and the embedded
// dashboard.
//
// Every listener here validates what it reads: request ids and metric names
// against the contract, WebSocket origins against an allow-list (same origin
// by default), inbound WebSocket messages against a size limit, and request
// headers against net/http's limits and timeouts.
package web

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/olahol/melody"

	"github.com/fleetwatch/fleetwatch/hub"
)

// Defaults for Server.
const (
	DefaultHeartbeat     = 15 * time.Second
	DefaultMaxWSMessage  = 4096
	DefaultShutdownGrace = 5 * time.Second
)

// History is the part of the store the API reads.
type History interface {
	History(q hub.HistoryQuery) ([]hub.Series, error)
	Completeness(device string, from, to int64) (hub.Completeness, error)
}

// Server serves the API, live transports and dashboard.
type Server struct {
	Addr     string
	Registry *hub.Registry
	History  History
	Feed     *hub.Feed
	Stats    *hub.Stats
	// Alerts and Records serve the alert and timeline endpoints; nil
	// answers 503 there.
	Alerts    AlertSource
	Records   Records
	Dashboard http.Handler
	// Ready reports whether the store is open and the broker subscription
	// is live; /healthz answers 503 otherwise.
	Ready func() error
	// Gauges adds extra lines to /metrics (store and broker counters).
	Gauges func() []Gauge
	// AllowedOrigins lists extra origins (scheme://host[:port]) that may
	// open a WebSocket; the hub's own origin is always allowed.
	AllowedOrigins []string
	Heartbeat      time.Duration
	// MaxConns and MaxConnsPerIP bound live connections (WebSocket, SSE
	// and long-poll together); past them a client gets 503 or 429 with
	// Retry-After. Zero means the defaults.
	MaxConns, MaxConnsPerIP int

	Now    func() time.Time
	Logger *slog.Logger

	ln     net.Listener
	srv    *http.Server
	ws     *melody.Melody
	ctx    context.Context // done when Close starts: ends SSE streams
	cancel context.CancelFunc
	wg     sync.WaitGroup

	fleetMu   sync.Mutex
	fleetSnap any
	fleetBody []byte
	fleetTag  string

	sessions tracker // WebSocket sessions, which outlive their handler

	sse    sseCounters
	wsc    wsCounters
	limits limiter
}

// Gauge is one extra /metrics sample.
type Gauge struct {
	Name, Help, Type string
	Value            float64
}

// Open starts listening and serving.
func (s *Server) Open() error {
	if s.Now == nil {
		s.Now = time.Now
	}
	if s.Logger == nil {
		s.Logger = slog.New(slog.DiscardHandler)
	}
	if s.Heartbeat <= 0 {
		s.Heartbeat = DefaultHeartbeat
	}
	if s.Ready == nil {
		s.Ready = func() error { return nil }
	}
	if s.MaxConns <= 0 {
		s.MaxConns = DefaultMaxConns
	}
	if s.MaxConnsPerIP <= 0 {
		s.MaxConnsPerIP = DefaultMaxConnsPerIP
	}
	ln, err := net.Listen("tcp", s.Addr)
	if err != nil {
		return fmt.Errorf("listen http on %q: %w", s.Addr, err)
	}
	s.ln = ln
	s.ws = s.newMelody()

	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/fleet", s.handleFleet)
	mux.HandleFunc("GET /api/v1/fleet/summary", s.handleSummary)
	mux.HandleFunc("GET /api/v1/devices/{id}", s.handleDevice)
	mux.HandleFunc("GET /api/v1/devices/{id}/history", s.handleHistory)
	mux.HandleFunc("GET /api/v1/devices/{id}/completeness", s.handleCompleteness)
	mux.HandleFunc("GET /api/v1/devices/{id}/events", s.handleDeviceEvents)
	mux.HandleFunc("GET /api/v1/alerts", s.handleAlerts)
	mux.HandleFunc("POST /api/v1/alerts/{id}/ack", s.handleAck)
	mux.HandleFunc("GET /events", s.handleSSE)
	mux.HandleFunc("GET /api/v1/poll", s.handlePoll)
	mux.HandleFunc("GET /api/v1/stats", s.handleStats)
	mux.HandleFunc("GET /ws", s.handleWS)
	mux.HandleFunc("GET /metrics", s.handleMetrics)
	mux.HandleFunc("GET /healthz", s.handleHealth)
	mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "no such endpoint: "+r.Method+" "+r.URL.Path)
	})
	if s.Dashboard != nil {
		mux.Handle("/", s.Dashboard)
	}
	s.srv = &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 5 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		// No WriteTimeout: it would cut SSE and WebSocket streams. Streams
		// set per-write deadlines instead.
	}

	ctx, cancel := context.WithCancel(context.Background())
	s.ctx, s.cancel = ctx, cancel
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.Logger.Error("http server stopped", "err", err)
		}
	}()
	return nil
}

// URL returns the base URL of the server, e.g. http://127.0.0.1:8080.
func (s *Server) URL() string {
	addr := s.ln.Addr().(*net.TCPAddr)
	host := addr.IP.String()
	if addr.IP.IsUnspecified() {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, fmt.Sprint(addr.Port))
}

// Close stops accepting, closes live connections and waits for handlers,
// bounded by ctx.
func (s *Server) Close(ctx context.Context) error {
	if s.srv == nil {
		return nil
	}
	s.cancel()
	s.ws.Close() //nolint:errcheck // closing an already closed melody only says so
	err := s.srv.Shutdown(ctx)
	if err != nil {
		s.srv.Close()
	}
	s.wg.Wait()
	waited := s.sessions.Wait(ctx)
	if err != nil {
		return fmt.Errorf("shut down http: %w", err)
	}
	if waited != nil {
		return fmt.Errorf("close websocket sessions: %w", waited)
	}
	return nil
}

// tracker runs goroutines that must end before Close returns, and refuses
// new ones once Close began.
type tracker struct {
	mu     sync.Mutex
	closed bool
	wg     sync.WaitGroup
}

// Go runs f on a new goroutine unless Wait has begun.
func (t *tracker) Go(f func()) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return false
	}
	t.wg.Go(f)
	return true
}

// Wait refuses new goroutines and waits for the running ones, bounded by ctx.
func (t *tracker) Wait(ctx context.Context) error {
	t.mu.Lock()
	t.closed = true
	t.mu.Unlock()
	done := make(chan struct{})
	go func() { t.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
