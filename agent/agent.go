// Package agent is the collect → outbox → publish loop of fleetwatch-agent.
//
// An Agent takes one reading per interval from its Collectors, numbers it
// with (boot, seq), keeps it in an Outbox until the hub acknowledges it, and
// hands batches to its Publisher. Collectors and Publisher are small
// interfaces implemented by agent/collector and agent/mqttpub.
//
// The Outbox lives in memory. With a Spool (agent/spool), readings that stay
// unacked for a while are written to disk, so that a crash loses only the
// last SpillInterval and a restart replays the rest; while acks flow,
// nothing is written. Once on disk a reading keeps only a small index entry
// in memory, and its metrics are read back when it is sent.
package agent

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/fleetwatch/fleetwatch/agent/spool"
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

// Defaults for the Agent fields. DefaultMaxAge and DefaultReplayRate are
// what fleetwatch-agent configures; an Agent without them has no age bound
// and no pacing, as simulators replaying long histories need.
const (
	DefaultInterval    = 5 * time.Second
	DefaultResendAfter = 30 * time.Second
	// DefaultMaxPending bounds readings held in memory (all of them without
	// a spool): 10,000 full readings are ~36 MB, what a Pi Zero can spare.
	DefaultMaxPending    = 10_000
	DefaultBatch         = 500
	DefaultSpillInterval = 10 * time.Second
	DefaultMaxAge        = 7 * 24 * time.Hour
	DefaultReplayRate    = 500
)

// Agent collects readings and publishes them until the hub acks them.
type Agent struct {
	Device   string
	Boot     string
	Tags     map[string]string
	Interval time.Duration
	// Phase offsets the readings within each interval: they are taken at
	// wall-clock multiples of Interval plus Phase (see PhaseOf).
	Phase      time.Duration
	Collectors []Collector
	Publisher  Publisher

	// ResendAfter is how long a sent reading may stay unacked before the
	// agent sends it again (the broker or hub may have lost it).
	ResendAfter time.Duration
	// MaxPending bounds the readings held in memory (all of them without a
	// Spool); the oldest are dropped past it. On disk, the spool bounds them.
	MaxPending int
	// Batch is the most readings per published envelope.
	Batch int

	// Spool, when set, keeps the readings that stay unacked on disk, and
	// Run reads back what an earlier run left there. If its resume point
	// (a clean stop) names Boot, new readings continue that boot's seqs.
	// Nil: the outbox lives in memory only.
	Spool *spool.Spool
	// SpillInterval bounds what a crash or power cut can lose. A reading
	// unacked for half of it is written at the next spill check, and the
	// check runs every quarter of it, so every reading older than
	// SpillInterval is on disk (given an fsync shorter than a quarter).
	// Readings acked sooner are never written.
	SpillInterval time.Duration
	// MaxAge drops readings whose ts is older than this; 0: no bound.
	MaxAge time.Duration
	// ReplayRate is the most backlog readings (backfill after an outage,
	// and resends) published per second, in bursts of up to a second's
	// worth; live readings do not count. 0: no pacing.
	ReplayRate int

	Now    func() time.Time
	Logger *slog.Logger

	mu     sync.Mutex
	outbox *Outbox
	// errs counts collector failures by collector name.
	errs       map[string]uint64
	wake       chan struct{}
	replayed   uint64
	spoolStats spool.Stats

	// Run's goroutine only.
	lastTS   int64     // newest reading timestamp taken, Unix ms
	tokens   float64   // replay budget, in readings
	refilled time.Time // when tokens was last topped up
	disk     diskState
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
	if a.SpillInterval <= 0 {
		a.SpillInterval = DefaultSpillInterval
	}
	if a.Now == nil {
		a.Now = time.Now
	}
	if a.Logger == nil {
		a.Logger = slog.New(slog.DiscardHandler)
	}
	a.outbox = NewOutbox(a.Boot, a.MaxPending)
	a.errs = make(map[string]uint64)
	a.wake = make(chan struct{}, 1)
	a.tokens = float64(max(a.ReplayRate, 0))
	if a.Spool != nil {
		a.restore()
	}
}

