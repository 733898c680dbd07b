package web_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fleetwatch/fleetwatch/agent/telemetry"
	"github.com/fleetwatch/fleetwatch/hub/fleet"
	"github.com/fleetwatch/fleetwatch/hub/web"
)

func TestServer_fleet(t *testing.T) {
	f := newFixture(t)
	f.readings(t, "pi-a", "b1", 1, 2)
	f.status(t, "pi-b", telemetry.Offline(telemetry.ReasonLost))

	resp, body := f.get(t, "/api/v1/fleet")
	wantStatus(t, resp, body, http.StatusOK)
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	tag := resp.Header.Get("ETag")
	if len(tag) < 3 || tag[0] != '"' || tag[len(tag)-1] != '"' {
		t.Fatalf("ETag = %q, want a strong (quoted, not W/) validator", tag)
	}

	// The contract's keys, checked on the raw JSON.
	var raw struct {
		Version *uint64                      `json:"version"`
		TS      *int64                       `json:"ts"`
		Devices []map[string]json.RawMessage `json:"devices"`
		Summary map[string]json.RawMessage   `json:"summary"`
	}
	if err := json.Unmarshal(body, &raw); err != nil {
		t.Fatalf("fleet body %s: %v", body, err)
	}
	if raw.Version == nil || raw.TS == nil || *raw.TS != f.now.Load() {
		t.Errorf("fleet body %s: want version and ts=%d", body, f.now.Load())
	}
	for _, d := range raw.Devices {
		for _, k := range []string{"id", "state", "last_seen", "metrics", "tags"} {
			if _, ok := d[k]; !ok {
				t.Errorf("device %s lacks %q", d["id"], k)
			}
		}
	}
	for _, k := range []string{"total", "online", "offline", "stale", "metrics"} {
		if _, ok := raw.Summary[k]; !ok {
			t.Errorf("summary %v lacks %q", raw.Summary, k)
		}
	}

	var snap fleet.Snapshot
	if err := json.Unmarshal(body, &snap); err != nil {
		t.Fatal(err)
	}
	if len(snap.Devices) != 2 {
		t.Fatalf("devices = %+v, want pi-a and pi-b", snap.Devices)
	}
	a, b := snap.Devices[0], snap.Devices[1]
	if a.ID != "pi-a" || a.State != fleet.Online || a.LastSeen != tsOf(2) || a.Metrics["cpu.percent"] != 2 || a.Tags["site"] != "home" {
		t.Errorf("pi-a = %+v, want online, last seen %d, cpu 2, site home", a, tsOf(2))
	}
	if b.ID != "pi-b" || b.State != fleet.Offline || b.Reason != telemetry.ReasonLost {
		t.Errorf("pi-b = %+v, want offline (lost)", b)
	}
	if sum := snap.Summary; sum.Total != 2 || sum.Online != 1 || sum.Offline != 1 || sum.Metrics["cpu.percent"].Max != 2 {
		t.Errorf("summary = %+v, want 2 devices, 1 online, 1 offline, cpu.percent max 2", sum)
	}

	t.Run("If-None-Match", func(t *testing.T) {
		tests := []struct {
			header string
			want   int
		}{
			{tag, http.StatusNotModified},
			{`"stale", ` + tag, http.StatusNotModified},
			{"*", http.StatusNotModified},
			{`"stale"`, http.StatusOK},
			{"W/" + tag, http.StatusOK}, // strong comparison
		}
		for _, tt := range tests {
			t.Run(tt.header, func(t *testing.T) {
				resp, got := f.get(t, "/api/v1/fleet", "If-None-Match", tt.header)
				wantStatus(t, resp, got, tt.want)
				if g := resp.Header.Get("ETag"); g != tag {
					t.Errorf("ETag = %q, want %q", g, tag)
				}
				if tt.want == http.StatusNotModified && len(got) != 0 {
					t.Errorf("304 with a body: %s", got)
				}
				if tt.want == http.StatusOK && string(got) != string(body) {
					t.Errorf("body changed without a change: %s, want %s", got, body)
				}
			})
		}
	})

	// A new reading changes the fleet: a new version and a new ETag.
	f.readings(t, "pi-a", "b1", 3)
	resp, body2 := f.get(t, "/api/v1/fleet", "If-None-Match", tag)
	wantStatus(t, resp, body2, http.StatusOK)
	tag2 := resp.Header.Get("ETag")
	if tag2 == tag || tag2 == "" {
		t.Errorf("ETag after a change = %q, want a new one (was %q)", tag2, tag)
	}
	var snap2 fleet.Snapshot
	json.Unmarshal(body2, &snap2) //nolint:errcheck // checked by the comparison below
	if snap2.Version <= snap.Version || snap2.Devices[0].LastSeen != tsOf(3) {
		t.Errorf("after a reading: version %d (was %d), pi-a last seen %d; want a newer version and %d", snap2.Version, snap.Version, snap2.Devices[0].LastSeen, tsOf(3))
	}

	// Time alone changes it too: pi-a never sent a status and falls silent.
	f.now.Add(fleet.StaleAfter*fleet.DefaultIntervalMS + 1000)
	resp, body3 := f.get(t, "/api/v1/fleet", "If-None-Match", tag2)
	wantStatus(t, resp, body3, http.StatusOK)
	var snap3 fleet.Snapshot
	json.Unmarshal(body3, &snap3) //nolint:errcheck // checked below
	if resp.Header.Get("ETag") == tag2 || snap3.Devices[0].State != fleet.Offline || snap3.Devices[0].Reason != telemetry.ReasonTimeout {
		t.Errorf("after silence: ETag %q (was %q), pi-a %+v; want a new ETag and pi-a offline (timeout)", resp.Header.Get("ETag"), tag2, snap3.Devices[0])
	}
}

