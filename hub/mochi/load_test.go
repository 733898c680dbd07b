package mochi_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/fleetwatch/fleetwatch/hub/mochi"
)

// TestBroker_Load checks that nothing is dropped when 10 agents publish QoS 1
// as fast as they can to a hub that acks in batches after its disk commit.
//
// The hub's first commit is made to stall until 9,000 messages are unacked,
// as a slow fsync during a burst would. mochi's default capabilities
// (MaximumInflight 8192) then drop messages deterministically, even under
// -race; with steady batches alone they drop only on a fast machine.
func TestBroker_Load(t *testing.T) {
	if testing.Short() {
		t.Skip("load test")
	}
	const (
		publishers  = 10
		perPub      = 1000
		total       = publishers * perPub
		stallUntil  = 9000 // unacked messages before the first ack
		ackInterval = 75 * time.Millisecond
		timeout     = 30 * time.Second
	)

	warnings := &countingHandler{h: testLogger(t).Handler(), n: new(atomic.Int64)}
	b := mustOpen(t, mochi.Config{Addr: "127.0.0.1:0", Logger: slog.New(warnings)})

	// Ack in batches, as the hub does after each disk commit.
	startAcks := make(chan struct{})
	releaseAcks := sync.OnceFunc(func() { close(startAcks) })
	var (
		mu      sync.Mutex
		seen    = make(map[string]struct{}, total)
		dups    int
		pending []paho.Message
		allSeen = make(chan struct{})
	)
	sub := mustConnect(t, b.URL(), "fleetwatch-hub-load", func(o *paho.ClientOptions) {
		o.SetCleanSession(false).SetAutoAckDisabled(true).SetOrderMatters(false)
	})
	mustWait(t, sub.Subscribe("load/#", 1, func(_ paho.Client, m paho.Message) {
		id, _, _ := bytes.Cut(m.Payload(), []byte("|"))
		mu.Lock()
		defer mu.Unlock()
		pending = append(pending, m)
		if _, ok := seen[string(id)]; ok {
			dups++
			return
		}
		seen[string(id)] = struct{}{}
		switch len(seen) {
		case stallUntil:
			releaseAcks()
		case total:
			close(allSeen)
		}
	}))

	ackCtx, stopAcks := context.WithCancel(context.Background())
	ackDone := make(chan struct{})
	go func() {
		defer close(ackDone)
		select {
		case <-startAcks:
		case <-ackCtx.Done():
		}
		tick := time.NewTicker(ackInterval)
		defer tick.Stop()
		for {
			mu.Lock()
			batch := pending
			pending = nil
			mu.Unlock()
			for _, m := range batch {
				m.Ack()
			}
			select {
			case <-tick.C:
			case <-ackCtx.Done():
				return
			}
		}
	}()
	defer func() { stopAcks(); <-ackDone }()

	pubs := make([]paho.Client, publishers)
	for i := range pubs {
		pubs[i] = mustConnect(t, b.URL(), fmt.Sprintf("agent-%02d", i), nil)
	}

	start := time.Now()
	var pubWG sync.WaitGroup
	for p, c := range pubs {
		pubWG.Go(func() {
			topic := fmt.Sprintf("load/agent-%02d/telemetry", p)
			toks := make([]paho.Token, 0, perPub)
			for i := range perPub {
				toks = append(toks, c.Publish(topic, 1, false, payload(p, i, 300)))
			}
			for _, tok := range toks {
				if !tok.WaitTimeout(timeout) || tok.Error() != nil {
					t.Errorf("publisher %d: publish: %v", p, tok.Error())
					return
				}
			}
		})
	}
	pubWG.Wait()
	published := time.Since(start)
	releaseAcks() // in case drops kept the count below stallUntil

	// A message the broker dropped is never delivered, so fail as soon as
	// a drop shows rather than at the timeout.
	poll := time.NewTicker(50 * time.Millisecond)
	defer poll.Stop()
	deadline := time.After(timeout)
wait:
	for {
		select {
		case <-allSeen:
			break wait
		case <-poll.C:
			if s := b.Stats(); s.MessagesDropped == 0 && s.InflightDropped == 0 {
				continue
			}
		case <-deadline:
		}
		mu.Lock()
		n := len(seen)
		mu.Unlock()
		t.Fatalf("received %d of %d messages after %s; stats %+v; %d broker warnings",
			n, total, time.Since(start).Round(time.Millisecond), b.Stats(), warnings.n.Load())
	}
	received := time.Since(start)

	mu.Lock()
	if dups > 0 {
		t.Logf("%d duplicate deliveries (allowed with QoS 1)", dups)
	}
	mu.Unlock()
	t.Logf("published %d in %s, received all in %s (%.0f msg/s)",
		total, published.Round(time.Millisecond), received.Round(time.Millisecond),
		float64(total)/received.Seconds())

	stats := b.Stats()
	if got, want := stats.MessagesDropped, int64(0); got != want {
		t.Errorf("MessagesDropped: got %d, want %d", got, want)
	}
	if got, want := stats.InflightDropped, int64(0); got != want {
		t.Errorf("InflightDropped: got %d, want %d", got, want)
	}
	if got, want := warnings.n.Load(), int64(0); got != want {
		t.Errorf("broker warnings: got %d, want %d", got, want)
	}
}

// BenchmarkBroker_Throughput measures QoS 1 delivery from one publisher to
// one auto-acking subscriber.
func BenchmarkBroker_Throughput(b *testing.B) {
	br := mustOpen(b, mochi.Config{Addr: "127.0.0.1:0"})

	var got atomic.Int64
	done := make(chan struct{})
	n := int64(b.N)
	sub := mustConnect(b, br.URL(), "bench-sub", func(o *paho.ClientOptions) { o.SetOrderMatters(false) })
	mustWait(b, sub.Subscribe("bench/#", 1, func(paho.Client, paho.Message) {
		if got.Add(1) == n {
			close(done)
		}
	}))
	pub := mustConnect(b, br.URL(), "bench-pub", nil)
	msg := payload(0, 0, 300)

	b.ResetTimer()
	start := time.Now()
	// Bound outstanding publishes; paho has no limit of its own.
	window := make(chan paho.Token, 1000)
	go func() {
		defer close(window)
		for range b.N {
			window <- pub.Publish("bench/agent/telemetry", 1, false, msg)
		}
	}()
	for tok := range window {
		if !tok.WaitTimeout(waitTimeout) || tok.Error() != nil {
			b.Fatalf("publish: %v", tok.Error())
		}
	}
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		b.Fatalf("received %d of %d", got.Load(), b.N)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
}

// payload is an n-byte message identified by "pp-iiiiii" before the '|'.
func payload(p, i, n int) []byte {
	s := fmt.Sprintf("%02d-%06d|", p, i)
	return []byte(s + strings.Repeat("x", max(0, n-len(s))))
}

// countingHandler counts warnings and passes only the first few on, since a
// dropping broker logs one per message.
type countingHandler struct {
	h slog.Handler
	n *atomic.Int64
}

func (c *countingHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= slog.LevelWarn
}

func (c *countingHandler) Handle(ctx context.Context, r slog.Record) error {
	if c.n.Add(1) > 5 {
		return nil
	}
	return c.h.Handle(ctx, r)
}

func (c *countingHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &countingHandler{h: c.h.WithAttrs(attrs), n: c.n}
}

func (c *countingHandler) WithGroup(name string) slog.Handler {
	return &countingHandler{h: c.h.WithGroup(name), n: c.n}
}