// Run collects one reading per Interval and publishes pending readings until
// ctx is done. Before it returns it writes every unacked reading and the
// point to resume from to the Spool, if there is one. It returns ctx's
// error, joined with any error saving the outbox.
func (a *Agent) Run(ctx context.Context) error {
	a.init()
	if a.Spool != nil {
		// A resume point on disk names the seqs this run is about to take:
		// should it crash, the next run must not take them again.
		if err := a.Spool.ClearResume(); err != nil {
			return err
		}
	}
	// Readings are taken on a fixed wall-clock schedule and stamped with
	// the scheduled instant: an exact cadence costs the hub ~0.02 B per
	// sample for timestamps where scheduler jitter costs ~0.5.
	due := a.nextTick(a.Now())
	if due.Sub(a.Now()) < a.Interval/2 {
		// Right after the reading taken at start: rates over a few ms say
		// nothing (and may not exist yet). Skip to the next tick.
		due = due.Add(a.Interval)
	}
	tick := time.NewTimer(due.Sub(a.Now()))
	defer tick.Stop()
	var spill <-chan time.Time
	if a.Spool != nil {
		t := time.NewTicker(max(a.SpillInterval/4, time.Millisecond))
		defer t.Stop()
		spill = t.C
	}
	var replay *time.Timer
	defer func() {
		if replay != nil {
			replay.Stop()
		}
	}()
	// schedule arms the replay timer when the backlog waits for budget.
	schedule := func(wait time.Duration) {
		switch {
		case wait <= 0:
		case replay == nil:
			replay = time.NewTimer(wait)
		default:
			replay.Reset(wait)
		}
	}
	schedule(a.step(ctx))
	for {
		var replayC <-chan time.Time
		if replay != nil {
			replayC = replay.C
		}
		select {
		case <-ctx.Done():
			if err := a.save(); err != nil {
				return errors.Join(ctx.Err(), err)
			}
			return ctx.Err()
		case <-tick.C:
			now := a.Now()
			stamp := now
			if d := now.Sub(due); d >= 0 && d <= a.stampTolerance() {
				stamp = due
			}
			schedule(a.stepAt(ctx, stamp))
			now = a.Now()
			if due = a.nextTick(now); due.Sub(now) < a.Interval/2 && now.Sub(stamp) > a.Interval/2 {
				due = due.Add(a.Interval) // an overrun collection: keep readings an interval apart
			}
			tick.Reset(due.Sub(now))
		case <-a.wake:
			schedule(a.flush(ctx))
		case <-replayC:
			schedule(a.flush(ctx))
		case <-spill:
			a.spill(a.Now(), false) //nolint:errcheck // logged; the readings stay in memory and the next check retries
		}
	}
}

// nextTick returns the first tick after t: a wall-clock multiple of the
// interval, shifted by Phase.
func (a *Agent) nextTick(t time.Time) time.Time {
	phase := a.Phase % a.Interval
	return t.Add(-phase).Truncate(a.Interval).Add(a.Interval + phase)
}

// PhaseOf returns a device's own offset within the interval (whole ms),
// from a hash of its id. Ticking at it spreads a fleet's publishes over the
// interval instead of all on the same instant, and keeps each device's
// cadence exact.
func PhaseOf(device string, interval time.Duration) time.Duration {
	if interval <= 0 {
		return 0
	}
	h := fnv.New32a()
	h.Write([]byte(device)) //nolint:errcheck // never fails
	return time.Duration(h.Sum32()) * time.Millisecond % interval / time.Millisecond * time.Millisecond
}

// stampTolerance is how late a tick may fire and still stamp its reading
// with the nominal instant; a later one (a suspended host, a starved CPU)
// keeps the real time.
func (a *Agent) stampTolerance() time.Duration {
	return min(a.Interval/10, 100*time.Millisecond)
}

func (a *Agent) step(ctx context.Context) time.Duration {
	return a.stepAt(ctx, a.Now())
}

