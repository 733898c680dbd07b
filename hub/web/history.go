package web

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/fleetwatch/fleetwatch/agent/telemetry"
	"github.com/fleetwatch/fleetwatch/hub"
)

// Default query windows.
const (
	DefaultHistoryWindow      = time.Hour
	DefaultCompletenessWindow = 24 * time.Hour
)

// The columns of a series' points: raw samples or bucket aggregates.
var (
	rawColumns    = []string{"ts", "value"}
	bucketColumns = []string{"ts", "avg", "min", "max"}
)

// seriesView is one metric's history in a several-metric response. Points
// holds []hub.Point ([ts,value]) when Step is 0 and []hub.Bucket
// ([ts,avg,min,max]) when Step > 0; Columns says which.
type seriesView struct {
	Metric     string    `json:"metric"`
	Resolution string    `json:"resolution"`
	Step       int64     `json:"step"`
	Columns    []string  `json:"columns"`
	Points     any       `json:"points"`
	Gaps       []hub.Gap `json:"gaps"`
}

// historyView is the one-metric response: the walking skeleton's shape,
// grown by the series fields.
type historyView struct {
	Device     string    `json:"device"`
	Metric     string    `json:"metric"`
	From       int64     `json:"from"`
	To         int64     `json:"to"`
	Resolution string    `json:"resolution"`
	Step       int64     `json:"step"`
	Columns    []string  `json:"columns"`
	Points     any       `json:"points"`
	Gaps       []hub.Gap `json:"gaps"`
}

// multiHistoryView is the several-metric response, series in the order asked.
type multiHistoryView struct {
	Device string       `json:"device"`
	From   int64        `json:"from"`
	To     int64        `json:"to"`
	Series []seriesView `json:"series"`
}

// handleHistory serves GET /api/v1/devices/{id}/history.
func (s *Server) handleHistory(w http.ResponseWriter, r *http.Request) {
	rec, ok := s.device(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	metrics, err := parseMetrics(q["metric"])
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	from, to, err := s.parseRange(q, DefaultHistoryWindow)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	points, err := parsePoints(q)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	hq := hub.HistoryQuery{Device: rec.ID, Metrics: metrics, From: from, To: to, Points: points, Interval: rec.Status.IntervalMS}
	series, err := s.History.History(hq)
	if err == nil && len(series) != len(metrics) {
		err = fmt.Errorf("store returned %d series for %d metrics", len(series), len(metrics))
	}
	var views []seriesView
	for i := 0; err == nil && i < len(series); i++ {
		if series[i].Metric != metrics[i] {
			err = fmt.Errorf("store returned series %q where %q was asked", series[i].Metric, metrics[i])
			break
		}
		views = append(views, viewOf(series[i]))
	}
	if err != nil {
		s.Logger.Error("history query", "device", rec.ID, "metrics", metrics, "from", from, "to", to, "err", err)
		writeError(w, http.StatusInternalServerError, "history query failed")
		return
	}
	var v any = multiHistoryView{Device: rec.ID, From: from, To: to, Series: views}
	if len(views) == 1 {
		sv := views[0]
		v = historyView{Device: rec.ID, Metric: sv.Metric, From: from, To: to,
			Resolution: sv.Resolution, Step: sv.Step, Columns: sv.Columns, Points: sv.Points, Gaps: sv.Gaps}
	}
	s.writeCachedJSON(w, r, v, "history", rec.ID)
}

// handleCompleteness serves GET /api/v1/devices/{id}/completeness.
func (s *Server) handleCompleteness(w http.ResponseWriter, r *http.Request) {
	rec, ok := s.device(w, r)
	if !ok {
		return
	}
	from, to, err := s.parseRange(r.URL.Query(), DefaultCompletenessWindow)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	c, err := s.History.Completeness(rec.ID, from, to)
	if err != nil {
		s.Logger.Error("completeness query", "device", rec.ID, "from", from, "to", to, "err", err)
		writeError(w, http.StatusInternalServerError, "completeness query failed")
		return
	}
	c.Device, c.From, c.To = rec.ID, from, to // the response describes the request
	if c.Gaps == nil {
		c.Gaps = []hub.GapRecord{}
	}
	s.writeCachedJSON(w, r, c, "completeness", rec.ID)
}

// viewOf shapes a series for JSON: points as [ts,value] pairs when raw, as
// [ts,avg,min,max] when bucketed, arrays never null.
func viewOf(sr hub.Series) seriesView {
	v := seriesView{Metric: sr.Metric, Resolution: sr.Resolution, Step: sr.Step, Gaps: sr.Gaps}
	if sr.Step > 0 {
		v.Columns = bucketColumns
		v.Points = bucketsJSON(sr.Buckets)
	} else {
		v.Step = 0
		v.Columns = rawColumns
		v.Points = pointsJSON(sr.Points)
	}
	if v.Gaps == nil {
		v.Gaps = []hub.Gap{}
	}
	return v
}

// pointsJSON and bucketsJSON append the arrays directly: a day of a series
// is 86,400 pairs, and encoding/json would call a MarshalJSON per element.
func pointsJSON(pts []hub.Point) json.RawMessage {
	b := make([]byte, 0, 2+len(pts)*24)
	b = append(b, '[')
	for i, p := range pts {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '[')
		b = strconv.AppendInt(b, p.TS, 10)
		b = append(b, ',')
		b = telemetry.AppendFloat(b, p.Value)
		b = append(b, ']')
	}
	return append(b, ']')
}

