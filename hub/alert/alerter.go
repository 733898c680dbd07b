package alert

import (
	"context"
	"errors"
	"log/slog"
	"math"
	"sync"
	"time"

	"github.com/fleetwatch/fleetwatch/hub"
	"github.com/fleetwatch/fleetwatch/hub/fleet"
)

// Defaults for Alerter.
const (
	DefaultEvery              = time.Second
	DefaultCompletenessEvery  = time.Minute
	DefaultCompletenessWindow = 10 * time.Minute
	// completenessLag keeps the newest readings, maybe not committed yet,
	// out of the completeness window.
	completenessLag = 30 * time.Second
)

// ErrNotFiring is returned by Ack for an id no firing alert has.
var ErrNotFiring = errors.New("no firing alert with that id")

// Alerter runs the Engine every Every over the fleet, and hands what
// changed to the store, the live feed and the notifier. Its inputs and
// outputs are functions, wired in cmd; none of them may block for long
// (the notifier queues, the store's writer commits within a second).
type Alerter struct {
	Engine *Engine
	Every  time.Duration

	// Fleet returns every device at now (ms).
	Fleet func(now int64) []fleet.Device
	// Events returns the device timeline entries noted since the last call.
	Events func() []hub.DeviceEvent
	// Completeness returns the share of a device's readings stored in
	// [from, to] ms, 0..1; nil disables the completeness input.
	Completeness func(device string, from, to int64) (float64, error)
	// CompletenessEvery is how often each device's completeness is
	// refreshed; CompletenessWindow how far back it looks.
	CompletenessEvery, CompletenessWindow time.Duration

	Record  func(alerts []hub.Alert, events []hub.DeviceEvent)
	Publish func(a hub.Alert)
	Notify  func(a hub.Alert)

	Now    func() time.Time
	Logger *slog.Logger

	acks chan ack

	mu       sync.Mutex
	firing   []hub.Alert
	complete map[string]float64 // %, per device
	cursor   int                // next device whose completeness is refreshed
}

type ack struct {
	id    string
	reply chan ackReply
}

type ackReply struct {
	a   hub.Alert
	err error
}

func (al *Alerter) init() {
	if al.Every <= 0 {
		al.Every = DefaultEvery
	}
	if al.CompletenessEvery <= 0 {
		al.CompletenessEvery = DefaultCompletenessEvery
	}
	if al.CompletenessWindow <= 0 {
		al.CompletenessWindow = DefaultCompletenessWindow
	}
	if al.Now == nil {
		al.Now = time.Now
	}
	if al.Logger == nil {
		al.Logger = slog.New(slog.DiscardHandler)
	}
	for _, f := range []*func(hub.Alert){&al.Publish, &al.Notify} {
		if *f == nil {
			*f = func(hub.Alert) {}
		}
	}
	if al.Record == nil {
		al.Record = func([]hub.Alert, []hub.DeviceEvent) {}
	}
	if al.Events == nil {
		al.Events = func() []hub.DeviceEvent { return nil }
	}
	al.complete = map[string]float64{}
}

// Run evaluates every Every until ctx is done. It must run for Ack to work.
func (al *Alerter) Run(ctx context.Context) error {
	al.init()
	al.mu.Lock()
	al.acks = make(chan ack)
	al.firing = al.Engine.Firing()
	al.mu.Unlock()
	tick := time.NewTicker(al.Every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case req := <-al.acks:
			a, ok := al.Engine.Ack(req.id, al.Now().UnixMilli())
			if !ok {
				req.reply <- ackReply{err: ErrNotFiring}
				continue
			}
			al.emit([]hub.Alert{a}, nil)
			req.reply <- ackReply{a: a}
		case <-tick.C:
			al.evaluate()
		}
	}
}

func (al *Alerter) evaluate() {
	now := al.Now().UnixMilli()
	devs := al.Fleet(now)
	al.refreshCompleteness(devs, now)
	in := make([]Device, len(devs))
	for i, d := range devs {
		in[i] = Device{ID: d.ID, State: d.State, Reason: d.Reason, Tags: d.Tags, Metrics: d.Metrics, Completeness: math.NaN(), SkewS: math.NaN()}
		if c, ok := al.complete[d.ID]; ok {
			in[i].Completeness = c
		}
		if d.ClockSkewMS != nil {
			in[i].SkewS = float64(*d.ClockSkewMS) / 1000
		}
	}
	al.emit(al.Engine.Evaluate(now, in), al.Events())
}

// emit stores, broadcasts and notifies changed alerts, and stores events.
func (al *Alerter) emit(changed []hub.Alert, events []hub.DeviceEvent) {
	if len(changed) > 0 {
		al.mu.Lock()
		al.firing = al.Engine.Firing()
		al.mu.Unlock()
	}
	al.Record(changed, events)
	for _, a := range changed {
		al.Publish(a)
		al.Notify(a)
		al.Logger.Info("alert", "alert", a.ID, "rule", a.Rule, "device", a.Device, "state", a.State, "severity", a.Severity, "summary", a.Summary)
	}
}

// refreshCompleteness updates the completeness of a share of the devices,
// so each is refreshed about every CompletenessEvery without a burst of
// store reads.
func (al *Alerter) refreshCompleteness(devs []fleet.Device, now int64) {
	if al.Completeness == nil || len(devs) == 0 {
		return
	}
	per := max(1, int(math.Ceil(float64(len(devs))*float64(al.Every)/float64(al.CompletenessEvery))))
	to := now - completenessLag.Milliseconds()
	from := to - al.CompletenessWindow.Milliseconds()
	for range min(per, len(devs)) {
		al.cursor %= len(devs)
		d := devs[al.cursor]
		al.cursor++
		if d.State != fleet.Online {
			delete(al.complete, d.ID)
			continue
		}
		ratio, err := al.Completeness(d.ID, from, to)
		if err != nil {
			al.Logger.Warn("completeness for alerting", "device", d.ID, "err", err)
			continue
		}
		al.complete[d.ID] = 100 * ratio
	}
}

// Firing returns the firing alerts as of the last evaluation, newest first.
func (al *Alerter) Firing() []hub.Alert {
	al.mu.Lock()
	defer al.mu.Unlock()
	out := make([]hub.Alert, len(al.firing))
	copy(out, al.firing)
	return out
}

// Ack acknowledges a firing alert: it is stored, broadcast and notified
// (the notifier stops repeating it).
func (al *Alerter) Ack(ctx context.Context, id string) (hub.Alert, error) {
	al.mu.Lock()
	acks := al.acks
	al.mu.Unlock()
	if acks == nil {
		return hub.Alert{}, errors.New("alerting is not running")
	}
	req := ack{id: id, reply: make(chan ackReply, 1)}
	select {
	case acks <- req:
	case <-ctx.Done():
		return hub.Alert{}, ctx.Err()
	}
	select {
	case r := <-req.reply:
		return r.a, r.err
	case <-ctx.Done():
		return hub.Alert{}, ctx.Err()
	}
}
