package web

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/fleetwatch/fleetwatch/agent/telemetry"
	"github.com/fleetwatch/fleetwatch/hub"
)

// AlertSource is the hub's alerter: what fires now, and acks.
type AlertSource interface {
	Firing() []hub.Alert
	Ack(ctx context.Context, id string) (hub.Alert, error)
}

// Records is the part of the store that keeps alerts and device timelines.
type Records interface {
	Alerts(q hub.AlertQuery) ([]hub.Alert, error)
	DeviceEvents(device string, from, to int64, limit int) ([]hub.DeviceEvent, error)
}

// Listing bounds.
const (
	defaultListLimit = 100
	maxListLimit     = 1000
)

func listLimit(v string) (int, error) {
	if v == "" {
		return defaultListLimit, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > maxListLimit {
		return 0, fmt.Errorf("limit %q: want 1 to %d", truncate(v, 20), maxListLimit)
	}
	return n, nil
}

type alertsView struct {
	Alerts []hub.Alert `json:"alerts"`
}

// handleAlerts is GET /api/v1/alerts?state=firing|resolved|all&device=&limit=:
// firing alerts from the alerter (current to the second), the rest from
// the store, newest first.
func (s *Server) handleAlerts(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit, err := listLimit(q.Get("limit"))
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	device := q.Get("device")
	if device != "" {
		if err := telemetry.ValidateDeviceID(device); err != nil {
			writeError(w, http.StatusBadRequest, "device: "+err.Error())
			return
		}
	}
	state := q.Get("state")
	switch state {
	case hub.AlertFiring, hub.AlertResolved:
	case "", "all":
		state = ""
	default:
		writeError(w, http.StatusBadRequest, "state "+strconvQuote(state)+": want firing, resolved or all")
		return
	}
	if s.Alerts == nil || s.Records == nil {
		writeError(w, http.StatusServiceUnavailable, "alerting is not running")
		return
	}
	var out []hub.Alert
	if state == hub.AlertFiring {
		out = []hub.Alert{}
		for _, a := range s.Alerts.Firing() {
			if (device == "" || a.Device == device) && len(out) < limit {
				out = append(out, a)
			}
		}
	} else {
		out, err = s.Records.Alerts(hub.AlertQuery{State: state, Device: device, Limit: limit})
		if err != nil {
			s.Logger.Error("list alerts", "err", err)
			writeError(w, http.StatusInternalServerError, "list alerts: "+err.Error())
			return
		}
	}
	writeJSON(w, http.StatusOK, alertsView{Alerts: out})
}

// handleAck is POST /api/v1/alerts/{id}/ack.
func (s *Server) handleAck(w http.ResponseWriter, r *http.Request) {
	if !s.checkOrigin(r) {
		writeError(w, http.StatusForbidden, "origin not allowed: acknowledge from the hub's own dashboard, or add the origin to allowed_origins")
		return
	}
	id := r.PathValue("id")
	if !validAlertID(id) {
		writeError(w, http.StatusBadRequest, "alert id "+strconvQuote(id)+": want 16 hex digits")
		return
	}
	if s.Alerts == nil {
		writeError(w, http.StatusServiceUnavailable, "alerting is not running")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	a, err := s.Alerts.Ack(ctx, id)
	switch {
	case err == nil:
		writeJSON(w, http.StatusOK, a)
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		writeError(w, http.StatusServiceUnavailable, "acknowledge: "+err.Error())
	default:
		// Not firing: resolved already, or unknown.
		if s.Records != nil {
			if past, lerr := s.Records.Alerts(hub.AlertQuery{ID: id}); lerr == nil && len(past) == 1 {
				writeError(w, http.StatusConflict, "alert "+id+" is "+past[0].State+": only a firing alert can be acknowledged")
				return
			}
		}
		writeError(w, http.StatusNotFound, "no firing alert "+id)
	}
}

func validAlertID(id string) bool {
	if len(id) != 16 {
		return false
	}
	for _, c := range id {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

type eventsView struct {
	Device string            `json:"device"`
	From   int64             `json:"from"`
	To     int64             `json:"to"`
	Events []hub.DeviceEvent `json:"events"`
}

// handleDeviceEvents is GET /api/v1/devices/{id}/events?from&to&limit: the
// device's timeline (state changes, reboots), newest first. Default: the
// last 7 days.
func (s *Server) handleDeviceEvents(w http.ResponseWriter, r *http.Request) {
	rec, ok := s.device(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	now := s.Now()
	from, err := ParseTime(q.Get("from"), now, now.Add(-7*24*time.Hour))
	if err != nil {
		writeError(w, http.StatusBadRequest, "from: "+err.Error())
		return
	}
	to, err := ParseTime(q.Get("to"), now, now)
	if err != nil {
		writeError(w, http.StatusBadRequest, "to: "+err.Error())
		return
	}
	if to < from {
		writeError(w, http.StatusBadRequest, "to is before from")
		return
	}
	limit, err := listLimit(q.Get("limit"))
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if s.Records == nil {
		writeError(w, http.StatusServiceUnavailable, "device timelines are not kept")
		return
	}
	evs, err := s.Records.DeviceEvents(rec.ID, from, to, limit)
	if err != nil {
		s.Logger.Error("device events", "device", rec.ID, "err", err)
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, eventsView{Device: rec.ID, From: from, To: to, Events: evs})
}
