package web

import (
	"bytes"
	"fmt"
	"net/http"
	"sort"

	"github.com/fleetwatch/fleetwatch/agent/telemetry"
)

// handleMetrics writes the Prometheus text format by hand: a dozen counters
// do not justify the client library's dependency tree on a Pi.
func (s *Server) handleMetrics(w http.ResponseWriter, _ *http.Request) {
	var b bytes.Buffer
	metric := func(name, typ, help string, v float64) {
		fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s %s\n%s %g\n", name, help, name, typ, name, v)
	}
	st := s.Stats
	metric("fleetwatch_messages_total", "counter", "MQTT messages handled.", float64(st.Messages.Load()))
	metric("fleetwatch_readings_ingested_total", "counter", "Readings durably stored.", float64(st.Readings.Load()))
	metric("fleetwatch_readings_duplicate_total", "counter", "Redelivered readings skipped.", float64(st.Duplicates.Load()))
	metric("fleetwatch_readings_gap_total", "counter", "Readings settled as gaps (dropped by agents).", float64(st.Gaps.Load()))
	metric("fleetwatch_readings_dropped_total", "counter", "Readings acked but not stored: older than the raw retention or too far in the future.", float64(st.Dropped.Load()))
	metric("fleetwatch_commits_total", "counter", "Store commits.", float64(st.Commits.Load()))
	metric("fleetwatch_commit_errors_total", "counter", "Failed store commits (retried).", float64(st.CommitErrs.Load()))
	metric("fleetwatch_ingest_queue", "gauge", "Messages waiting for a commit.", float64(st.Queued.Load()))

	fmt.Fprintf(&b, "# HELP fleetwatch_messages_rejected_total Messages rejected, by reason.\n# TYPE fleetwatch_messages_rejected_total counter\n")
	reasons := append([]string(nil), telemetry.Reasons...)
	sort.Strings(reasons)
	for _, r := range reasons {
		fmt.Fprintf(&b, "fleetwatch_messages_rejected_total{reason=%q} %d\n", r, st.Rejected(r))
	}

	snap := s.Registry.Snapshot(s.Now().UnixMilli())
	fmt.Fprintf(&b, "# HELP fleetwatch_devices Devices by state.\n# TYPE fleetwatch_devices gauge\n")
	fmt.Fprintf(&b, "fleetwatch_devices{state=\"online\"} %d\nfleetwatch_devices{state=\"stale\"} %d\nfleetwatch_devices{state=\"offline\"} %d\n",
		snap.Summary.Online, snap.Summary.Stale, snap.Summary.Offline)

	st2 := s.stats()
	fmt.Fprintf(&b, "# HELP fleetwatch_connections Open live connections by transport.\n# TYPE fleetwatch_connections gauge\n")
	for _, tr := range []string{"ws", "sse", "poll"} {
		fmt.Fprintf(&b, "fleetwatch_connections{transport=%q} %d\n", tr, st2.Connections[tr])
	}
	fmt.Fprintf(&b, "# HELP fleetwatch_connections_refused_total Live connections refused by the limits.\n# TYPE fleetwatch_connections_refused_total counter\n")
	fmt.Fprintf(&b, "fleetwatch_connections_refused_total{limit=\"total\"} %d\nfleetwatch_connections_refused_total{limit=\"per_ip\"} %d\n", st2.Refused.Total, st2.Refused.PerIP)
	fmt.Fprintf(&b, "# HELP fleetwatch_clients_cut_total Live clients disconnected for falling behind.\n# TYPE fleetwatch_clients_cut_total counter\n")
	fmt.Fprintf(&b, "fleetwatch_clients_cut_total{transport=\"ws\"} %d\nfleetwatch_clients_cut_total{transport=\"sse\"} %d\n", st2.ClientsCut.WS, st2.ClientsCut.SSE)
	metric("fleetwatch_ws_bad_messages_total", "counter", "Malformed WebSocket client messages.", float64(s.wsc.bad.Load()))
	metric("fleetwatch_events_total", "counter", "Live events published.", float64(st2.Events.Published))
	metric("fleetwatch_events_delivered_total", "counter", "Live events queued to clients.", float64(st2.Events.Delivered))
	metric("fleetwatch_events_coalesced_total", "counter", "Pending events replaced by a newer one for a lagging client.", float64(st2.Events.Coalesced))
	metric("fleetwatch_events_replayed_total", "counter", "Events replayed to resuming clients.", float64(st2.Events.Replayed))
	metric("fleetwatch_resume_resets_total", "counter", "Resumes from an event the ring no longer holds.", float64(st2.Events.Resets))
	fmt.Fprintf(&b, "# HELP fleetwatch_live_delivery_seconds Live events from publish to the client's socket (WebSocket: written; SSE: written).\n# TYPE fleetwatch_live_delivery_seconds histogram\n")
	s.wsc.delivery.write(&b, "ws")
	s.sse.delivery.write(&b, "sse")
	metric("fleetwatch_event_ring_events", "gauge", "Events kept for resume.", float64(st2.Ring.Events))
	metric("fleetwatch_event_ring_seconds", "gauge", "Age of the oldest event kept for resume.", float64(st2.Ring.AgeMS)/1000)
	if s.Gauges != nil {
		for _, g := range s.Gauges() {
			metric(g.Name, g.Type, g.Help, g.Value)
		}
	}
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	w.Write(b.Bytes()) //nolint:errcheck // the scraper went away
}
