package notify

import (
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fleetwatch/fleetwatch/hub"
)

func TestNotifier_slowReceiver(t *testing.T) {
	slow := newServer(t, func(s *server, _ int, _ http.ResponseWriter, r *http.Request) { s.hang(r) })
	fast := newServer(t, nil)
	n := testNotifier(Receiver{Name: "slow", URL: slow.URL}, Receiver{Name: "fast", URL: fast.URL})
	n.Queue = 64
	start(t, n)
	has := func(id string) func() bool {
		return func() bool {
			for _, d := range decodeAll(t, fast.received()) {
				if d.Alert.ID == id {
					return true
				}
			}
			return false
		}
	}

	t0 := time.Now()
	n.Notify(firing("first"))
	waitFor(t, "fast to get first", has("first"))
	if d := time.Since(t0); d > time.Second {
		t.Errorf("fast receiver got its message after %v, want well under the slow one's 10s timeout", d)
	}
	waitFor(t, "slow to be hanging", func() bool { return slow.count() == 1 })

	burst := make([]hub.Alert, 10000)
	for i := range burst {
		burst[i] = firing(fmt.Sprint("burst-", i))
	}
	t0 = time.Now()
	done := make(chan time.Duration)
	go func() {
		for _, a := range burst {
			n.Notify(a)
		}
		done <- time.Since(t0)
	}()
	select {
	case d := <-done:
		t.Logf("10,000 Notify calls took %v", d)
		if d > 500*time.Millisecond {
			t.Errorf("10,000 Notify calls took %v, want well under a second", d)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("10,000 Notify calls still running after 5s: Notify blocks")
	}
	n.Notify(firing("last"))
	waitFor(t, "fast to get last", has("last"))

	st := n.Stats()
	if st[0].Sent != 0 || st[0].Queued != 64 || st[0].Dropped != 10001-64 {
		t.Errorf("slow: got %+v, want sent 0, queued 64, dropped %d", st[0], 10001-64)
	}
	if got := slow.count(); got != 1 {
		t.Errorf("slow: got %d requests, want the 1 still hanging", got)
	}
}

func TestNotifier_queue(t *testing.T) {
	srv := newServer(t, nil)
	var logs logBuf
	var clock atomic.Int64
	clock.Store(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	n := testNotifier(Receiver{Name: "r", URL: srv.URL})
	n.Queue = 4
	n.Logger = logs.logger()
	n.Now = func() time.Time { return time.Unix(0, clock.Load()) }

	for i := range 10 {
		n.Notify(firing(fmt.Sprint("a", i)))
	}
	if st := n.Stats()[0]; st.Dropped != 6 || st.Queued != 4 {
		t.Errorf("got dropped %d queued %d, want 6 and 4", st.Dropped, st.Queued)
	}
	clock.Add(int64(2 * time.Second)) // past the once-a-second log limit
	n.Notify(firing("a10"))

	recs := logs.records(t, "queue full, dropped oldest message")
	if len(recs) != 2 {
		t.Fatalf("drop logs: got %d, want 2 (rate limited)", len(recs))
	}
	for i, want := range []struct {
		alert   string
		dropped float64
	}{{"a0", 1}, {"a6", 7}} {
		if recs[i]["receiver"] != "r" || recs[i]["alert"] != want.alert || recs[i]["dropped"] != want.dropped {
			t.Errorf("log %d: got %v, want receiver r, alert %s, dropped %v", i, recs[i], want.alert, want.dropped)
		}
	}

	start(t, n)
	waitFor(t, "four deliveries", func() bool { return n.Stats()[0].Sent == 4 })
	var ids []string
	for _, d := range decodeAll(t, srv.received()) {
		ids = append(ids, d.Alert.ID)
	}
	if got, want := strings.Join(ids, " "), "a7 a8 a9 a10"; got != want {
		t.Errorf("delivered: got %s, want the newest: %s", got, want)
	}
}
