package hub

import (
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
)

// Event types and channels.
const (
	EventFleet   = "fleet"
	EventReading = "reading"
	EventStatus  = "status"

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
	Data    []byte // JSON of the payload
	WS      []byte // the WebSocket text frame
	SSE     []byte // the complete SSE event, ending in a blank line
}

// DefaultSubscriber is the buffer, in events, of each subscription.
const DefaultSubscriber = 1024

// Feed fans live events out to subscribers. A subscriber that cannot keep
// up is cut off with a reason rather than silently skipped, so a client
// never shows data with holes it does not know about.
type Feed struct {
	mu     sync.Mutex
	nextID uint64
	subs   map[*Subscription]struct{}
	bufLen int

	cut atomic.Uint64
}

// NewFeed returns a feed with subscriber buffers of buf events (0: the
// default).
func NewFeed(buf int) *Feed {
	if buf <= 0 {
		buf = DefaultSubscriber
	}
	return &Feed{subs: make(map[*Subscription]struct{}), bufLen: buf}
}

// Subscription receives events whose channel its filter accepts.
type Subscription struct {
	C      <-chan *Event
	c      chan *Event
	filter func(*Event) bool
	done   chan struct{}
	reason atomic.Value
}

// Done is closed when the feed cut the subscription off; Reason says why.
func (s *Subscription) Done() <-chan struct{} { return s.done }

// Reason says why the subscription ended.
func (s *Subscription) Reason() string {
	r, _ := s.reason.Load().(string)
	return r
}

// Subscribe returns a subscription to events accepted by filter (nil: all).
func (f *Feed) Subscribe(filter func(*Event) bool) *Subscription {
	c := make(chan *Event, f.bufLen)
	s := &Subscription{C: c, c: c, filter: filter, done: make(chan struct{})}
	f.mu.Lock()
	f.subs[s] = struct{}{}
	f.mu.Unlock()
	return s
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
	s.reason.Store(reason)
	close(s.done)
}

// Publish encodes data once, gives it the next id and delivers it.
func (f *Feed) Publish(typ, channel string, data any) (*Event, error) {
	body, err := json.Marshal(data)
	if err != nil {
		return nil, fmt.Errorf("encode %s event: %w", typ, err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.nextID++
	ev := &Event{ID: f.nextID, Type: typ, Channel: channel, Data: body}
	ev.WS = encodeWS(ev)
	ev.SSE = encodeSSE(ev)
	for s := range f.subs {
		if s.filter != nil && !s.filter(ev) {
			continue
		}
		select {
		case s.c <- ev:
		default:
			f.cut.Add(1)
			f.drop(s, "client too slow: buffer full")
		}
	}
	return ev, nil
}

// LastID returns the id of the newest event.
func (f *Feed) LastID() uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.nextID
}

// Cut returns how many subscribers were cut off for being too slow.
func (f *Feed) Cut() uint64 { return f.cut.Load() }

// Subscribers returns the number of live subscriptions.
func (f *Feed) Subscribers() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.subs)
}

// encodeWS builds {"type":T,"channel":C,"data":D}; fleet and status events
// carry no channel, as the contract shows them.
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
