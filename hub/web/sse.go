package web

import (
	"net/http"
	"strconv"
	"sync/atomic"
	"time"
)

// sseWriteTimeout cuts a client that stops reading: its writes block once
// the kernel buffers fill, and the deadline turns that into an error.
const sseWriteTimeout = 10 * time.Second

type sseCounters struct {
	open, total, cut atomic.Int64
}

// handleSSE streams fleet, reading and status events. The first event is
// the current fleet snapshot, so a client paints at once.
func (s *Server) handleSSE(w http.ResponseWriter, r *http.Request) {
	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("Connection", "keep-alive")
	h.Set("X-Accel-Buffering", "no") // nginx: do not buffer this response

	// Subscribe before taking the snapshot, so nothing falls between them.
	sub := s.Feed.Subscribe(nil)
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

	body, _ := s.fleetJSON()
	first := make([]byte, 0, len(body)+64)
	first = append(first, "retry: 2000\n"...)
	first = append(first, "id: "...)
	first = strconv.AppendUint(first, s.Feed.LastID(), 10)
	first = append(first, "\nevent: fleet\ndata: "...)
	first = append(first, body...)
	first = append(first, "\n\n"...)
	w.WriteHeader(http.StatusOK)
	if !write(first) {
		return
	}

	beat := time.NewTicker(s.Heartbeat)
	defer beat.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-s.ctx.Done():
			// Shutdown does not cancel request contexts: without this an
			// open stream holds Close for its whole grace period.
			return
		case <-sub.Done():
			s.sse.cut.Add(1)
			write([]byte("event: error\ndata: {\"error\":" + strconvQuote(sub.Reason()) + "}\n\n"))
			return
		case ev := <-sub.C:
			if !write(ev.SSE) {
				return
			}
		case <-beat.C:
			if !write([]byte(": heartbeat\n\n")) {
				return
			}
		}
	}
}
