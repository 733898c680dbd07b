package web_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/fleetwatch/fleetwatch/hub"
	"github.com/fleetwatch/fleetwatch/hub/web"
)

// fakeHistory is a web.History whose answers the test chooses.
type fakeHistory struct {
	HistoryFunc      func(q hub.HistoryQuery) ([]hub.Series, error)
	CompletenessFunc func(device string, from, to int64) (hub.Completeness, error)
}

func (h *fakeHistory) History(q hub.HistoryQuery) ([]hub.Series, error) { return h.HistoryFunc(q) }
func (h *fakeHistory) Completeness(device string, from, to int64) (hub.Completeness, error) {
	return h.CompletenessFunc(device, from, to)
}

// calls records what the fake store was asked, across goroutines.
type calls[T any] struct {
	mu  sync.Mutex
	got []T
}

func (c *calls[T]) add(v T) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.got = append(c.got, v)
}

// take returns the calls so far and forgets them.
func (c *calls[T]) take() []T {
	c.mu.Lock()
	defer c.mu.Unlock()
	got := c.got
	c.got = nil
	return got
}

// errorLog counts the records logged at error level.
type errorLog struct {
	mu   sync.Mutex
	msgs []string
}

func (l *errorLog) Enabled(context.Context, slog.Level) bool { return true }
func (l *errorLog) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *errorLog) WithGroup(string) slog.Handler            { return l }
func (l *errorLog) Handle(_ context.Context, r slog.Record) error {
	if r.Level >= slog.LevelError {
		l.mu.Lock()
		l.msgs = append(l.msgs, r.Message)
		l.mu.Unlock()
	}
	return nil
}

func (l *errorLog) take() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	msgs := l.msgs
	l.msgs = nil
	return msgs
}

// newFakeFixture is the fixture with h answering the API's reads and pi-a
// known to the registry (online, reporting every 10 s).
func newFakeFixture(t *testing.T, h *fakeHistory) (*fixture, *errorLog) {
	t.Helper()
	log := &errorLog{}
	f := newFixture(t, func(s *web.Server) { s.History = h; s.Logger = slog.New(log) })
	f.status(t, "pi-a", online())
	return f, log
}

// wantErrorMessage checks an error response and that its message has want.
func wantErrorMessage(t *testing.T, resp *http.Response, body []byte, status int, want string) {
	t.Helper()
	wantJSONError(t, resp, body, status)
	if !strings.Contains(string(body), want) {
		t.Errorf("error body %s: want it to say %q", body, want)
	}
}

// rawSeries answers every metric asked with an empty raw series.
func rawSeries(q hub.HistoryQuery) []hub.Series {
	out := make([]hub.Series, len(q.Metrics))
	for i, m := range q.Metrics {
		out[i] = hub.Series{Metric: m, Resolution: hub.ResolutionRaw}
	}
	return out
}

