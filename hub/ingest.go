package hub

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fleetwatch/fleetwatch/agent/telemetry"
)

// Defaults for Ingester.
const (
	// DefaultCommitInterval keeps durability under 4 fsyncs/s (bbolt syncs
	// twice per commit) at any load.
	DefaultCommitInterval = 500 * time.Millisecond
	DefaultMaxBatch       = 5000
	DefaultQueue          = 16384
	DefaultRetry          = 500 * time.Millisecond
	DefaultLiveWindow     = 2 * time.Minute
)

// Ingester turns broker messages into live events and durable commits.
type Ingester struct {
	Topics   telemetry.Topics
	Store    Store
	Acker    Acker
	Registry *Registry
	Feed     *Feed

	// CommitInterval is the longest a valid message waits for its commit;
	// it bounds fsyncs to about 1/CommitInterval per second at load.
	CommitInterval time.Duration
	MaxBatch       int
	Queue          int
	// LiveWindow: readings stamped longer ago than this are stored but not
	// published live. Zero means DefaultLiveWindow.
	LiveWindow time.Duration

	Now    func() time.Time
	Logger *slog.Logger

	Stats Stats

	// commitErr is the error of the last commit attempt, nil once one
	// succeeds: see CommitErr.
	commitErr atomic.Pointer[error]

	once  sync.Once
	queue chan item
	done  chan struct{}
}

type item struct {
	env    *telemetry.Envelope // nil for a status message
	device string              // "" for records
	ack    func()
	// Records: alerts and device events to store with the next commit.
	alerts []Alert
	events []DeviceEvent
}

// Stats are the ingest counters shown at /metrics.
type Stats struct {
	Messages   atomic.Uint64 // messages handled
	Readings   atomic.Uint64 // readings stored (committed)
	Duplicates atomic.Uint64 // readings received again and skipped
	Gaps       atomic.Uint64 // readings settled as gaps
	Dropped    atomic.Uint64 // readings settled but not stored: outside retention
	Commits    atomic.Uint64
	CommitErrs atomic.Uint64
	Queued     atomic.Int64
	rejected   sync.Map // reason → *atomic.Uint64
}

// Reject counts a rejected message by reason.
func (s *Stats) Reject(reason string) {
	v, _ := s.rejected.LoadOrStore(reason, new(atomic.Uint64))
	v.(*atomic.Uint64).Add(1)
}

// Rejected returns the count for reason.
func (s *Stats) Rejected(reason string) uint64 {
	v, ok := s.rejected.Load(reason)
	if !ok {
		return 0
	}
	return v.(*atomic.Uint64).Load()
}

func (in *Ingester) init() {
	in.once.Do(func() {
		if in.CommitInterval <= 0 {
			in.CommitInterval = DefaultCommitInterval
		}
		if in.MaxBatch <= 0 {
			in.MaxBatch = DefaultMaxBatch
		}
		if in.Queue <= 0 {
			in.Queue = DefaultQueue
		}
		if in.LiveWindow <= 0 {
			in.LiveWindow = DefaultLiveWindow
		}
		if in.Now == nil {
			in.Now = time.Now
		}
		if in.Logger == nil {
			in.Logger = slog.New(slog.DiscardHandler)
		}
		in.queue = make(chan item, in.Queue)
		in.done = make(chan struct{})
	})
}

// Handle validates m and sends it down the live and durable paths. It is
// called on the MQTT client's per-message goroutine and returns as soon as
// the message is queued; a rejected message is acked at once so the broker
// does not redeliver poison forever.
func (in *Ingester) Handle(m Message) {
	in.init()
	if m.Ack == nil {
		m.Ack = func() {} // a caller without broker acks (tests, replays)
	}
	in.Stats.Messages.Add(1)
	now := in.Now().UnixMilli()
	device, kind, err := in.Topics.Parse(m.Topic)
	if err != nil {
		in.reject(m, device, err)
		return
	}
	switch kind {
	case telemetry.KindTelemetry:
		env, err := telemetry.DecodeTelemetry(device, m.Payload, time.UnixMilli(now))
		if err != nil {
			in.reject(m, device, err)
			return
		}
		fresh := in.Registry.ObserveTelemetry(&env, now)
		for _, r := range fresh {
			// A backlog replayed after an outage is history, not news:
			// it goes to the store only, so a day of replay does not
			// flood every dashboard (or the resume ring).
			if r.TS < now-in.LiveWindow.Milliseconds() {
				continue
			}
			in.publish(EventReading, DeviceChannel(device), readingEvent{Device: device, Seq: r.Seq, TS: r.TS, Metrics: r.Metrics})
		}
		in.enqueue(item{env: &env, device: device, ack: m.Ack})
	case telemetry.KindStatus:
		if len(m.Payload) == 0 {
			m.Ack() // a cleared retained status: nothing to record
			return
		}
		st, err := telemetry.DecodeStatus(m.Payload)
		if err != nil {
			in.reject(m, device, err)
			return
		}
		rec := in.Registry.ObserveStatus(device, st, now)
		state, reason := StateOf(&rec, now)
		in.publish(EventStatus, ChannelFleet, statusEvent{Device: device, State: state, Reason: reason, LastSeen: rec.LastSeen, TS: now, Status: st})
		in.enqueue(item{device: device, ack: m.Ack})
	default:
		in.reject(m, device, &telemetry.Error{Reason: telemetry.ReasonBadTopic, Msg: "unknown topic kind " + kind})
	}
}