func bucketsJSON(bs []hub.Bucket) json.RawMessage {
	b := make([]byte, 0, 2+len(bs)*48)
	b = append(b, '[')
	for i, bk := range bs {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '[')
		b = strconv.AppendInt(b, bk.TS, 10)
		for _, v := range [3]float64{bk.Avg, bk.Min, bk.Max} {
			b = append(b, ',')
			b = telemetry.AppendFloat(b, v)
		}
		b = append(b, ']')
	}
	return append(b, ']')
}

// parseMetrics checks the metric parameters and drops repeats, keeping the
// order asked.
func parseMetrics(names []string) ([]string, error) {
	if len(names) == 0 {
		return nil, fmt.Errorf("metric: want at least one, e.g. metric=cpu.percent (repeat it for several, at most %d)", hub.MaxHistoryMetrics)
	}
	seen := make(map[string]bool, len(names))
	out := make([]string, 0, min(len(names), hub.MaxHistoryMetrics))
	for _, m := range names {
		if !telemetry.ValidMetricName(m) {
			return nil, fmt.Errorf("metric %q: want a metric name like cpu.percent", m)
		}
		if seen[m] {
			continue
		}
		seen[m] = true
		out = append(out, m)
	}
	if len(out) > hub.MaxHistoryMetrics {
		return nil, fmt.Errorf("metric: %d metrics asked, want at most %d", len(out), hub.MaxHistoryMetrics)
	}
	return out, nil
}

// parsePoints reads the points parameter: hub.DefaultHistoryPoints when
// absent, else an integer in [1, hub.MaxHistoryPoints].
func parsePoints(q url.Values) (int, error) {
	if !q.Has("points") {
		return hub.DefaultHistoryPoints, nil
	}
	n, err := strconv.Atoi(q.Get("points"))
	if err != nil || n < 1 || n > hub.MaxHistoryPoints {
		return 0, fmt.Errorf("points: want an integer from 1 to %d", hub.MaxHistoryPoints)
	}
	return n, nil
}

// parseRange reads from and to (see ParseTime); from defaults to window
// before now, to to now.
func (s *Server) parseRange(q url.Values, window time.Duration) (from, to int64, err error) {
	now := s.Now()
	if from, err = ParseTime(q.Get("from"), now, now.Add(-window)); err != nil {
		return 0, 0, fmt.Errorf("from: %w", err)
	}
	if to, err = ParseTime(q.Get("to"), now, now); err != nil {
		return 0, 0, fmt.Errorf("to: %w", err)
	}
	if from > to {
		return 0, 0, fmt.Errorf("from (%d) is after to (%d)", from, to)
	}
	return from, to, nil
}

// writeCachedJSON encodes v and serves it with an ETag. A value that does
// not encode (a non-finite number from the store) is a 500, logged.
func (s *Server) writeCachedJSON(w http.ResponseWriter, r *http.Request, v any, what, device string) {
	body, err := json.Marshal(v)
	if err != nil {
		s.Logger.Error(what+" response", "device", device, "err", err)
		writeError(w, http.StatusInternalServerError, what+" query failed")
		return
	}
	writeCached(w, r, body, etag(body))
}