func TestServer_device(t *testing.T) {
	f := newFixture(t)
	f.status(t, "pi-a", online())
	f.readings(t, "pi-a", "b1", 1, 2)

	resp, body := f.get(t, "/api/v1/devices/pi-a")
	wantStatus(t, resp, body, http.StatusOK)
	if resp.Header.Get("ETag") == "" {
		t.Error("device response has no ETag")
	}
	var d struct {
		ID         string             `json:"id"`
		State      string             `json:"state"`
		LastSeen   int64              `json:"last_seen"`
		Boot       string             `json:"boot"`
		Seq        uint64             `json:"seq"`
		Model      string             `json:"model"`
		IntervalMS int64              `json:"interval_ms"`
		Tags       map[string]string  `json:"tags"`
		Metrics    map[string]float64 `json:"metrics"`
	}
	if err := json.Unmarshal(body, &d); err != nil {
		t.Fatalf("device body %s: %v", body, err)
	}
	st := online()
	if d.ID != "pi-a" || d.State != fleet.Online || d.LastSeen != tsOf(2) || d.Boot != "b1" || d.Seq != 2 ||
		d.Model != st.Model || d.IntervalMS != st.IntervalMS || d.Tags["site"] != "home" || d.Metrics["cpu.percent"] != 2 {
		t.Errorf("device = %s, want pi-a online at seq 2 with its inventory", body)
	}

	tests := []struct {
		name, id string
		want     int
	}{
		{"unknown", "pi-zz", http.StatusNotFound},
		{"starts with a dash", "-pi", http.StatusBadRequest},
		{"bad character", "pi!a", http.StatusBadRequest},
		{"space", url.PathEscape("pi a"), http.StatusBadRequest},
		{"too long", strings.Repeat("a", telemetry.MaxDeviceID+1), http.StatusBadRequest},
		{"longest valid, unknown", strings.Repeat("a", telemetry.MaxDeviceID), http.StatusNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := f.get(t, "/api/v1/devices/"+tt.id)
			wantJSONError(t, resp, body, tt.want)
		})
	}
}