// stepAt collects a reading, stamps it at the scheduled instant if the
// collection ended soon after it (else it keeps the time it ended), queues
// it and publishes.
func (a *Agent) stepAt(ctx context.Context, at time.Time) time.Duration {
	r := a.Collect(ctx)
	if ts := at.UnixMilli(); ts > a.lastTS && r.TS >= ts && r.TS-ts <= a.stampTolerance().Milliseconds() {
		r.TS = ts
	}
	a.lastTS = max(a.lastTS, r.TS)
	now := a.Now()
	a.mu.Lock()
	a.outbox.Add(r, now)
	a.dropOld(now)
	a.mu.Unlock()
	a.logDrops(now)
	return a.flush(ctx)
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

// flush publishes what is due: live readings at once, then the backlog
// (unsent readings, and sent ones whose ack is overdue) within the replay
// budget, in envelopes of at most Batch readings. It returns how long to
// wait for budget when backlog is left, else 0.
func (a *Agent) flush(ctx context.Context) time.Duration {
	for {
		now := a.Now()
		a.refill(now)
		a.mu.Lock()
		b := a.outbox.Live(now, a.Batch)
		backlog := len(b.Readings) == 0
		if backlog {
			n := a.Batch
			if a.ReplayRate > 0 {
				n = min(n, int(a.tokens))
			}
			if n == 0 {
				left := a.outbox.HasBacklog(now, a.ResendAfter)
				a.mu.Unlock()
				if left {
					return a.budgetWait()
				}
				return 0
			}
			b = a.outbox.Backlog(now, a.ResendAfter, n)
		}
		a.mu.Unlock()
		if len(b.Readings) == 0 {
			return 0
		}
		if b.locs != nil && !a.load(&b) {
			continue // all of them lost on disk: look again
		}
		sent, ok := a.publish(ctx, b)
		if backlog {
			a.tokens -= float64(sent)
			a.mu.Lock()
			a.replayed += uint64(sent)
			a.mu.Unlock()
		}
		if !ok {
			return 0
		}
	}
}

// refill tops up the replay budget for the time since the last refill.
func (a *Agent) refill(now time.Time) {
	if !a.refilled.IsZero() && a.ReplayRate > 0 {
		rate := float64(a.ReplayRate)
		a.tokens = min(rate, a.tokens+now.Sub(a.refilled).Seconds()*rate)
	}
	a.refilled = now
}

// budgetWait is how long until the budget allows a full envelope.
func (a *Agent) budgetWait() time.Duration {
	want := min(float64(a.Batch), float64(a.ReplayRate))
	wait := time.Duration((want - a.tokens) / float64(a.ReplayRate) * float64(time.Second))
	return max(wait, time.Millisecond)
}

// publish sends b and returns how many of its readings went out, and false
// when the publisher failed (the broker is away).
func (a *Agent) publish(ctx context.Context, b Batch) (int, bool) {
	env := telemetry.Envelope{V: telemetry.Version, Device: a.Device, Boot: b.Boot, Readings: b.Readings, Tags: a.Tags}
	if b.First > 0 {
		env.First = &b.First
	}
	payload, err := env.Encode()
	for len(env.Readings) > 1 && isReason(err, telemetry.ReasonTooLarge) {
		// A backlog of big readings is more than one MQTT payload: send
		// the first half now and the rest in the next round.
		half := len(env.Readings) / 2
		a.mu.Lock()
		a.outbox.Unsend(Batch{Boot: b.Boot, Readings: env.Readings[half:]})
		a.mu.Unlock()
		env.Readings = env.Readings[:half]
		payload, err = env.Encode()
	}
	if err != nil {
		// Collect makes valid readings, so Device, Boot or Tags break
		// the contract and no envelope can be sent: drop the batch
		// rather than retry it forever.
		a.Logger.Error("encode telemetry", "err", err, "boot", b.Boot)
		a.mu.Lock()
		a.outbox.Ack(b.Boot, maxSeq(b.Readings))
		a.mu.Unlock()
		return 0, true
	}
	if err := a.Publisher.PublishTelemetry(ctx, payload); err != nil {
		// Expected while the broker is away: the outbox keeps the
		// readings and the reconnect resends them.
		a.Logger.Debug("publish telemetry", "err", err, "readings", len(env.Readings))
		a.mu.Lock()
		a.outbox.Unsend(Batch{Boot: b.Boot, Readings: env.Readings})
		a.mu.Unlock()
		return 0, false
	}
	return len(env.Readings), true
}

func maxSeq(rs []telemetry.Reading) uint64 {
	var m uint64
	for _, r := range rs {
		m = max(m, r.Seq)
	}
	return m
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

// HandleAck applies an ack from the hub: for the current boot, or for an
// earlier one whose readings the outbox still holds. Others are ignored.
func (a *Agent) HandleAck(ack telemetry.Ack) {
	a.init()
	a.mu.Lock()
	a.outbox.Ack(ack.Boot, ack.Seq)
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

// Stats is a snapshot of the outbox for logs and tests. Counters count
// since the agent started.
type Stats struct {
	Pending uint64 // readings not yet acked
	// Dropped counts readings dropped because the outbox was full: past
	// MaxPending in memory or the spool's MaxBytes on disk.
	Dropped uint64
	Acked   uint64 // highest acked seq of the current boot
	NextSeq uint64

	DroppedAge uint64 // readings dropped because they were older than MaxAge
	Spilled    uint64 // readings written to the spool
	Recovered  uint64 // readings read back from the spool at start
	Replayed   uint64 // backlog readings published: backfill and resends
	// Damaged counts spool records found damaged at start or when read
	// back to be sent: each is at least one lost reading.
	Damaged    uint64
	SpoolBytes uint64 // size of the spool's files
}

// Stats returns the outbox counters.
func (a *Agent) Stats() Stats {
	a.init()
	a.mu.Lock()
	defer a.mu.Unlock()
	st := a.outbox.Stats()
	st.Replayed = a.replayed
	st.Damaged = a.spoolStats.Damaged
	st.SpoolBytes = uint64(a.spoolStats.Bytes)
	return st
}

// String names the agent in logs.
func (a *Agent) String() string { return fmt.Sprintf("agent %s boot %s", a.Device, a.Boot) }

// OutboxMetrics returns a Collector that adds the outbox to every reading:
// agent.outbox_pending, agent.outbox_dropped (full, too old or damaged on
// disk) and agent.outbox_spool_bytes.
func (a *Agent) OutboxMetrics() Collector { return outboxMetrics{a} }

type outboxMetrics struct{ a *Agent }

func (outboxMetrics) Name() string { return "outbox" }

func (c outboxMetrics) Collect(_ context.Context, m telemetry.Metrics) error {
	st := c.a.Stats()
	m["agent.outbox_pending"] = float64(st.Pending)
	m["agent.outbox_dropped"] = float64(st.Dropped + st.DroppedAge + st.Damaged)
	m["agent.outbox_spool_bytes"] = float64(st.SpoolBytes)
	return nil
}

// dropOld applies MaxAge. a.mu is held.
func (a *Agent) dropOld(now time.Time) {
	if a.MaxAge > 0 {
		a.outbox.DropOlder(now.Add(-a.MaxAge).UnixMilli())
	}
}

// logDrops warns about dropped readings, at most once a minute.
func (a *Agent) logDrops(now time.Time) {
	st := a.Stats()
	total := st.Dropped + st.DroppedAge
	if total == a.disk.drops || (!a.disk.dropsAt.IsZero() && now.Sub(a.disk.dropsAt) < time.Minute) {
		return
	}
	a.disk.drops, a.disk.dropsAt = total, now
	a.Logger.Warn("outbox dropped readings", "dropped_full", st.Dropped, "dropped_age", st.DroppedAge, "pending", st.Pending)
}

// logErr logs a spool error at most once a minute: a failing SD card must
// not fill the journal too.
func (a *Agent) logErr(now time.Time, msg string, args ...any) {
	if !a.disk.errAt.IsZero() && now.Sub(a.disk.errAt) < time.Minute {
		return
	}
	a.disk.errAt = now
	a.Logger.Error(msg, args...)
}

// load reads back the metrics of b's readings on disk and reports whether
// any reading is left: one not read back intact is lost (counted damaged,
// forgotten, and settled by b's "first"). Run's goroutine only, the one
// that deletes segments, and outside a.mu: the disk can be slow.
func (a *Agent) load(b *Batch) bool {
	rs, lost, err := a.Spool.Fill(b.Boot, b.Readings, b.locs)
	a.mu.Lock()
	a.spoolStats = a.Spool.Stats()
	if len(lost) > 0 {
		b.First = a.outbox.Lost(b.Boot, lost)
	}
	a.mu.Unlock()
	b.Readings, b.locs = rs, nil
	if err != nil {
		a.logErr(a.Now(), "outbox readings damaged on disk are lost", "boot", b.Boot, "readings", len(lost), "err", err)
	}
	return len(rs) > 0
}
