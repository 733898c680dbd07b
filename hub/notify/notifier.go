package notify

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fleetwatch/fleetwatch/hub"
)

// Notifier fans alerts out to Receivers. Set its fields before the first
// call to any method; later changes are ignored. The zero value of every
// field but Receivers is usable.
type Notifier struct {
	Receivers []Receiver
	// Client sends the requests; nil means a client without an overall
	// timeout (each request is bounded by its receiver's Timeout).
	Client *http.Client
	Now    func() time.Time // nil means time.Now
	// Logger gets deliveries that failed, drops and retries; nil discards.
	// Keys: receiver, alert, status, err, attempt (and body, dropped, wait).
	Logger *slog.Logger
	// Queue is the number of pending messages per receiver; 0 means DefaultQueue.
	Queue int
	// MinBackoff and MaxBackoff bound the exponential retry backoff;
	// 0 means DefaultMinBackoff and DefaultMaxBackoff.
	MinBackoff, MaxBackoff time.Duration
	MaxAttempts            int           // per message; 0 means DefaultAttempts
	RepeatCheck            time.Duration // how often repeats are due-checked; 0 means DefaultRepeatCheck

	once    sync.Once
	st      *state
	running atomic.Bool
}

// ReceiverStats counts what happened to one receiver's messages.
type ReceiverStats struct {
	Name    string
	Sent    uint64 // delivered with a 2xx
	Failed  uint64 // given up: a permanent error or MaxAttempts reached
	Retries uint64 // attempts after the first
	Dropped uint64 // pushed out of a full queue before being sent
	Queued  int    // waiting now (not counting one in flight)
}

// state is everything the Notifier builds from its fields on first use.
type state struct {
	receivers   []Receiver // as configured, for validation
	rx          []*rxState
	client      *http.Client
	now         func() time.Time
	log         *slog.Logger
	minBackoff  time.Duration
	maxBackoff  time.Duration
	maxAttempts int
	repeatCheck time.Duration

	mu       sync.Mutex // guards firing, resolved, nextDue and every rxState.lastDropLog
	firing   map[string]*tracked
	resolved *recentIDs
	nextDue  time.Time // earliest repeat due; zero when none
}

// rxState is one receiver at run time.
type rxState struct {
	r                              Receiver // with defaults applied
	q                              *queue
	sent, failed, retries, dropped atomic.Uint64
	lastDropLog                    time.Time
}

func (n *Notifier) state() *state {
	n.once.Do(func() {
		s := &state{
			receivers:   append([]Receiver(nil), n.Receivers...),
			client:      n.Client,
			now:         n.Now,
			log:         n.Logger,
			minBackoff:  orDefault(n.MinBackoff, DefaultMinBackoff),
			maxBackoff:  orDefault(n.MaxBackoff, DefaultMaxBackoff),
			maxAttempts: orDefault(n.MaxAttempts, DefaultAttempts),
			repeatCheck: orDefault(n.RepeatCheck, DefaultRepeatCheck),
			firing:      make(map[string]*tracked),
			resolved:    newRecentIDs(resolvedMemory),
		}
		if s.client == nil {
			s.client = &http.Client{}
		}
		if s.now == nil {
			s.now = time.Now
		}
		if s.log == nil {
			s.log = slog.New(slog.DiscardHandler)
		}
		s.maxBackoff = max(s.maxBackoff, s.minBackoff)
		size := orDefault(n.Queue, DefaultQueue)
		for _, r := range s.receivers {
			s.rx = append(s.rx, &rxState{r: r.withDefaults(), q: newQueue(size)})
		}
		n.st = s
	})
	return n.st
}

func orDefault[T int | time.Duration](v, def T) T {
	if v <= 0 {
		return def
	}
	return v
}

