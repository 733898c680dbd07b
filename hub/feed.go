package hub

import (
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Event types and channels.
const (
	EventFleet   = "fleet"
	EventReading = "reading"
	EventStatus  = "status"
	EventAlert   = "alert"

	ChannelFleet  = "fleet"
	ChannelAlerts = "alerts"
)

// DeviceChannel is the channel of one device's readings.
func DeviceChannel(id string) string { return "device:" + id }

// Event is one live update, encoded once for every transport.
type Event struct {
	ID      uint64
	Type    string
	Channel string
	Time    int64  // Unix ms when published
	Data    []byte // JSON of the payload

	// The transports' encodings are built once, on first use: an event
	// no client of a transport receives (most readings, at scale) costs
	// only its JSON in the ring.
	wsOnce, sseOnce sync.Once
	ws, sse         []byte
	feed            *Feed
	inRing          atomic.Bool  // kept for resume: its encodings count
	built           atomic.Int64 // encoding bytes counted in feed.encoded

	// key names what a newer event replaces for a client that fell
	// behind: the latest reading of a device, the latest fleet snapshot.
	// Empty: never coalesced (alerts).
	key string
}

// WS returns the WebSocket text frame, built once for every client.
func (ev *Event) WS() []byte {
	ev.wsOnce.Do(func() {
		ev.ws = encodeWS(ev)
		ev.count(len(ev.ws))
	})
	return ev.ws
}

// SSE returns the complete SSE event, ending in a blank line, built once.
func (ev *Event) SSE() []byte {
	ev.sseOnce.Do(func() {
		ev.sse = encodeSSE(ev)
		ev.count(len(ev.sse))
	})
	return ev.sse
}

// count charges an encoding to the ring while the event is in it. Whoever
// swaps built to zero (this, or the eviction) uncharges it, exactly once.
func (ev *Event) count(n int) {
	if ev.feed == nil || !ev.inRing.Load() {
		return
	}
	ev.built.Add(int64(n))
	ev.feed.encoded.Add(int64(n))
	if !ev.inRing.Load() { // evicted meanwhile
		ev.feed.encoded.Add(-ev.built.Swap(0))
	}
}

// Defaults for Feed.
const (
	DefaultRingAge   = 2 * time.Minute // events kept for resume at least this long
	DefaultRingBytes = 512 << 20       // unless their bytes pass this: ~80 s of 10k readings/s
	DefaultBehind    = 1024            // pending events before a client is cut
	// CoalesceFrom is the backlog from which a newer event replaces a
	// pending one with the same key, instead of queueing behind it.
	CoalesceFrom = 32
)

// Feed fans live events out to subscribers and keeps a ring of recent ones
// so any transport can resume from an event id. A subscriber that falls
// behind gets coalesced events (the latest reading of each device, the
// latest fleet snapshot); one that stays behind is cut off with a reason.
// Nothing is dropped silently.
type Feed struct {
	mu     sync.Mutex
	nextID uint64
	subs   map[*Subscription]struct{} // every subscriber
	// Subscribers by channel, and those that take every channel: a
	// reading reaches its device's watchers without visiting the
	// thousands of dashboards that only follow the fleet.
	byChannel map[string]map[*Subscription]struct{}
	all       map[*Subscription]struct{}

	ring      []*Event // circular, grows by doubling
	head, n   int      // oldest index, count
	ringBytes int      // JSON bytes of the events in the ring
	// encoded counts the transport encodings built, of events in the ring
	// or not (the ring's cap counts them when they leave it).
	encoded   atomic.Int64
	maxBytes  int
	maxAge    int64 // ms
	maxEvents int   // 0: no cap
	behind    int

	Stats FeedStats
}

// FeedStats are the feed's counters.
type FeedStats struct {
	Published atomic.Uint64 // events published
	Delivered atomic.Uint64 // events queued to subscribers
	Coalesced atomic.Uint64 // pending events replaced by a newer one
	Cut       atomic.Uint64 // subscribers cut for falling behind
	Replayed  atomic.Uint64 // events replayed on resume
	Resets    atomic.Uint64 // resumes from ids the ring no longer holds
}

// FeedOptions size a Feed. Zero fields take the defaults.
type FeedOptions struct {
	// RingAge is how long events are kept for resume; RingBytes caps
	// their encoded size, which wins at a load too high for the age.
	RingAge   time.Duration
	RingBytes int
	// RingEvents caps the count as well (tests); zero means no cap.
	RingEvents int
	Behind     int // pending events at which a subscriber is cut
}

// NewFeed returns a feed. Ids start from the clock (µs), so they keep
// growing across hub restarts and an id from before a restart resumes as
// a reset, never as someone else's events.
func NewFeed(o FeedOptions) *Feed {
	if o.RingAge <= 0 {
		o.RingAge = DefaultRingAge
	}
	if o.RingBytes <= 0 {
		o.RingBytes = DefaultRingBytes
	}
	if o.Behind <= 0 {
		o.Behind = DefaultBehind
	}
	return &Feed{
		nextID:    uint64(time.Now().UnixMicro()),
		subs:      make(map[*Subscription]struct{}),
		byChannel: make(map[string]map[*Subscription]struct{}),
		all:       make(map[*Subscription]struct{}),
		ring:      make([]*Event, 1024),
		maxBytes:  o.RingBytes, maxAge: o.RingAge.Milliseconds(), maxEvents: o.RingEvents, behind: o.Behind,
	}
}

// Subscription receives the events of its channels, in id order.
type Subscription struct {
	all    bool                // every channel
	chans  map[string]struct{} // else these; guarded by the feed's lock
	notify func()              // called, without locks held, when events were queued

	mu      sync.Mutex
	q       []*Event       // pending from q[h]; nil entries were coalesced away
	h       int            // head
	off     int            // position of q[0] since the start
	keys    map[string]int // coalescing key → position of its newest event
	pending int
	behind  int
	ready   chan struct{}

	done   chan struct{}
	reason atomic.Value
}

// Ready receives a value when events are pending (unless the subscription
// has a notify function).
func (s *Subscription) Ready() <-chan struct{} { return s.ready }

// Done is closed when the subscription ended; Reason says why.
func (s *Subscription) Done() <-chan struct{} { return s.done }

// Reason says why the subscription ended.
func (s *Subscription) Reason() string {
	r, _ := s.reason.Load().(string)
	return r
}

// Pop returns the oldest pending event, or nil.
func (s *Subscription) Pop() *Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	for s.h < len(s.q) {
		ev := s.q[s.h]
		s.q[s.h] = nil
		s.h++
		if s.h == len(s.q) { // drained: start over, reusing the array
			s.off += len(s.q)
			s.q, s.h = s.q[:0], 0
			if cap(s.q) > 4*CoalesceFrom {
				s.q = nil // let a burst's backing array go
			}
		}
		if ev != nil {
			s.pending--
			return ev
		}
	}
	return nil
}

