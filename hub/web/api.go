package web

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/fleetwatch/fleetwatch/agent/telemetry"
	"github.com/fleetwatch/fleetwatch/hub"
	"github.com/fleetwatch/fleetwatch/hub/fleet"
)

func (s *Server) handleFleet(w http.ResponseWriter, r *http.Request) {
	body, tag := s.fleetJSON()
	writeCached(w, r, body, tag)
}

// fleetJSON encodes the current snapshot once per version.
func (s *Server) fleetJSON() ([]byte, string) {
	snap := s.Registry.Snapshot(s.Now().UnixMilli())
	s.fleetMu.Lock()
	defer s.fleetMu.Unlock()
	if s.fleetSnap != any(snap) {
		body, _ := json.Marshal(snap) // finite numbers only: validated on ingest
		s.fleetSnap, s.fleetBody, s.fleetTag = snap, body, etag(body)
	}
	return s.fleetBody, s.fleetTag
}

// deviceView is GET /api/v1/devices/{id}: status fields and latest metrics.
type deviceView struct {
	ID       string `json:"id"`
	State    string `json:"state"`
	Reason   string `json:"reason,omitempty"`
	LastSeen int64  `json:"last_seen"`
	Boot     string `json:"boot,omitempty"`
	Seq      uint64 `json:"seq,omitempty"`

	AgentVersion string `json:"agent_version,omitempty"`
	Hostname     string `json:"hostname,omitempty"`
	OS           string `json:"os,omitempty"`
	Platform     string `json:"platform,omitempty"`
	Arch         string `json:"arch,omitempty"`
	Model        string `json:"model,omitempty"`
	IntervalMS   int64  `json:"interval_ms,omitempty"`
	Started      int64  `json:"started,omitempty"`
	HostBoot     int64  `json:"host_boot,omitempty"`

	Tags    map[string]string `json:"tags"`
	Metrics telemetry.Metrics `json:"metrics"`
}

func (s *Server) handleDevice(w http.ResponseWriter, r *http.Request) {
	rec, ok := s.device(w, r)
	if !ok {
		return
	}
	state, reason := hub.StateOf(&rec, s.Now().UnixMilli())
	st := rec.Status
	v := deviceView{
		ID: rec.ID, State: state, Reason: reason, LastSeen: rec.LastSeen, Boot: rec.Boot, Seq: rec.Seq,
		AgentVersion: st.AgentVersion, Hostname: st.Hostname, OS: st.OS, Platform: st.Platform,
		Arch: st.Arch, Model: st.Model, IntervalMS: st.IntervalMS, Started: st.Started, HostBoot: st.HostBoot,
		Tags: rec.Tags, Metrics: rec.Metrics,
	}
	if v.Tags == nil {
		v.Tags = map[string]string{}
	}
	if v.Metrics == nil {
		v.Metrics = telemetry.Metrics{}
	}
	body, _ := json.Marshal(v)
	writeCached(w, r, body, etag(body))
}

func (s *Server) device(w http.ResponseWriter, r *http.Request) (hub.DeviceRecord, bool) {
	id := r.PathValue("id")
	if err := telemetry.ValidateDeviceID(id); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return hub.DeviceRecord{}, false
	}
	rec, ok := s.Registry.Device(id)
	if !ok {
		writeError(w, http.StatusNotFound, fmt.Sprintf("device %q not found", id))
		return hub.DeviceRecord{}, false
	}
	return rec, true
}

// ParseTime reads a query time: Unix ms, RFC 3339, "now", or a duration
// relative to now such as "-1h" or "-15m". Empty gives def.
func ParseTime(v string, now, def time.Time) (int64, error) {
	switch {
	case v == "":
		return def.UnixMilli(), nil
	case v == "now":
		return now.UnixMilli(), nil
	case strings.HasPrefix(v, "-") || strings.HasPrefix(v, "+"):
		if d, err := time.ParseDuration(v); err == nil {
			return now.Add(d).UnixMilli(), nil
		}
	}
	if ms, err := strconv.ParseInt(v, 10, 64); err == nil {
		if ms < 0 || ms > telemetry.MaxTimestamp {
			return 0, fmt.Errorf("%d is out of range", ms)
		}
		return ms, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t.UnixMilli(), nil
	}
	return 0, fmt.Errorf("%q is not Unix ms, RFC 3339, now, or a relative duration like -1h", v)
}

func (s *Server) handleHealth(w http.ResponseWriter, _ *http.Request) {
	if err := s.Ready(); err != nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "error": err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// etag is a strong validator: a hash of the exact bytes served.
func etag(body []byte) string {
	sum := sha256.Sum256(body)
	return `"` + hex.EncodeToString(sum[:16]) + `"`
}

func writeCached(w http.ResponseWriter, r *http.Request, body []byte, tag string) {
	h := w.Header()
	h.Set("ETag", tag)
	h.Set("Cache-Control", "no-cache")
	if match := r.Header.Get("If-None-Match"); match != "" && etagMatch(match, tag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.Write(body) //nolint:errcheck // the client went away
}

func etagMatch(header, tag string) bool {
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimSpace(t)
		if t == tag || t == "*" {
			return true
		}
	}
	return false
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	body, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(body) //nolint:errcheck // the client went away
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}

// maxTop bounds ?top= of the summary.
const maxTop = 50

// handleSummary is GET /api/v1/fleet/summary?group=<tag>&top=N: counts by
// state and, over the online devices, every metric's avg, min, max, p50,
// p95 and top N; with group, one such summary per value of that tag.
func (s *Server) handleSummary(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	top := fleet.DefaultTopN
	if v := q.Get("top"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > maxTop {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("top %q: want 0 to %d", truncate(v, 20), maxTop))
			return
		}
		top = n
	}
	now := s.Now().UnixMilli()
	group := q.Get("group")
	if group == "" {
		writeJSON(w, http.StatusOK, struct {
			TS      int64         `json:"ts"`
			Summary fleet.Summary `json:"summary"`
		}{now, s.Registry.Summary(now, top)})
		return
	}
	if !validTagKey(group) {
		writeError(w, http.StatusBadRequest, "group "+strconvQuote(group)+": want a tag key like site ([a-z0-9_], at most 64 bytes)")
		return
	}
	writeJSON(w, http.StatusOK, struct {
		TS     int64                    `json:"ts"`
		Group  string                   `json:"group"`
		Groups map[string]fleet.Summary `json:"groups"`
	}{now, group, s.Registry.SummaryBy(now, group, top)})
}

func validTagKey(k string) bool {
	if k == "" || len(k) > telemetry.MaxTagKey {
		return false
	}
	for _, c := range k {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '_' {
			return false
		}
	}
	return true
}