func TestServer_historyQuery(t *testing.T) {
	var got calls[hub.HistoryQuery]
	f, _ := newFakeFixture(t, &fakeHistory{HistoryFunc: func(q hub.HistoryQuery) ([]hub.Series, error) {
		got.add(q)
		return rawSeries(q), nil
	}})
	now := f.now.Load()
	hourAgo := now - 3_600_000
	metrics := func(n int) (names []string, query string) {
		v := url.Values{}
		for i := range n {
			names = append(names, fmt.Sprintf("m.m%02d", i))
			v.Add("metric", names[i])
		}
		return names, v.Encode()
	}
	max32, max32Query := metrics(hub.MaxHistoryMetrics)
	_, over32Query := metrics(hub.MaxHistoryMetrics + 1)
	query := func(metrics []string, from, to int64, points int) hub.HistoryQuery {
		return hub.HistoryQuery{Device: "pi-a", Metrics: metrics, From: from, To: to, Points: points, Interval: online().IntervalMS}
	}

	tests := []struct {
		name, query string
		want        hub.HistoryQuery
	}{
		{"defaults", "metric=cpu.percent", query([]string{"cpu.percent"}, hourAgo, now, hub.DefaultHistoryPoints)},
		{"window", fmt.Sprintf("metric=cpu.percent&from=%d&to=%d", tsOf(2), tsOf(4)), query([]string{"cpu.percent"}, tsOf(2), tsOf(4), hub.DefaultHistoryPoints)},
		{"from equals to", fmt.Sprintf("metric=cpu.percent&from=%d&to=%d", tsOf(2), tsOf(2)), query([]string{"cpu.percent"}, tsOf(2), tsOf(2), hub.DefaultHistoryPoints)},
		{"relative", "metric=cpu.percent&from=-15m&to=-1m", query([]string{"cpu.percent"}, now-900_000, now-60_000, hub.DefaultHistoryPoints)},
		{"several in the order asked", "metric=mem.percent&metric=cpu.percent", query([]string{"mem.percent", "cpu.percent"}, hourAgo, now, hub.DefaultHistoryPoints)},
		{"repeats dropped", "metric=mem.percent&metric=cpu.percent&metric=mem.percent&metric=cpu.percent", query([]string{"mem.percent", "cpu.percent"}, hourAgo, now, hub.DefaultHistoryPoints)},
		{"most metrics", max32Query, query(max32, hourAgo, now, hub.DefaultHistoryPoints)},
		{"most metrics and repeats", max32Query + "&metric=m.m00", query(max32, hourAgo, now, hub.DefaultHistoryPoints)},
		{"fewest points", "metric=cpu.percent&points=1", query([]string{"cpu.percent"}, hourAgo, now, 1)},
		{"most points", "metric=cpu.percent&points=100000", query([]string{"cpu.percent"}, hourAgo, now, hub.MaxHistoryPoints)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := f.get(t, "/api/v1/devices/pi-a/history?"+tt.query)
			wantStatus(t, resp, body, http.StatusOK)
			calls := got.take()
			if len(calls) != 1 {
				t.Fatalf("store asked %d times, want once: %+v", len(calls), calls)
			}
			if !reflect.DeepEqual(calls[0], tt.want) {
				t.Errorf("store asked %+v, want %+v", calls[0], tt.want)
			}
		})
	}

	const pointsMsg = "points: want an integer from 1 to 100000"
	bad := []struct {
		name, path string
		status     int
		msg        string
	}{
		{"no metric", "pi-a/history", http.StatusBadRequest, "metric: want at least one"},
		{"no metric but points", "pi-a/history?points=10", http.StatusBadRequest, "metric: want at least one"},
		{"bad metric", "pi-a/history?metric=CPU%25", http.StatusBadRequest, `metric \"CPU%\": want a metric name`},
		{"empty metric", "pi-a/history?metric=", http.StatusBadRequest, `metric \"\": want a metric name`},
		{"one bad metric of several", "pi-a/history?metric=cpu.percent&metric=.x", http.StatusBadRequest, `metric \".x\"`},
		{"too many metrics", "pi-a/history?" + over32Query, http.StatusBadRequest, "metric: 33 metrics asked, want at most 32"},
		{"points 0", "pi-a/history?metric=cpu.percent&points=0", http.StatusBadRequest, pointsMsg},
		{"points 100001", "pi-a/history?metric=cpu.percent&points=100001", http.StatusBadRequest, pointsMsg},
		{"points abc", "pi-a/history?metric=cpu.percent&points=abc", http.StatusBadRequest, pointsMsg},
		{"points empty", "pi-a/history?metric=cpu.percent&points=", http.StatusBadRequest, pointsMsg},
		{"points negative", "pi-a/history?metric=cpu.percent&points=-5", http.StatusBadRequest, pointsMsg},
		{"points fraction", "pi-a/history?metric=cpu.percent&points=1.5", http.StatusBadRequest, pointsMsg},
		{"bad from", "pi-a/history?metric=cpu.percent&from=yesterday", http.StatusBadRequest, `from: \"yesterday\" is not Unix ms`},
		{"bad to", "pi-a/history?metric=cpu.percent&to=-1x", http.StatusBadRequest, "to: "},
		{"from after to", fmt.Sprintf("pi-a/history?metric=cpu.percent&from=%d&to=%d", tsOf(5), tsOf(1)), http.StatusBadRequest, "is after to"},
		{"default from after to", "pi-a/history?metric=cpu.percent&to=-2h", http.StatusBadRequest, "is after to"},
		{"unknown device", "pi-zz/history?metric=cpu.percent", http.StatusNotFound, `device \"pi-zz\" not found`},
		{"bad device", "-pi/history?metric=cpu.percent", http.StatusBadRequest, "error"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := f.get(t, "/api/v1/devices/"+tt.path)
			wantErrorMessage(t, resp, body, tt.status, tt.msg)
			if calls := got.take(); len(calls) != 0 {
				t.Errorf("store asked %+v for a bad request", calls)
			}
		})
	}
}