// Pending returns how many events wait.
func (s *Subscription) Pending() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pending
}

// push queues ev; it reports false when the subscriber is too far behind.
func (s *Subscription) push(ev *Event, coalesced *atomic.Uint64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pending >= CoalesceFrom && ev.key != "" {
		if at, ok := s.keys[ev.key]; ok {
			if i := at - s.off; i >= s.h && i < len(s.q) && s.q[i] != nil && s.q[i].key == ev.key {
				s.q[i] = nil
				s.pending--
				coalesced.Add(1)
			}
		}
	}
	if s.pending >= s.behind {
		return false
	}
	if ev.key != "" {
		if s.keys == nil {
			s.keys = make(map[string]int)
		}
		s.keys[ev.key] = s.off + len(s.q)
	}
	s.q = append(s.q, ev)
	s.pending++
	if s.notify == nil {
		select {
		case s.ready <- struct{}{}:
		default:
		}
	}
	return true
}

// Subscribe returns a subscription to channels (none yet is fine: see
// Join). notify, if not nil, is called after events were queued for it,
// instead of signalling Ready; it must not block.
func (f *Feed) Subscribe(notify func(), channels ...string) *Subscription {
	s := f.newSubscription(notify)
	f.mu.Lock()
	f.subs[s] = struct{}{}
	for _, ch := range channels {
		f.join(s, ch)
	}
	f.mu.Unlock()
	return s
}

// SubscribeAll returns a subscription to every channel.
func (f *Feed) SubscribeAll(notify func()) *Subscription {
	s := f.newSubscription(notify)
	s.all = true
	f.mu.Lock()
	f.subs[s] = struct{}{}
	f.all[s] = struct{}{}
	f.mu.Unlock()
	return s
}

