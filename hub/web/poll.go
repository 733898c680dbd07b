package web

import (
	"encoding/json"
	"net/http"
	"time"
)

// Long-poll bounds.
const (
	DefaultPollTimeout = 25 * time.Second
	MaxPollTimeout     = 60 * time.Second
	maxPollEvents      = 1000
)

type pollEvent struct {
	ID      uint64          `json:"id"`
	Type    string          `json:"type"`
	Channel string          `json:"channel"`
	Data    json.RawMessage `json:"data"`
}

type pollResponse struct {
	Events []pollEvent `json:"events"`
	LastID uint64      `json:"last_id"`
	Reset  bool        `json:"reset,omitempty"`
	More   bool        `json:"more,omitempty"`
}

// handlePoll is GET /api/v1/poll?since=N&timeout=25s&channels=..: the
// events after since at once, or as soon as one arrives, or none when the
// timeout passes. Without since it returns the current last id to start
// from.
func (s *Server) handlePoll(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	channels, err := channelsOf(q)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	timeout := DefaultPollTimeout
	if v := q.Get("timeout"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 || d > MaxPollTimeout {
			writeError(w, http.StatusBadRequest, "timeout: want a duration from 0s to "+MaxPollTimeout.String()+", like 25s")
			return
		}
		timeout = d
	}
	since, resume, err := lastEventID(r, "since")
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if !resume {
		writeJSON(w, http.StatusOK, pollResponse{Events: []pollEvent{}, LastID: s.Feed.LastID()})
		return
	}
	release, ok := s.admit(w, r, "poll")
	if !ok {
		return
	}
	defer release()
	sub := s.subscribe(channels)
	defer s.Feed.Unsubscribe(sub)
	if s.Feed.Resume(sub, since, "") {
		writeJSON(w, http.StatusOK, pollResponse{Events: []pollEvent{}, LastID: s.Feed.LastID(), Reset: true})
		return
	}
	if sub.Pending() == 0 {
		t := time.NewTimer(timeout)
		defer t.Stop()
		select {
		case <-sub.Ready():
		case <-t.C:
		case <-r.Context().Done():
			return
		case <-s.ctx.Done():
		}
	}
	resp := pollResponse{Events: []pollEvent{}, LastID: since}
	for ev := sub.Pop(); ev != nil; ev = sub.Pop() {
		resp.Events = append(resp.Events, pollEvent{ID: ev.ID, Type: ev.Type, Channel: ev.Channel, Data: ev.Data})
		resp.LastID = ev.ID
		if len(resp.Events) == maxPollEvents {
			resp.More = sub.Pending() > 0
			break
		}
	}
	if len(resp.Events) == 0 {
		resp.LastID = max(since, s.Feed.LastID())
	}
	writeJSON(w, http.StatusOK, resp)
}

// statsView is GET /api/v1/stats: the live-delivery counters as JSON.
type statsView struct {
	Connections map[string]int `json:"connections"`
	Refused     struct {
		Total int64 `json:"hub_full"`
		PerIP int64 `json:"per_ip"`
	} `json:"refused"`
	Events struct {
		Published uint64 `json:"published"`
		Delivered uint64 `json:"delivered"`
		Coalesced uint64 `json:"coalesced"`
		Replayed  uint64 `json:"replayed"`
		Resets    uint64 `json:"resets"`
		LastID    uint64 `json:"last_id"`
	} `json:"events"`
	ClientsCut struct {
		WS  int64 `json:"ws"`
		SSE int64 `json:"sse"`
	} `json:"clients_cut"`
	Ring struct {
		Events int   `json:"events"`
		Bytes  int   `json:"bytes"`
		AgeMS  int64 `json:"age_ms"`
	} `json:"ring"`
}

func (s *Server) stats() statsView {
	var v statsView
	v.Connections, v.Refused.Total, v.Refused.PerIP = s.limits.connections()
	st := &s.Feed.Stats
	v.Events.Published, v.Events.Delivered, v.Events.Coalesced = st.Published.Load(), st.Delivered.Load(), st.Coalesced.Load()
	v.Events.Replayed, v.Events.Resets, v.Events.LastID = st.Replayed.Load(), st.Resets.Load(), s.Feed.LastID()
	v.ClientsCut.WS, v.ClientsCut.SSE = s.wsc.cut.Load(), s.sse.cut.Load()
	v.Ring.Events, v.Ring.Bytes, v.Ring.AgeMS = s.Feed.RingSpan(s.Now().UnixMilli())
	return v
}

func (s *Server) handleStats(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, s.stats())
}