func TestServer_history(t *testing.T) {
	f := newFixture(t) // now is t0+100s
	f.readings(t, "pi-a", "b1", 1, 2, 3, 4, 5)

	rfc := func(ms int64) string { return url.QueryEscape(time.UnixMilli(ms).UTC().Format(time.RFC3339Nano)) }
	tests := []struct {
		name, query string
		want        []uint64 // seqs of the points
	}{
		{"ms window", fmt.Sprintf("metric=cpu.percent&from=%d&to=%d", tsOf(2), tsOf(4)), []uint64{2, 3, 4}},
		{"default window is the last hour", "metric=cpu.percent", []uint64{1, 2, 3, 4, 5}},
		{"RFC 3339", "metric=cpu.percent&from=" + rfc(tsOf(4)) + "&to=" + rfc(tsOf(5)), []uint64{4, 5}},
		{"relative", "metric=cpu.percent&from=-97s&to=now", []uint64{3, 4, 5}},
		{"empty window", fmt.Sprintf("metric=cpu.percent&from=%d&to=%d", tsOf(6), tsOf(9)), nil},
		{"unknown metric", "metric=disk.none", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := f.get(t, "/api/v1/devices/pi-a/history?"+tt.query)
			wantStatus(t, resp, body, http.StatusOK)
			var h struct {
				Device string       `json:"device"`
				Metric string       `json:"metric"`
				Points [][2]float64 `json:"points"`
			}
			if err := json.Unmarshal(body, &h); err != nil {
				t.Fatalf("history body %s: %v", body, err)
			}
			if !strings.Contains(string(body), `"points":[`) {
				t.Errorf("history body %s: want points as an array, never null", body)
			}
			var want [][2]float64
			for _, s := range tt.want {
				want = append(want, [2]float64{float64(tsOf(s)), float64(s)})
			}
			if h.Device != "pi-a" || h.Metric != "cpu.percent" && h.Metric != "disk.none" || !slices.Equal(h.Points, want) {
				t.Errorf("history = %s, want device pi-a points %v", body, want)
			}
		})
	}

	bad := []struct {
		name, path string
		want       int
	}{
		{"no metric", "/api/v1/devices/pi-a/history", http.StatusBadRequest},
		{"bad metric", "/api/v1/devices/pi-a/history?metric=CPU%25", http.StatusBadRequest},
		{"bad from", "/api/v1/devices/pi-a/history?metric=cpu.percent&from=yesterday", http.StatusBadRequest},
		{"bad to", "/api/v1/devices/pi-a/history?metric=cpu.percent&to=-1x", http.StatusBadRequest},
		{"from after to", fmt.Sprintf("/api/v1/devices/pi-a/history?metric=cpu.percent&from=%d&to=%d", tsOf(5), tsOf(1)), http.StatusBadRequest},
		{"unknown device", "/api/v1/devices/pi-zz/history?metric=cpu.percent", http.StatusNotFound},
		{"bad device", "/api/v1/devices/-pi/history?metric=cpu.percent", http.StatusBadRequest},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := f.get(t, tt.path)
			wantJSONError(t, resp, body, tt.want)
		})
	}
}

func TestParseTime(t *testing.T) {
	now := time.UnixMilli(t0)
	def := now.Add(-time.Hour)
	tests := []struct {
		in      string
		want    int64
		wantErr bool
	}{
		{"", def.UnixMilli(), false},
		{"now", t0, false},
		{"1764368400123", 1764368400123, false},
		{"0", 0, false},
		{fmt.Sprint(telemetry.MaxTimestamp), telemetry.MaxTimestamp, false},
		{fmt.Sprint(telemetry.MaxTimestamp + 1), 0, true},
		{"-1", 0, true},
		{"2025-11-28T22:20:00Z", time.Date(2025, 11, 28, 22, 20, 0, 0, time.UTC).UnixMilli(), false},
		{"2025-11-28T23:20:00.250+01:00", time.Date(2025, 11, 28, 22, 20, 0, 250e6, time.UTC).UnixMilli(), false},
		{"-1h", t0 - 3_600_000, false},
		{"-15m", t0 - 900_000, false},
		{"-1h30m", t0 - 5_400_000, false},
		{"+30s", t0 + 30_000, false},
		{"-500ms", t0 - 500, false},
		{"1h", 0, true},
		{"-1x", 0, true},
		{"garbage", 0, true},
		{"12.5", 0, true},
		{"2025-11-28", 0, true},
		{"NOW", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := web.ParseTime(tt.in, now, def)
			if (err != nil) != tt.wantErr {
				t.Fatalf("ParseTime(%q) error = %v, want error %v", tt.in, err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("ParseTime(%q) = %d, want %d", tt.in, got, tt.want)
			}
		})
	}
}

