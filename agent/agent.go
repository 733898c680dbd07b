// Package agent is the collect → outbox → publish loop of fleetwatch-agent.
//
// An Agent takes one reading per interval from its Collectors, numbers it
// with (boot, seq), keeps it in an Outbox until the hub acknowledges it, and
// hands batches to its Publisher. Collectors and Publisher are small
// interfaces implemented by agent/collector and agent/mqttpub.
package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/fleetwatch/fleetwatch/agent/telemetry"
)

// Collector adds one family of readings to m. A failing collector returns
// an error; the agent counts and logs it and carries on with the others.
type Collector interface {
	Name() string
	Collect(ctx context.Context, m telemetry.Metrics) error
}

// Publisher sends encoded telemetry and reports acks and (re)connects.
type Publisher interface {
	// PublishTelemetry sends one encoded envelope. It must not block for
	// long: delivery is confirmed by an ack, not by this call.
	PublishTelemetry(ctx context.Context, payload []byte) error
}

// Defaults for the Agent fields.
const (
	DefaultInterval    = 5 * time.Second
	DefaultResendAfter = 30 * time.Second
	DefaultMaxPending  = 100_000
	DefaultBatch       = 500
)

// Agent collects readings and publishes them until the hub acks them.
type Agent struct {
	Device     string
	Boot       string
	Tags       map[string]string
	Interval   time.Duration
	Collectors []Collector
	Publisher  Publisher

	// ResendAfter is how long a sent reading may stay unacked before the
	// agent sends it again (the broker or hub may have lost it).
	ResendAfter time.Duration
	// MaxPending bounds the outbox; the oldest readings are dropped past it.
	MaxPending int
	// Batch is the most readings per published envelope.
	Batch int

	Now    func() time.Time
	Logger *slog.Logger

	mu     sync.Mutex
	outbox *Outbox
	// errs counts collector failures by collector name.
	errs map[string]uint64
	wake chan struct{}
}

func (a *Agent) init() {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.outbox != nil {
		return
	}
	if a.Interval <= 0 {
		a.Interval = DefaultInterval
	}
	if a.ResendAfter <= 0 {
		a.ResendAfter = DefaultResendAfter
	}
	if a.MaxPending <= 0 {
		a.MaxPending = DefaultMaxPending
	}
	if a.Batch <= 0 || a.Batch > telemetry.MaxReadings {
		a.Batch = DefaultBatch
	}
	if a.Now == nil {
		a.Now = time.Now
	}
	if a.Logger == nil {
		a.Logger = slog.New(slog.DiscardHandler)
	}
	a.outbox = NewOutbox(a.MaxPending)
	a.errs = make(map[string]uint64)
	a.wake = make(chan struct{}, 1)
}

// Run collects one reading per Interval and publishes pending readings until
// ctx is done. It returns ctx's error.
func (a *Agent) Run(ctx context.Context) error {
	a.init()
	tick := time.NewTicker(a.Interval)
	defer tick.Stop()
	a.step(ctx)
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
			a.step(ctx)
		case <-a.wake:
			a.flush(ctx)
		}
	}
}

func (a *Agent) step(ctx context.Context) {
	r := a.Collect(ctx)
	a.mu.Lock()
	a.outbox.Add(r)
	a.mu.Unlock()
	a.flush(ctx)
}

// Collect runs every collector once and returns the reading, without a seq.
func (a *Agent) Collect(ctx context.Context) telemetry.Reading {
	a.init()
	m := make(telemetry.Metrics, 64)
	for _, c := range a.Collectors {
		err := c.Collect(ctx, m)
		// One bad value must not cost the whole reading: Encode would
		// reject it, and the batch with it.
		if bad := dropInvalid(m); len(bad) > 0 && err == nil {
			err = fmt.Errorf("dropped metrics outside the contract: %s", strings.Join(bad, ", "))
		}
		if err != nil {
			a.mu.Lock()
			a.errs[c.Name()]++
			a.mu.Unlock()
			a.Logger.Warn("collector failed", "collector", c.Name(), "err", err)
		}
	}
	a.mu.Lock()
	var total uint64
	for _, n := range a.errs {
		total += n
	}
	a.mu.Unlock()
	m["agent.collector_errors"] = float64(total)
	return telemetry.Reading{TS: a.Now().UnixMilli(), Metrics: m}
}

