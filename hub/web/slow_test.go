package web_test

import (
	"encoding/json"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/fleetwatch/fleetwatch/hub"
	"github.com/fleetwatch/fleetwatch/hub/web"
)

// TestServer_wsNonReaders: 200 WebSocket clients subscribe and never read.
// The few that do read keep getting every event promptly; the non-readers
// are cut within 15 s; the hub's memory stays bounded.
func TestServer_wsNonReaders(t *testing.T) {
	if testing.Short() {
		t.Skip("15 s with 200 connections; run without -short")
	}
	f := newFixture(t, func(s *web.Server) { s.MaxConnsPerIP = 1000 }) // all from 127.0.0.1
	const nonReaders, readers = 200, 4
	var all []*websocket.Conn
	for range nonReaders {
		c := dialWS(t, f, nil)
		wsSend(t, c, `{"type":"subscribe","channel":"alerts"}`)
		all = append(all, c)
	}
	var mu sync.Mutex
	var lat []time.Duration
	received := make([]int, readers)
	var wg sync.WaitGroup
	for i := range readers {
		c := dialWS(t, f, nil)
		wsSend(t, c, `{"type":"subscribe","channel":"alerts"}`)
		wsExpect(t, c, "subscribed", "alerts")
		wg.Go(func() {
			for {
				c.SetReadDeadline(time.Now().Add(20 * time.Second))
				_, b, err := c.ReadMessage()
				if err != nil {
					return
				}
				var m struct {
					Type string `json:"type"`
					Data struct {
						Sent int64 `json:"sent"`
					} `json:"data"`
				}
				if json.Unmarshal(b, &m) != nil || m.Type != "alert" {
					continue
				}
				mu.Lock()
				lat = append(lat, time.Since(time.UnixMicro(m.Data.Sent)))
				received[i]++
				mu.Unlock()
			}
		})
		all = append(all, c)
	}
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)

	// 50 alerts/s of 16 KB: alerts are never coalesced, so a non-reader's
	// socket fills in about a second and its backlog only grows.
	pad := strings.Repeat("x", 16<<10)
	start := time.Now()
	sent := 0
	var cutAt time.Duration
	for time.Since(start) < 20*time.Second {
		mustPublish(t, f, hub.EventAlert, hub.ChannelAlerts, map[string]any{"sent": time.Now().UnixMicro(), "pad": pad})
		sent++
		time.Sleep(20 * time.Millisecond)
		if cutAt == 0 && cutCount(t, f) >= nonReaders {
			cutAt = time.Since(start)
			break
		}
	}
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	for _, c := range all {
		c.Close()
	}
	wg.Wait()

	if cutAt == 0 || cutAt > 15*time.Second {
		t.Fatalf("non-readers cut: %d of %d after %v, want all within 15 s", cutCount(t, f), nonReaders, time.Since(start))
	}
	mu.Lock()
	defer mu.Unlock()
	for i, n := range received {
		if n < sent-1 {
			t.Errorf("reader %d got %d of %d events", i, n, sent)
		}
	}
	slices.Sort(lat)
	p99 := lat[len(lat)*99/100]
	t.Logf("%d non-readers cut after %v; readers got %d events each, delivery p99 %v; heap in use %d → %d MB",
		nonReaders, cutAt.Round(time.Millisecond), sent, p99, before.HeapInuse>>20, after.HeapInuse>>20)
	if p99 > 250*time.Millisecond {
		t.Errorf("readers' delivery p99 %v, want ≤ 250 ms while non-readers stall", p99)
	}
	if grew := int64(after.HeapInuse) - int64(before.HeapInuse); grew > 200<<20 {
		t.Errorf("heap grew %d MB, want bounded", grew>>20)
	}
}

func cutCount(t *testing.T, f *fixture) int64 {
	t.Helper()
	resp, body := f.get(t, "/api/v1/stats")
	wantStatus(t, resp, body, 200)
	var st struct {
		ClientsCut struct {
			WS int64 `json:"ws"`
		} `json:"clients_cut"`
	}
	if err := json.Unmarshal(body, &st); err != nil {
		t.Fatal(err)
	}
	return st.ClientsCut.WS
}
