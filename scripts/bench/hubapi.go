package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Hub counters read from /metrics.
const (
	mReadings   = "fleetwatch_readings_ingested_total"
	mDuplicates = "fleetwatch_readings_duplicate_total"
	mCommits    = "fleetwatch_commits_total"
	mWriteTx    = "fleetwatch_store_write_tx_total"
	mMessages   = "fleetwatch_messages_total"
	mQueue      = "fleetwatch_ingest_queue"
	mGaps       = "fleetwatch_readings_gap_total"
	mCutWS      = `fleetwatch_clients_cut_total{transport="ws"}`
	mCutSSE     = `fleetwatch_clients_cut_total{transport="sse"}`
)

var api = &http.Client{Timeout: 30 * time.Second}

// parseProm reads Prometheus text: series (name with labels) → value.
func parseProm(r io.Reader) (map[string]float64, error) {
	out := map[string]float64{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			return nil, fmt.Errorf("parse metrics line %q: %w", line, err)
		}
		out[line[:i]] = v
	}
	return out, sc.Err()
}

func scrape(ctx context.Context, base string) (map[string]float64, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/metrics", nil)
	resp, err := api.Do(req)
	if err != nil {
		return nil, fmt.Errorf("scrape %s: %w", base, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("scrape %s: %s", base, resp.Status)
	}
	return parseProm(resp.Body)
}

// historyResult is one history query as the client saw it.
type historyResult struct {
	Points  int
	Bytes   int
	Elapsed time.Duration
}

// historyPoints asks for raw samples up to the API's limit (100000, over a
// day at 1 s): the rows count stored samples, not buckets.
const historyPoints = 100_000

// history reads one metric's raw samples; a bucketed answer (more samples
// than historyPoints in the range) is an error, as its points are not
// samples.
func history(ctx context.Context, base, device, metric string, from, to int64) (historyResult, error) {
	r, step, err := historyAt(ctx, base, device, metric, from, to, historyPoints)
	if err == nil && step != 0 {
		err = fmt.Errorf("history %s/%s: %d buckets of %d ms, not raw samples (more than %d in the range)", device, metric, r.Points, step, historyPoints)
	}
	return r, err
}

// historyAt reads at most points points of one metric, raw or bucketed,
// and returns the bucket width (0: raw).
func historyAt(ctx context.Context, base, device, metric string, from, to int64, points int) (historyResult, int64, error) {
	q := url.Values{"metric": {metric}, "from": {strconv.FormatInt(from, 10)}, "to": {strconv.FormatInt(to, 10)},
		"points": {strconv.Itoa(points)}}
	u := base + "/api/v1/devices/" + url.PathEscape(device) + "/history?" + q.Encode()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	t0 := time.Now()
	resp, err := api.Do(req)
	if err != nil {
		return historyResult{}, 0, fmt.Errorf("history %s/%s: %w", device, metric, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	elapsed := time.Since(t0)
	if err != nil {
		return historyResult{}, 0, fmt.Errorf("history %s/%s: %w", device, metric, err)
	}
	if resp.StatusCode != http.StatusOK {
		return historyResult{}, 0, fmt.Errorf("history %s/%s: %s: %s", device, metric, resp.Status, tail(string(body), 200))
	}
	var v struct {
		Step   int64       `json:"step"`
		Points [][]float64 `json:"points"` // [ts, value] raw, [ts, avg, min, max] buckets
	}
	if err := json.Unmarshal(body, &v); err != nil {
		return historyResult{}, 0, fmt.Errorf("history %s/%s: %w", device, metric, err)
	}
	return historyResult{Points: len(v.Points), Bytes: len(body), Elapsed: elapsed}, v.Step, nil
}

// fleetTotal returns how many devices the hub knows, from /metrics: the
// fleet's JSON grows with the fleet (megabytes at 10k), the gauges do not.
func fleetTotal(ctx context.Context, base string) (int, error) {
	m, err := scrape(ctx, base)
	if err != nil {
		return 0, err
	}
	var n float64
	for _, st := range []string{"online", "stale", "offline"} {
		n += m[`fleetwatch_devices{state="`+st+`"}`]
	}
	return int(n), nil
}

// waitSettled waits until the hub has committed everything queued: the
// queue is empty and the stored count stopped moving for a second.
func waitSettled(ctx context.Context, base string, d time.Duration) (map[string]float64, error) {
	deadline := time.Now().Add(d)
	var good map[string]float64
	var last float64 = -1
	stable := 0
	for {
		m, err := scrape(ctx, base)
		switch {
		case err != nil:
			stable = 0 // a hub too busy to answer is not settled
		case m[mQueue] == 0 && m[mReadings] == last:
			good = m
			if stable++; stable >= 4 {
				return m, nil
			}
		default:
			good, stable, last = m, 0, m[mReadings]
		}
		if time.Now().After(deadline) {
			if good == nil {
				return nil, fmt.Errorf("hub did not answer /metrics within %s: %w", d, err)
			}
			return good, fmt.Errorf("hub still busy after %s (queue %g)", d, good[mQueue])
		}
		if err := sleep(ctx, 250*time.Millisecond); err != nil {
			return nil, err
		}
	}
}

// fleetBytes returns the size of the fleet snapshot, what every fleet
// broadcast carries.
func fleetBytes(ctx context.Context, base string) (int, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/api/v1/fleet", nil)
	resp, err := api.Do(req)
	if err != nil {
		return 0, fmt.Errorf("fleet: %w", err)
	}
	defer resp.Body.Close()
	n, err := io.Copy(io.Discard, resp.Body)
	return int(n), err
}