// flush publishes what is due: unsent readings, and sent ones whose ack is
// overdue, in envelopes of at most Batch readings.
func (a *Agent) flush(ctx context.Context) {
	for {
		a.mu.Lock()
		due, first := a.outbox.Due(a.Now(), a.ResendAfter, a.Batch)
		a.mu.Unlock()
		if len(due) == 0 {
			return
		}
		env := telemetry.Envelope{V: telemetry.Version, Device: a.Device, Boot: a.Boot, Readings: due, Tags: a.Tags}
		if first > 0 {
			env.First = &first
		}
		payload, err := env.Encode()
		for len(env.Readings) > 1 && isReason(err, telemetry.ReasonTooLarge) {
			// A backlog of big readings is more than one MQTT payload:
			// send the newer half now and the rest in the next round.
			half := len(env.Readings) / 2
			a.mu.Lock()
			a.outbox.Unsend(env.Readings[half:])
			a.mu.Unlock()
			env.Readings = env.Readings[:half]
			payload, err = env.Encode()
		}
		if err != nil {
			// Collect makes valid readings, so Device, Boot or Tags break
			// the contract and no envelope can be sent: drop the batch
			// (newest first, so due[0] is its highest seq) rather than
			// retry it forever.
			a.Logger.Error("encode telemetry", "err", err)
			a.mu.Lock()
			a.outbox.Ack(due[0].Seq)
			a.mu.Unlock()
			continue
		}
		if err := a.Publisher.PublishTelemetry(ctx, payload); err != nil {
			// Expected while the broker is away: the outbox keeps the
			// readings and the reconnect resends them.
			a.Logger.Debug("publish telemetry", "err", err, "readings", len(env.Readings))
			a.mu.Lock()
			a.outbox.Unsend(env.Readings)
			a.mu.Unlock()
			return
		}
		if len(env.Readings) == len(due) && len(due) < a.Batch {
			return
		}
	}
}

// dropInvalid deletes the metrics of m that break the contract and returns
// their names, sorted.
func dropInvalid(m telemetry.Metrics) []string {
	var bad []string
	for name, v := range m {
		if !telemetry.ValidMetricName(name) || math.IsNaN(v) || math.IsInf(v, 0) {
			delete(m, name)
			bad = append(bad, strconv.Quote(name))
		}
	}
	slices.Sort(bad)
	return bad
}

func isReason(err error, reason string) bool {
	var te *telemetry.Error
	return errors.As(err, &te) && te.Reason == reason
}

// HandleAck applies an ack from the hub. Acks for another boot are ignored.
func (a *Agent) HandleAck(ack telemetry.Ack) {
	a.init()
	if ack.Boot != a.Boot {
		return
	}
	a.mu.Lock()
	a.outbox.Ack(ack.Seq)
	a.mu.Unlock()
}

// Reconnected marks every unacked reading for sending again: whatever was in
// flight on the old connection may be gone.
func (a *Agent) Reconnected() {
	a.init()
	a.mu.Lock()
	a.outbox.UnsendAll()
	a.mu.Unlock()
	select {
	case a.wake <- struct{}{}:
	default:
	}
}

// Stats is a snapshot of the outbox for logs and tests.
type Stats struct {
	Pending uint64 // readings not yet acked
	Dropped uint64 // readings dropped because the outbox was full
	Acked   uint64 // highest acked seq
	NextSeq uint64
}

// Stats returns the outbox counters.
func (a *Agent) Stats() Stats {
	a.init()
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.outbox.Stats()
}

// String names the agent in logs.
func (a *Agent) String() string { return fmt.Sprintf("agent %s boot %s", a.Device, a.Boot) }