// The bucketed and several-metric shapes through the real store (the
// shape tests in history_test.go use canned series).
func TestServer_historyBucketsRealStore(t *testing.T) {
	f := newFixture(t) // now is t0+100s
	f.readings(t, "pi-a", "b1", 1, 2, 3, 4, 5, 6)
	q := fmt.Sprintf("metric=cpu.percent&metric=nope.none&from=%d&to=%d&points=2", tsOf(1), tsOf(6))
	resp, body := f.get(t, "/api/v1/devices/pi-a/history?"+q)
	wantStatus(t, resp, body, http.StatusOK)
	var h struct {
		Series []struct {
			Metric  string      `json:"metric"`
			Step    int64       `json:"step"`
			Columns []string    `json:"columns"`
			Points  [][]float64 `json:"points"`
		} `json:"series"`
	}
	if err := json.Unmarshal(body, &h); err != nil || len(h.Series) != 2 {
		t.Fatalf("history body %s: %v, want two series", body, err)
	}
	cpu := h.Series[0]
	if cpu.Metric != "cpu.percent" || cpu.Step <= 0 || len(cpu.Columns) != 4 || len(cpu.Points) == 0 || len(cpu.Points) > 2 {
		t.Fatalf("cpu.percent = %+v, want at most 2 [ts,avg,min,max] buckets", cpu)
	}
	lo, hi := 1e9, -1e9
	for _, p := range cpu.Points {
		if len(p) != 4 || p[2] > p[1] || p[1] > p[3] {
			t.Fatalf("bucket %v: want [ts, avg, min, max] with min ≤ avg ≤ max", p)
		}
		lo, hi = min(lo, p[2]), max(hi, p[3])
	}
	if lo != 1 || hi != 6 {
		t.Errorf("buckets span %v..%v, want the readings' 1..6", lo, hi)
	}
	if other := h.Series[1]; other.Metric != "nope.none" || len(other.Points) != 0 {
		t.Errorf("unknown metric = %+v, want no points", other)
	}
}

func TestServer_summary(t *testing.T) {
	f := newFixture(t)
	for i, dev := range []string{"pi-a", "pi-b", "pi-c"} {
		f.status(t, dev, online())
		e := fmt.Sprintf(`{"v":1,"device":%q,"boot":"b1","readings":[{"seq":1,"ts":%d,"metrics":{"cpu.percent":%d}}],"tags":{"site":%q}}`,
			dev, f.now.Load()-1000, 10*(i+1), []string{"lab", "lab", "home"}[i])
		f.handle(t, topics.Telemetry(dev), []byte(e))
	}
	var all struct {
		Summary fleet.Summary
	}
	resp, body := f.get(t, "/api/v1/fleet/summary?top=2")
	wantStatus(t, resp, body, http.StatusOK)
	if err := json.Unmarshal(body, &all); err != nil {
		t.Fatal(err)
	}
	cpu := all.Summary.Metrics["cpu.percent"]
	if all.Summary.Online != 3 || cpu.Avg != 20 || cpu.P95 != 30 || cpu.MinDevice != "pi-a" || len(cpu.Top) != 2 {
		t.Errorf("summary = %s, want 3 online, cpu avg 20, p95 30, min pi-a, top 2", body)
	}
	var grouped struct {
		Group  string
		Groups map[string]fleet.Summary
	}
	resp, body = f.get(t, "/api/v1/fleet/summary?group=site")
	wantStatus(t, resp, body, http.StatusOK)
	if err := json.Unmarshal(body, &grouped); err != nil {
		t.Fatal(err)
	}
	if grouped.Group != "site" || grouped.Groups["lab"].Metrics["cpu.percent"].Avg != 15 || grouped.Groups["home"].Online != 1 {
		t.Errorf("grouped = %s, want lab avg 15 and home with one device", body)
	}
	// The fleet snapshot carries the headline metrics.
	resp, body = f.get(t, "/api/v1/fleet")
	wantStatus(t, resp, body, http.StatusOK)
	if !strings.Contains(string(body), `"metrics":{"cpu.percent":{"count":3`) {
		t.Errorf("fleet snapshot %s lacks the cpu.percent aggregate", body)
	}
	for _, path := range []string{"/api/v1/fleet/summary?top=-1", "/api/v1/fleet/summary?top=51", "/api/v1/fleet/summary?group=Site!"} {
		resp, body := f.get(t, path)
		wantJSONError(t, resp, body, http.StatusBadRequest)
	}
}