func (f *Feed) newSubscription(notify func()) *Subscription {
	return &Subscription{notify: notify, behind: f.behind, ready: make(chan struct{}, 1), done: make(chan struct{})}
}

// Join adds channel to s: events published from now on reach it.
func (f *Feed) Join(s *Subscription, channel string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.subs[s]; ok {
		f.join(s, channel)
	}
}

// Joined says whether s has channel, and how many channels it has.
func (f *Feed) Joined(s *Subscription, channel string) (has bool, n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, has = s.chans[channel]
	return has, len(s.chans)
}

// Leave removes channel from s; events of it already queued stay.
func (f *Feed) Leave(s *Subscription, channel string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.leave(s, channel)
}

func (f *Feed) join(s *Subscription, ch string) {
	if s.all {
		return
	}
	if s.chans == nil {
		s.chans = make(map[string]struct{})
	}
	s.chans[ch] = struct{}{}
	set := f.byChannel[ch]
	if set == nil {
		set = make(map[*Subscription]struct{})
		f.byChannel[ch] = set
	}
	set[s] = struct{}{}
}

func (f *Feed) leave(s *Subscription, ch string) {
	delete(s.chans, ch)
	if set := f.byChannel[ch]; set != nil {
		delete(set, s)
		if len(set) == 0 {
			delete(f.byChannel, ch)
		}
	}
}

// wants says whether s receives events of channel ch; the caller holds
// the feed's lock.
func (s *Subscription) wants(ch string) bool {
	if s.all {
		return true
	}
	_, ok := s.chans[ch]
	return ok
}

// Resume queues for s the kept events after id since. With a channel, it
// first joins s to it, under the feed's lock so that nothing falls between
// the replay and live, and replays only that channel; without, it replays
// every channel s has. reset is true when the ring no longer holds every
// event after since (or since is from the future, a previous run): the
// client must reload.
func (f *Feed) Resume(s *Subscription, since uint64, channel string) (reset bool) {
	f.mu.Lock()
	match := s.wants
	if channel != "" {
		if _, ok := f.subs[s]; ok {
			f.join(s, channel)
		}
		match = func(ch string) bool { return ch == channel }
	}
	oldest := f.nextID + 1
	if f.n > 0 {
		oldest = f.ring[f.head].ID
	}
	reset = since+1 < oldest || since > f.nextID
	var replay []*Event
	if !reset {
		for i := range f.n {
			ev := f.ring[(f.head+i)%len(f.ring)]
			if ev.ID > since && match(ev.Channel) {
				replay = append(replay, ev)
			}
		}
	}
	ok := true
	for _, ev := range replay {
		if ok = s.push(ev, &f.Stats.Coalesced); !ok {
			break
		}
	}
	if !ok {
		f.cutBehind(s)
	}
	f.mu.Unlock()
	if reset {
		f.Stats.Resets.Add(1)
	}
	f.Stats.Replayed.Add(uint64(len(replay)))
	if len(replay) > 0 && s.notify != nil {
		s.notify()
	}
	return reset
}

// Unsubscribe ends s. It is safe to call more than once.
func (f *Feed) Unsubscribe(s *Subscription) {
	f.mu.Lock()
	f.drop(s, "unsubscribed")
	f.mu.Unlock()
}

func (f *Feed) drop(s *Subscription, reason string) {
	if _, ok := f.subs[s]; !ok {
		return
	}
	delete(f.subs, s)
	delete(f.all, s)
	for ch := range s.chans {
		f.leave(s, ch)
	}
	s.reason.Store(reason)
	close(s.done)
	if s.notify != nil && reason != "unsubscribed" {
		go s.notify() // outside the feed's lock: the owner sees Done and says why
	}
}

// cutBehind ends a subscription that fell too far behind; the caller holds
// the feed's lock.
func (f *Feed) cutBehind(s *Subscription) {
	f.Stats.Cut.Add(1)
	f.drop(s, fmt.Sprintf("client too slow: more than %d events behind", f.behind))
}

// coalesceKey says what a newer event replaces for a lagging client.
func coalesceKey(typ, channel string) string {
	switch typ {
	case EventReading, EventFleet:
		return typ + "\x00" + channel
	case EventStatus:
		return "" // a state change is news even if a newer one follows
	}
	return ""
}

