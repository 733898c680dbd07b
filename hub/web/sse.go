package web

import (
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/fleetwatch/fleetwatch/hub"
)

// sseWriteTimeout cuts a client that stops reading: its writes block once
// the kernel buffers fill, and the deadline turns that into an error.
const sseWriteTimeout = 10 * time.Second

// sseRetry is the reconnect delay the stream asks EventSource for.
const sseRetry = 2000

type sseCounters struct {
	open, total, cut atomic.Int64
	delivery         deliveryHist
}

// channelsOf parses ?channels=fleet,alerts,device:<id> and ?device=<id>;
// neither (nil) means every channel.
func channelsOf(q map[string][]string) ([]string, error) {
	set := map[string]bool{}
	for _, v := range q["channels"] {
		for _, ch := range strings.Split(v, ",") {
			if ch = strings.TrimSpace(ch); ch == "" {
				continue
			}
			if err := validChannel(ch); err != nil {
				return nil, fmt.Errorf("channels: %w", err)
			}
			set[ch] = true
		}
	}
	for _, d := range q["device"] {
		ch := hub.DeviceChannel(d)
		if err := validChannel(ch); err != nil {
			return nil, fmt.Errorf("device: %w", err)
		}
		set[ch] = true
	}
	if len(set) > maxChannels {
		return nil, fmt.Errorf("channels: %d asked, want at most %d", len(set), maxChannels)
	}
	if len(set) == 0 {
		return nil, nil
	}
	return slices.Sorted(maps.Keys(set)), nil
}

// subscribe subscribes to channels, nil meaning all.
func (s *Server) subscribe(channels []string) *hub.Subscription {
	if channels == nil {
		return s.Feed.SubscribeAll(nil)
	}
	return s.Feed.Subscribe(nil, channels...)
}

// maxChannels bounds one stream's channel list.
const maxChannels = 64

// lastEventID reads the resume point: the Last-Event-ID header that
// EventSource sends on reconnect, or ?lastEventId= for a fresh page.
func lastEventID(r *http.Request, query string) (uint64, bool, error) {
	v := r.Header.Get("Last-Event-ID")
	if v == "" {
		v = r.URL.Query().Get(query)
	}
	if v == "" {
		return 0, false, nil
	}
	id, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return 0, false, fmt.Errorf("%s %q: want an event id", query, truncate(v, 40))
	}
	return id, true, nil
}

// handleSSE streams events: fleet, reading, status, alert; with an id on
// each, so a reconnect resumes exactly where it stopped.
//
// The stream takes over the connection and runs on its own goroutine, and
// this handler returns: net/http would otherwise keep its per-request
// state (two 4 KB buffers, its deep stack) for as long as the stream
// lives, which at 10k dashboards is most of the hub's memory. The body is
// delimited by the connection's close, as HTTP/1.1 allows.
func (s *Server) handleSSE(w http.ResponseWriter, r *http.Request) {
	channels, err := channelsOf(r.URL.Query())
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	since, resume, err := lastEventID(r, "lastEventId")
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if r.ProtoMajor != 1 {
		writeError(w, http.StatusHTTPVersionNotSupported, "event streams need HTTP/1.1")
		return
	}
	release, ok := s.admit(w, r, "sse")
	if !ok {
		return
	}
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		release()
		writeError(w, http.StatusInternalServerError, "take over the connection: "+err.Error())
		return
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		tc.SetWriteBuffer(streamSendBuffer) //nolint:errcheck // a larger buffer only delays the cut
	}
	_ = brw // a GET stream has no body to read; pipelined requests are not served
	st := &sseStream{s: s, conn: conn, remote: r.RemoteAddr, channels: channels}
	st.sub = s.subscribe(channels)
	st.first = st.opening(resume, since)
	if !s.sessions.Go(func() { defer release(); st.run() }) {
		release()
		s.Feed.Unsubscribe(st.sub)
		conn.Close()
	}
}

// sseHead is the response head of every stream.
const sseHead = "HTTP/1.1 200 OK\r\n" +
	"Content-Type: text/event-stream\r\n" +
	"Cache-Control: no-cache\r\n" +
	"X-Accel-Buffering: no\r\n" + // nginx: do not buffer this response
	"Connection: close\r\n\r\n"