type readingEvent struct {
	Device  string            `json:"device"`
	Seq     uint64            `json:"seq"`
	TS      int64             `json:"ts"`
	Metrics telemetry.Metrics `json:"metrics"`
}

// statusEvent is the live "status" payload: the device's state as the API
// reports it, when it changed, and the status message that changed it.
type statusEvent struct {
	Device   string           `json:"device"`
	State    string           `json:"state"`
	Reason   string           `json:"reason,omitempty"`
	LastSeen int64            `json:"last_seen"`
	TS       int64            `json:"ts"`
	Status   telemetry.Status `json:"status"`
}

func (in *Ingester) publish(typ, channel string, data any) {
	if in.Feed == nil {
		return
	}
	if _, err := in.Feed.Publish(typ, channel, data); err != nil {
		in.Logger.Error("publish live event", "type", typ, "err", err)
	}
}

func (in *Ingester) reject(m Message, device string, err error) {
	reason := telemetry.ReasonBadJSON
	var te *telemetry.Error
	if errors.As(err, &te) {
		reason = te.Reason
	}
	in.Stats.Reject(reason)
	in.Logger.Debug("message rejected", "topic", m.Topic, "device", device, "reason", reason, "err", err)
	m.Ack()
}

// Record stores alerts and device events with the next commit: the store
// has one writer. It waits while the queue is full and drops them only
// when the hub is shutting down.
func (in *Ingester) Record(alerts []Alert, events []DeviceEvent) {
	if len(alerts) == 0 && len(events) == 0 {
		return
	}
	in.init()
	in.enqueue(item{alerts: alerts, events: events, ack: func() {}})
}

func (in *Ingester) enqueue(it item) {
	in.Stats.Queued.Add(1)
	select {
	case in.queue <- it:
	case <-in.done:
		// Shutting down: leave the message unacked so the broker
		// redelivers it to the next hub.
		in.Stats.Queued.Add(-1)
	}
}

// CommitErr returns the error of the last commit attempt, or nil if it
// succeeded (or none was made yet). While it is non-nil the writer is
// retrying and acks are held: the hub is not ready. Safe for concurrent use.
func (in *Ingester) CommitErr() error {
	if p := in.commitErr.Load(); p != nil {
		return *p
	}
	return nil
}

// Run is the single writer: it commits queued messages in groups, then acks
// them, until ctx is done; it commits what is already queued before it
// returns.
func (in *Ingester) Run(ctx context.Context) error {
	in.init()
	var batch []item
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	flush := func() {
		in.commit(ctx, batch)
		batch = batch[:0]
	}
	for {
		select {
		case <-ctx.Done():
			close(in.done)
		drain:
			for {
				select {
				case it := <-in.queue:
					batch = append(batch, it)
					if len(batch) >= in.MaxBatch {
						flush()
					}
				default:
					break drain
				}
			}
			if len(batch) > 0 {
				flush()
			}
			return ctx.Err()
		case it := <-in.queue:
			if len(batch) == 0 {
				timer.Reset(in.CommitInterval)
			}
			batch = append(batch, it)
			if len(batch) >= in.MaxBatch {
				timer.Stop()
				flush()
			}
		case <-timer.C:
			flush()
		}
	}
}

// commit stores items, retrying until it succeeds: a full or read-only disk
// stops acks (agents keep their readings) but loses nothing and crashes
// nothing. On shutdown it gives up and leaves the messages unacked.
func (in *Ingester) commit(ctx context.Context, items []item) {
	b := &Batch{}
	seen := make(map[string]bool, len(items))
	for _, it := range items {
		if it.env != nil {
			b.Envelopes = append(b.Envelopes, it.env)
		}
		b.Alerts = append(b.Alerts, it.alerts...)
		b.Events = append(b.Events, it.events...)
		if it.device == "" {
			continue
		}
		// One record per device per commit, taken from the registry here
		// rather than copied on every message in the MQTT handler.
		if !seen[it.device] {
			seen[it.device] = true
			if rec, ok := in.Registry.Device(it.device); ok {
				b.Devices = append(b.Devices, rec)
			}
		}
	}
	var res CommitResult
	for attempt := 0; ; attempt++ {
		var err error
		res, err = in.Store.Commit(b)
		if err == nil {
			break
		}
		in.Stats.CommitErrs.Add(1)
		in.commitErr.Store(&err)
		// Log the first failures, then every 64th: a full disk must not
		// fill itself further with our own log lines.
		if attempt < 3 || attempt%64 == 0 {
			in.Logger.Error("commit failed; acks held until it succeeds", "messages", len(items), "attempt", attempt+1, "err", err)
		}
		select {
		case <-time.After(DefaultRetry):
		case <-ctx.Done():
			if attempt > 0 {
				in.Stats.Queued.Add(-int64(len(items)))
				return
			}
		}
	}
	if in.commitErr.Swap(nil) != nil {
		in.Logger.Info("commit succeeded again; acks resume", "messages", len(items))
	}
	in.Stats.Commits.Add(1)
	in.Stats.Readings.Add(uint64(res.Stored))
	in.Stats.Duplicates.Add(uint64(res.Duplicates))
	in.Stats.Gaps.Add(uint64(res.Gaps))
	in.Stats.Dropped.Add(uint64(res.Dropped))
	in.Stats.Queued.Add(-int64(len(items)))
	for _, it := range items {
		it.ack()
	}
	if in.Acker != nil {
		for _, a := range res.Acks {
			in.Acker.PublishAck(a.Device, a.Ack)
		}
	}
}