// Run validates the receivers, then delivers queued messages and repeats
// firing alerts until ctx is done. It returns an error, having started
// nothing, if a receiver is invalid or Run is already running; otherwise it
// returns nil once ctx is done and every worker has stopped. A request in
// flight is cancelled; messages still queued stay queued.
func (n *Notifier) Run(ctx context.Context) error {
	s := n.state()
	if err := validateAll(s.receivers); err != nil {
		return fmt.Errorf("notify: %w", err)
	}
	if !n.running.CompareAndSwap(false, true) {
		return errors.New("notify: Run is already running")
	}
	defer n.running.Store(false)
	var wg sync.WaitGroup
	for _, rx := range s.rx {
		wg.Go(func() { s.work(ctx, rx) })
	}
	wg.Go(func() { s.repeatLoop(ctx) })
	wg.Wait()
	return nil
}

// Notify queues a for every receiver as the package rules say. It never
// blocks on delivery, is safe for concurrent use and may be called before
// Run. Alerts without an ID or with an unknown state are logged and ignored.
func (n *Notifier) Notify(a hub.Alert) {
	s := n.state()
	if a.ID == "" || (a.State != hub.AlertFiring && a.State != hub.AlertResolved) {
		s.log.Warn("alert ignored", "alert", a.ID, "err", fmt.Sprintf("notify: need an id and state firing or resolved, got state %q", a.State))
		return
	}
	now := s.now()
	var drops []drop
	s.mu.Lock()
	if a.Firing() {
		t, ok := s.firing[a.ID]
		if ok && t.alert.Severity == a.Severity && t.alert.Summary == a.Summary {
			t.alert = a // nothing people would notice changed; repeats send the latest
			s.mu.Unlock()
			return
		}
		if !ok {
			t = &tracked{last: make([]time.Time, len(s.rx))}
			s.firing[a.ID] = t
			s.resolved.remove(a.ID) // it fires again: its next resolve is news
		}
		t.alert = a
		for i, rx := range s.rx {
			t.last[i] = now
			drops = s.push(rx, message{alert: a}, now, drops)
			if rx.r.RepeatInterval > 0 {
				s.due(now.Add(rx.r.RepeatInterval))
			}
		}
	} else {
		_, wasFiring := s.firing[a.ID]
		if !wasFiring && s.resolved.has(a.ID) {
			s.mu.Unlock()
			return
		}
		// An unknown ID is sent too: it may have fired before a restart.
		delete(s.firing, a.ID)
		s.resolved.add(a.ID)
		for _, rx := range s.rx {
			drops = s.push(rx, message{alert: a}, now, drops)
		}
	}
	s.mu.Unlock()
	s.logDrops(drops)
}

// Stats returns one entry per receiver, in configuration order.
func (n *Notifier) Stats() []ReceiverStats {
	s := n.state()
	out := make([]ReceiverStats, len(s.rx))
	for i, rx := range s.rx {
		out[i] = ReceiverStats{
			Name:    rx.r.Name,
			Sent:    rx.sent.Load(),
			Failed:  rx.failed.Load(),
			Retries: rx.retries.Load(),
			Dropped: rx.dropped.Load(),
			Queued:  rx.q.len(),
		}
	}
	return out
}

// drop is a rate-limited drop report, logged once s.mu is released so a
// slow log handler cannot hold up Notify's lock.
type drop struct {
	receiver, alert string
	total           uint64
}

// push queues m for rx; s.mu must be held.
func (s *state) push(rx *rxState, m message, now time.Time, drops []drop) []drop {
	old, dropped := rx.q.push(m)
	if !dropped {
		return drops
	}
	total := rx.dropped.Add(1)
	if !rx.lastDropLog.IsZero() && now.Sub(rx.lastDropLog) < time.Second {
		return drops
	}
	rx.lastDropLog = now
	return append(drops, drop{receiver: rx.r.Name, alert: old.alert.ID, total: total})
}

func (s *state) logDrops(drops []drop) {
	for _, d := range drops {
		s.log.Warn("queue full, dropped oldest message", "receiver", d.receiver, "alert", d.alert, "dropped", d.total)
	}
}