// sseStream is one event stream on a connection it owns.
type sseStream struct {
	s        *Server
	conn     net.Conn
	remote   string
	channels []string // nil: all
	sub      *hub.Subscription
	first    []byte // head and opening events
}

// opening builds the response head and the first events: retry, a reset
// when the resume point is gone, and the fleet snapshot if followed. The
// subscription exists already, so nothing falls between them and live.
func (st *sseStream) opening(resume bool, since uint64) []byte {
	s := st.s
	b := []byte(sseHead)
	// retry: rides on the first event (a block of its own would read as an
	// empty event to some clients).
	b = append(b, "retry: "+strconv.Itoa(sseRetry)+"\n"...)
	wantsFleet := st.channels == nil || slices.Contains(st.channels, hub.ChannelFleet)
	body, _ := s.fleetJSON()
	switch {
	case resume:
		if s.Feed.Resume(st.sub, since, "") {
			b = fmt.Appendf(b, "event: reset\ndata: {\"id\":%d}\n\n", s.Feed.LastID())
		}
		if wantsFleet {
			// Snapshots are not kept for replay; the newest is all a
			// resuming client needs. Without an id, so EventSource keeps
			// its resume point while older events are replayed after it.
			b = append(b, "event: fleet\ndata: "...)
			b = append(append(b, body...), "\n\n"...)
		}
	case wantsFleet:
		b = append(b, "id: "...)
		b = strconv.AppendUint(b, s.Feed.LastID(), 10)
		b = append(b, "\nevent: fleet\ndata: "...)
		b = append(append(b, body...), "\n\n"...)
	default:
		b = append(b, ": live\n\n"...)
	}
	return b
}

// run writes the opening, then events as they come and a heartbeat when
// idle, until the client goes, falls too far behind, or the hub closes.
// A client that stops reading makes a write time out: it is cut.
func (st *sseStream) run() {
	s := st.s
	defer st.conn.Close()
	defer s.Feed.Unsubscribe(st.sub)
	s.sse.open.Add(1)
	s.sse.total.Add(1)
	defer s.sse.open.Add(-1)

	write := func(bufs net.Buffers) bool {
		st.conn.SetWriteDeadline(time.Now().Add(sseWriteTimeout)) //nolint:errcheck // a closed conn fails the write
		if _, err := bufs.WriteTo(st.conn); err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				s.sse.cut.Add(1)
				s.Logger.Warn("sse client cut", "remote", st.remote, "reason", "client stopped reading: a write waited "+sseWriteTimeout.String())
			}
			return false
		}
		return true
	}
	if !write(net.Buffers{st.first}) {
		return
	}
	st.first = nil
	beat := time.NewTicker(s.Heartbeat)
	defer beat.Stop()
	var batch net.Buffers
	var times []int64
	for {
		// Every pending event in one write: a client that fell behind
		// catches up in a few syscalls, not one per event.
		batch, times = batch[:0], times[:0]
		for len(batch) < sseBatch {
			ev := st.sub.Pop()
			if ev == nil {
				break
			}
			batch = append(batch, ev.SSE())
			times = append(times, ev.Time)
		}
		if len(batch) > 0 {
			if !write(batch) {
				return
			}
			now := time.Now()
			for _, t := range times {
				s.sse.delivery.record(t, now)
			}
			clear(batch)
			if st.sub.Pending() > 0 {
				continue
			}
		}
		select {
		case <-s.ctx.Done():
			return
		case <-st.sub.Done():
			s.sse.cut.Add(1)
			write(net.Buffers{[]byte("event: cut\ndata: {\"reason\":" + strconvQuote(st.sub.Reason()) + "}\n\n")})
			return
		case <-st.sub.Ready():
		case <-beat.C:
			// Also how a client that left is found: the write fails.
			if !write(net.Buffers{[]byte(": heartbeat\n\n")}) {
				return
			}
		}
	}
}

// sseBatch bounds the events of one write.
const sseBatch = 64