func TestServer_historyShape(t *testing.T) {
	canned := map[string]hub.Series{
		"cpu.percent": {Metric: "cpu.percent", Resolution: hub.ResolutionRaw,
			Points: []hub.Point{{TS: tsOf(1), Value: 1.5}, {TS: tsOf(2), Value: 2}},
			Gaps:   []hub.Gap{{From: tsOf(2), To: tsOf(5)}}},
		"mem.percent": {Metric: "mem.percent", Resolution: hub.Resolution1m, Step: 60_000,
			Buckets: []hub.Bucket{{TS: t0, Avg: 2.5, Min: 1, Max: 4, Count: 4}, {TS: t0 + 120_000, Avg: 0.25, Min: 0, Max: 0.5, Count: 2}},
			Gaps:    []hub.Gap{{From: t0 + 60_000, To: t0 + 120_000}}},
		"empty.raw":     {Metric: "empty.raw", Resolution: hub.ResolutionRaw},
		"empty.buckets": {Metric: "empty.buckets", Resolution: hub.Resolution1h, Step: 3_600_000},
	}
	f, _ := newFakeFixture(t, &fakeHistory{HistoryFunc: func(q hub.HistoryQuery) ([]hub.Series, error) {
		out := make([]hub.Series, len(q.Metrics))
		for i, m := range q.Metrics {
			out[i] = canned[m]
		}
		return out, nil
	}})
	window := fmt.Sprintf("&from=%d&to=%d", t0, tsOf(300))

	tests := []struct {
		name, query, want string
	}{
		{"one metric raw", "metric=cpu.percent",
			`{"device":"pi-a","metric":"cpu.percent","from":1764368400000,"to":1764368700000,"resolution":"raw","step":0,"columns":["ts","value"],` +
				`"points":[[1764368401000,1.5],[1764368402000,2]],"gaps":[{"from":1764368402000,"to":1764368405000}]}`},
		{"one metric buckets", "metric=mem.percent",
			`{"device":"pi-a","metric":"mem.percent","from":1764368400000,"to":1764368700000,"resolution":"1m","step":60000,"columns":["ts","avg","min","max"],` +
				`"points":[[1764368400000,2.5,1,4],[1764368520000,0.25,0,0.5]],"gaps":[{"from":1764368460000,"to":1764368520000}]}`},
		{"one metric raw, nothing stored", "metric=empty.raw",
			`{"device":"pi-a","metric":"empty.raw","from":1764368400000,"to":1764368700000,"resolution":"raw","step":0,"columns":["ts","value"],"points":[],"gaps":[]}`},
		{"one metric buckets, nothing stored", "metric=empty.buckets",
			`{"device":"pi-a","metric":"empty.buckets","from":1764368400000,"to":1764368700000,"resolution":"1h","step":3600000,"columns":["ts","avg","min","max"],"points":[],"gaps":[]}`},
		{"one metric asked twice", "metric=cpu.percent&metric=cpu.percent",
			`{"device":"pi-a","metric":"cpu.percent","from":1764368400000,"to":1764368700000,"resolution":"raw","step":0,"columns":["ts","value"],` +
				`"points":[[1764368401000,1.5],[1764368402000,2]],"gaps":[{"from":1764368402000,"to":1764368405000}]}`},
		{"two metrics", "metric=mem.percent&metric=cpu.percent",
			`{"device":"pi-a","from":1764368400000,"to":1764368700000,"series":[` +
				`{"metric":"mem.percent","resolution":"1m","step":60000,"columns":["ts","avg","min","max"],` +
				`"points":[[1764368400000,2.5,1,4],[1764368520000,0.25,0,0.5]],"gaps":[{"from":1764368460000,"to":1764368520000}]},` +
				`{"metric":"cpu.percent","resolution":"raw","step":0,"columns":["ts","value"],` +
				`"points":[[1764368401000,1.5],[1764368402000,2]],"gaps":[{"from":1764368402000,"to":1764368405000}]}]}`},
		{"two metrics, nothing stored", "metric=empty.raw&metric=empty.buckets",
			`{"device":"pi-a","from":1764368400000,"to":1764368700000,"series":[` +
				`{"metric":"empty.raw","resolution":"raw","step":0,"columns":["ts","value"],"points":[],"gaps":[]},` +
				`{"metric":"empty.buckets","resolution":"1h","step":3600000,"columns":["ts","avg","min","max"],"points":[],"gaps":[]}]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := "/api/v1/devices/pi-a/history?" + tt.query + window
			resp, body := f.get(t, path)
			wantStatus(t, resp, body, http.StatusOK)
			if got := string(body); got != tt.want {
				t.Errorf("body:\n got %s\nwant %s", got, tt.want)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type = %q, want application/json", ct)
			}
			tag := resp.Header.Get("ETag")
			if len(tag) < 3 || tag[0] != '"' {
				t.Fatalf("ETag = %q, want a strong validator", tag)
			}
			resp, body = f.get(t, path, "If-None-Match", tag)
			wantStatus(t, resp, body, http.StatusNotModified)
			if len(body) != 0 {
				t.Errorf("304 with a body: %s", body)
			}
			resp, body = f.get(t, path, "If-None-Match", `"stale"`)
			wantStatus(t, resp, body, http.StatusOK)
			if got := string(body); got != tt.want {
				t.Errorf("body with a stale ETag:\n got %s\nwant %s", got, tt.want)
			}
		})
	}
}

func TestServer_historyStoreError(t *testing.T) {
	tests := []struct {
		name   string
		answer func(q hub.HistoryQuery) ([]hub.Series, error)
	}{
		{"store error", func(hub.HistoryQuery) ([]hub.Series, error) { return nil, errors.New("disk on fire") }},
		{"too few series", func(hub.HistoryQuery) ([]hub.Series, error) { return nil, nil }},
		{"series out of order", func(q hub.HistoryQuery) ([]hub.Series, error) {
			s := rawSeries(q)
			s[0], s[1] = s[1], s[0]
			return s, nil
		}},
		{"not a number", func(q hub.HistoryQuery) ([]hub.Series, error) {
			s := rawSeries(q)
			s[0].Points = []hub.Point{{TS: t0, Value: math.NaN()}}
			return s, nil
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, log := newFakeFixture(t, &fakeHistory{HistoryFunc: tt.answer})
			resp, body := f.get(t, "/api/v1/devices/pi-a/history?metric=cpu.percent&metric=mem.percent")
			wantErrorMessage(t, resp, body, http.StatusInternalServerError, `{"error":"history query failed"}`)
			if strings.Contains(string(body), "disk on fire") {
				t.Errorf("error body %s: leaks the store's error", body)
			}
			if got := log.take(); len(got) != 1 {
				t.Errorf("logged %q, want one error", got)
			}
		})
	}
}

func TestServer_completeness(t *testing.T) {
	type call struct {
		device   string
		from, to int64
	}
	var got calls[call]
	answer := hub.Completeness{Expected: 100, Stored: 97, Missing: 3, Ratio: 0.97, Gaps: []hub.GapRecord{
		{Boot: "b1", FirstSeq: 10, LastSeq: 12, Before: tsOf(9), After: tsOf(13), Seen: tsOf(14), Open: 3},
		{Boot: "b1", FirstSeq: 40, LastSeq: 40, Seen: tsOf(41), Filled: 1, Closed: tsOf(50)},
	}}
	var fail atomic.Bool
	f, log := newFakeFixture(t, &fakeHistory{CompletenessFunc: func(device string, from, to int64) (hub.Completeness, error) {
		got.add(call{device, from, to})
		if fail.Load() {
			return hub.Completeness{}, errors.New("disk on fire")
		}
		if device == "pi-b" {
			return hub.Completeness{Device: device, From: from, To: to, Ratio: 1}, nil
		}
		c := answer
		c.Device, c.From, c.To = device, from, to
		return c, nil
	}})
	f.status(t, "pi-b", online())
	now := f.now.Load()

	tests := []struct {
		name, path string
		want       call
		body       string
	}{
		{"defaults", "pi-a/completeness", call{"pi-a", now - 86_400_000, now},
			`{"device":"pi-a","from":1764282100000,"to":1764368500000,"expected":100,"stored":97,"missing":3,"ratio":0.97,"gaps":[` +
				`{"boot":"b1","first_seq":10,"last_seq":12,"before":1764368409000,"after":1764368413000,"seen":1764368414000,"filled":0,"lost":0,"open":3},` +
				`{"boot":"b1","first_seq":40,"last_seq":40,"seen":1764368441000,"filled":1,"lost":0,"open":0,"closed":1764368450000}]}`},
		{"window", fmt.Sprintf("pi-a/completeness?from=%d&to=%d", tsOf(1), tsOf(60)), call{"pi-a", tsOf(1), tsOf(60)},
			`{"device":"pi-a","from":1764368401000,"to":1764368460000,"expected":100,"stored":97,"missing":3,"ratio":0.97,"gaps":[` +
				`{"boot":"b1","first_seq":10,"last_seq":12,"before":1764368409000,"after":1764368413000,"seen":1764368414000,"filled":0,"lost":0,"open":3},` +
				`{"boot":"b1","first_seq":40,"last_seq":40,"seen":1764368441000,"filled":1,"lost":0,"open":0,"closed":1764368450000}]}`},
		{"no gaps", "pi-b/completeness?from=-1h&to=now", call{"pi-b", now - 3_600_000, now},
			`{"device":"pi-b","from":1764364900000,"to":1764368500000,"expected":0,"stored":0,"missing":0,"ratio":1,"gaps":[]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := "/api/v1/devices/" + tt.path
			resp, body := f.get(t, path)
			wantStatus(t, resp, body, http.StatusOK)
			if calls := got.take(); len(calls) != 1 || calls[0] != tt.want {
				t.Errorf("store asked %+v, want once %+v", calls, tt.want)
			}
			if string(body) != tt.body {
				t.Errorf("body:\n got %s\nwant %s", body, tt.body)
			}
			tag := resp.Header.Get("ETag")
			resp, body = f.get(t, path, "If-None-Match", tag)
			wantStatus(t, resp, body, http.StatusNotModified)
			if len(body) != 0 || resp.Header.Get("ETag") != tag {
				t.Errorf("304 with body %q and ETag %q, want no body and ETag %q", body, resp.Header.Get("ETag"), tag)
			}
			got.take()
		})
	}

	bad := []struct {
		name, path string
		status     int
		msg        string
	}{
		{"bad from", "pi-a/completeness?from=yesterday", http.StatusBadRequest, "from: "},
		{"bad to", "pi-a/completeness?to=1h", http.StatusBadRequest, "to: "},
		{"from after to", fmt.Sprintf("pi-a/completeness?from=%d&to=%d", tsOf(5), tsOf(1)), http.StatusBadRequest, "is after to"},
		{"default from after to", "pi-a/completeness?to=-25h", http.StatusBadRequest, "is after to"},
		{"unknown device", "pi-zz/completeness", http.StatusNotFound, `device \"pi-zz\" not found`},
		{"bad device", "pi!a/completeness", http.StatusBadRequest, "error"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := f.get(t, "/api/v1/devices/"+tt.path)
			wantErrorMessage(t, resp, body, tt.status, tt.msg)
			if calls := got.take(); len(calls) != 0 {
				t.Errorf("store asked %+v for a bad request", calls)
			}
		})
	}

	t.Run("store error", func(t *testing.T) {
		fail.Store(true)
		defer fail.Store(false)
		resp, body := f.get(t, "/api/v1/devices/pi-a/completeness")
		wantErrorMessage(t, resp, body, http.StatusInternalServerError, `{"error":"completeness query failed"}`)
		if strings.Contains(string(body), "disk on fire") {
			t.Errorf("error body %s: leaks the store's error", body)
		}
		if got := log.take(); len(got) != 1 {
			t.Errorf("logged %q, want one error", got)
		}
	})
}
