package web

import (
	"context"
	"fmt"
	"net"
	"net/http"
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
}

type connKey struct{}

// withConn keeps the connection in the request context, so a stream can
// shrink its socket's send buffer (a stalled client shows in seconds).
func withConn(ctx context.Context, c net.Conn) context.Context {
	return context.WithValue(ctx, connKey{}, c)
}

func shrinkSendBuffer(r *http.Request) {
	if tc, ok := r.Context().Value(connKey{}).(*net.TCPConn); ok {
		tc.SetWriteBuffer(wsSendBuffer) //nolint:errcheck // a larger buffer only delays the cut
	}
}

// channelFilter parses ?channels=fleet,alerts,device:<id> and ?device=<id>
// into a filter; neither means every channel.
func channelFilter(q map[string][]string) (func(*hub.Event) bool, map[string]bool, error) {
	set := map[string]bool{}
	for _, v := range q["channels"] {
		for _, ch := range strings.Split(v, ",") {
			if ch = strings.TrimSpace(ch); ch == "" {
				continue
			}
			if err := validChannel(ch); err != nil {
				return nil, nil, fmt.Errorf("channels: %w", err)
			}
			set[ch] = true
		}
	}
	for _, d := range q["device"] {
		ch := hub.DeviceChannel(d)
		if err := validChannel(ch); err != nil {
			return nil, nil, fmt.Errorf("device: %w", err)
		}
		set[ch] = true
	}
	if len(set) > maxChannels {
		return nil, nil, fmt.Errorf("channels: %d asked, want at most %d", len(set), maxChannels)
	}
	if len(set) == 0 {
		return nil, nil, nil
	}
	return func(ev *hub.Event) bool { return set[ev.Channel] }, set, nil
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
func (s *Server) handleSSE(w http.ResponseWriter, r *http.Request) {
	filter, set, err := channelFilter(r.URL.Query())
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	since, resume, err := lastEventID(r, "lastEventId")
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	release, ok := s.admit(w, r, "sse")
	if !ok {
		return
	}
	defer release()
	shrinkSendBuffer(r)
	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("Connection", "keep-alive")
	h.Set("X-Accel-Buffering", "no") // nginx: do not buffer this response

	sub := s.Feed.Subscribe(filter, nil)
	defer s.Feed.Unsubscribe(sub)
	s.sse.open.Add(1)
	s.sse.total.Add(1)
	defer s.sse.open.Add(-1)

	write := func(b []byte) bool {
		rc.SetWriteDeadline(time.Now().Add(sseWriteTimeout)) //nolint:errcheck // unsupported only on exotic writers
		if _, err := w.Write(b); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	wantsFleet := set == nil || set[hub.ChannelFleet]
	fleetEvent := func() []byte {
		body, _ := s.fleetJSON()
		b := make([]byte, 0, len(body)+64)
		b = append(b, "id: "...)
		b = strconv.AppendUint(b, s.Feed.LastID(), 10)
		b = append(b, "\nevent: fleet\ndata: "...)
		b = append(b, body...)
		return append(b, "\n\n"...)
	}

	w.WriteHeader(http.StatusOK)
	// retry: rides on the first event (a block of its own would read as an
	// empty event to some clients).
	first := []byte("retry: " + strconv.Itoa(sseRetry) + "\n")
	switch {
	case resume:
		if s.Feed.Resume(sub, since, nil, nil) {
			first = fmt.Appendf(first, "event: reset\ndata: {\"id\":%d}\n\n", s.Feed.LastID())
		}
		if wantsFleet {
			// Snapshots are not kept for replay; the newest is all a
			// resuming client needs. Without an id, so EventSource keeps
			// its resume point while older events are replayed after it.
			body, _ := s.fleetJSON()
			first = append(first, "event: fleet\ndata: "...)
			first = append(append(first, body...), "\n\n"...)
		}
	case wantsFleet:
		// Subscribed first, snapshot second: nothing falls between them.
		first = append(first, fleetEvent()...)
	default:
		first = append(first, ": live\n\n"...)
	}
	if !write(first) {
		return
	}

	beat := time.NewTicker(s.Heartbeat)
	defer beat.Stop()
	for {
		for ev := sub.Pop(); ev != nil; ev = sub.Pop() {
			if !write(ev.SSE()) {
				return
			}
		}
		select {
		case <-r.Context().Done():
			return
		case <-s.ctx.Done():
			// Shutdown does not cancel request contexts: without this an
			// open stream holds Close for its whole grace period.
			return
		case <-sub.Done():
			s.sse.cut.Add(1)
			write([]byte("event: cut\ndata: {\"reason\":" + strconvQuote(sub.Reason()) + "}\n\n"))
			return
		case <-sub.Ready():
		case <-beat.C:
			if !write([]byte(": heartbeat\n\n")) {
				return
			}
		}
	}
}