// Publish encodes data once, gives it the next id, keeps it in the ring
// and queues it for every matching subscriber.
func (f *Feed) Publish(typ, channel string, data any) (*Event, error) {
	body, err := json.Marshal(data)
	if err != nil {
		return nil, fmt.Errorf("encode %s event: %w", typ, err)
	}
	var wake []*Subscription
	f.mu.Lock()
	f.nextID++
	ev := &Event{ID: f.nextID, Type: typ, Channel: channel, Time: time.Now().UnixMilli(), Data: body, key: coalesceKey(typ, channel), feed: f}
	if typ != EventFleet {
		// A resuming client needs only the newest snapshot, which the
		// transports send fresh: keeping every second's would cost more
		// than all the readings.
		f.keep(ev)
	}
	var delivered uint64
	for _, set := range [2]map[*Subscription]struct{}{f.all, f.byChannel[channel]} {
		for s := range set {
			if !s.push(ev, &f.Stats.Coalesced) {
				f.cutBehind(s)
				continue
			}
			delivered++
			if s.notify != nil {
				wake = append(wake, s)
			}
		}
	}
	f.mu.Unlock()
	f.Stats.Delivered.Add(delivered)
	f.Stats.Published.Add(1)
	for _, s := range wake {
		s.notify()
	}
	return ev, nil
}

// keep adds ev to the ring, evicting what is older than the ring's age or
// past its byte (or count) cap. The bytes are the events' JSON plus the
// encodings built for them.
func (f *Feed) keep(ev *Event) {
	size := len(ev.Data)
	for f.n > 0 {
		old := f.ring[f.head]
		if ev.Time-old.Time <= f.maxAge && f.ringBytes+int(f.encoded.Load())+size <= f.maxBytes && (f.maxEvents == 0 || f.n < f.maxEvents) {
			break
		}
		f.ringBytes -= len(old.Data)
		old.inRing.Store(false)
		f.encoded.Add(-old.built.Swap(0))
		f.ring[f.head] = nil
		f.head = (f.head + 1) % len(f.ring)
		f.n--
	}
	if f.n == len(f.ring) { // full: double, oldest first
		grown := make([]*Event, 2*len(f.ring))
		for i := range f.n {
			grown[i] = f.ring[(f.head+i)%len(f.ring)]
		}
		f.ring, f.head = grown, 0
	}
	f.ring[(f.head+f.n)%len(f.ring)] = ev
	f.n++
	f.ringBytes += size
	ev.inRing.Store(true)
}

// RingSpan returns how many events the ring holds, their bytes (JSON and
// the encodings built), and the oldest one's age in ms (0 if empty).
func (f *Feed) RingSpan(now int64) (events, bytes int, ageMS int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.n == 0 {
		return 0, 0, 0
	}
	return f.n, f.ringBytes + int(f.encoded.Load()), now - f.ring[f.head].Time
}

// LastID returns the id of the newest event.
func (f *Feed) LastID() uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.nextID
}

// Subscribers returns the number of live subscriptions.
func (f *Feed) Subscribers() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.subs)
}

// encodeWS builds {"type":T,"channel":C,"id":N,"data":D}; fleet and status
// events carry no channel, as the contract shows them.
func encodeWS(ev *Event) []byte {
	b := make([]byte, 0, len(ev.Data)+64)
	b = append(b, `{"type":`...)
	b = strconv.AppendQuote(b, ev.Type)
	if ev.Type == EventReading {
		b = append(b, `,"channel":`...)
		b = strconv.AppendQuote(b, ev.Channel)
	}
	b = append(b, `,"id":`...)
	b = strconv.AppendUint(b, ev.ID, 10)
	b = append(b, `,"data":`...)
	b = append(b, ev.Data...)
	return append(b, '}')
}

func encodeSSE(ev *Event) []byte {
	b := make([]byte, 0, len(ev.Data)+48)
	b = append(b, "id: "...)
	b = strconv.AppendUint(b, ev.ID, 10)
	b = append(b, "\nevent: "...)
	b = append(b, ev.Type...)
	b = append(b, "\ndata: "...)
	b = append(b, ev.Data...) // JSON from encoding/json holds no raw newlines
	return append(b, "\n\n"...)
}
