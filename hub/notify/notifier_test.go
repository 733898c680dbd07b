package notify

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fleetwatch/fleetwatch/hub"
)

func TestNotifier_Notify(t *testing.T) {
	// states lists "status/id/summary" of what srv received, in order.
	states := func(t *testing.T, srv *server) string {
		var out []string
		for _, d := range decodeAll(t, srv.received()) {
			out = append(out, d.Status+"/"+d.Alert.ID+"/"+d.Alert.Summary)
		}
		return strings.Join(out, " ")
	}
	// settle waits for want messages, then a little more so extra ones show.
	settle := func(t *testing.T, srv *server, want int) {
		waitFor(t, fmt.Sprint(want, " requests"), func() bool { return srv.count() >= want })
		time.Sleep(30 * time.Millisecond)
	}

	t.Run("firing sent again only when severity or summary changes", func(t *testing.T) {
		srv := newServer(t, nil)
		n := testNotifier(Receiver{Name: "r", URL: srv.URL})
		start(t, n)
		a := firing("a1")
		a.Summary = "s1"
		n.Notify(a)
		a.Value = 99 // not news
		n.Notify(a)
		a.Summary = "s2"
		n.Notify(a)
		a.Severity = hub.SeverityWarning
		n.Notify(a)
		settle(t, srv, 3)
		if got, want := states(t, srv), "firing/a1/s1 firing/a1/s2 firing/a1/s2"; got != want {
			t.Errorf("got %s, want %s", got, want)
		}
		if got := decodeAll(t, srv.received())[2].Alert.Severity; got != hub.SeverityWarning {
			t.Errorf("third severity: got %s, want warning", got)
		}
	})

	t.Run("resolved sent once", func(t *testing.T) {
		srv := newServer(t, nil)
		n := testNotifier(Receiver{Name: "r", URL: srv.URL})
		start(t, n)
		a := firing("a1")
		n.Notify(a)
		n.Notify(resolved(a))
		n.Notify(resolved(a))
		n.Notify(resolved(firing("b1"))) // never seen firing: may predate a restart
		n.Notify(resolved(firing("b1")))
		settle(t, srv, 3)
		s := a.Summary
		if got, want := states(t, srv), "firing/a1/"+s+" resolved/a1/"+s+" resolved/b1/"+s; got != want {
			t.Errorf("got %s, want %s", got, want)
		}
	})

	t.Run("fires again after resolve", func(t *testing.T) {
		srv := newServer(t, nil)
		n := testNotifier(Receiver{Name: "r", URL: srv.URL})
		start(t, n)
		a := firing("a1")
		a.Summary = "s"
		for range 2 {
			n.Notify(a)
			n.Notify(resolved(a))
		}
		settle(t, srv, 4)
		if got, want := states(t, srv), "firing/a1/s resolved/a1/s firing/a1/s resolved/a1/s"; got != want {
			t.Errorf("got %s, want %s", got, want)
		}
	})

	t.Run("ignores alerts without id or known state", func(t *testing.T) {
		srv := newServer(t, nil)
		var logs logBuf
		n := testNotifier(Receiver{Name: "r", URL: srv.URL})
		n.Logger = logs.logger()
		start(t, n)
		n.Notify(hub.Alert{})
		bad := firing("a1")
		bad.State = "pending"
		n.Notify(bad)
		n.Notify(firing("a2"))
		settle(t, srv, 1)
		if got := decodeAll(t, srv.received()); len(got) != 1 || got[0].Alert.ID != "a2" {
			t.Errorf("got %+v, want only a2", got)
		}
		if got := len(logs.records(t, "alert ignored")); got != 2 {
			t.Errorf("ignored logs: got %d, want 2", got)
		}
	})

	t.Run("queued before Run, sent to every receiver", func(t *testing.T) {
		srv1, srv2 := newServer(t, nil), newServer(t, nil)
		n := testNotifier(Receiver{Name: "one", URL: srv1.URL}, Receiver{Name: "two", URL: srv2.URL})
		n.Notify(firing("a1"))
		if got := n.Stats(); got[0].Queued != 1 || got[1].Queued != 1 {
			t.Errorf("queued before Run: got %+v, want 1 each", got)
		}
		start(t, n)
		waitFor(t, "both receivers", func() bool { return srv1.count() == 1 && srv2.count() == 1 })
	})

	t.Run("concurrent", func(t *testing.T) {
		srv := newServer(t, nil)
		n := testNotifier(Receiver{Name: "r", URL: srv.URL})
		n.Queue = 1000
		start(t, n)
		var wg sync.WaitGroup
		for g := range 8 {
			wg.Go(func() {
				for i := range 50 {
					a := firing(fmt.Sprintf("g%d-%d", g, i))
					n.Notify(a)
					n.Notify(a) // duplicate: not news
					_ = n.Stats()
				}
			})
		}
		wg.Wait()
		waitFor(t, "400 deliveries", func() bool { return n.Stats()[0].Sent == 400 })
		seen := map[string]int{}
		for _, d := range decodeAll(t, srv.received()) {
			seen[d.Alert.ID]++
		}
		for id, c := range seen {
			if c != 1 {
				t.Errorf("%s: got %d sends, want 1", id, c)
			}
		}
		if len(seen) != 400 {
			t.Errorf("distinct alerts: got %d, want 400", len(seen))
		}
	})
}

func TestNotifier_repeat(t *testing.T) {
	t.Run("while firing, stops after resolve", func(t *testing.T) {
		srv := newServer(t, nil)
		n := testNotifier(Receiver{Name: "r", URL: srv.URL, RepeatInterval: 30 * time.Millisecond})
		start(t, n)
		a := firing("a1")
		n.Notify(a)
		a.Value = 99 // kept for repeats without being sent now
		n.Notify(a)
		waitFor(t, "two repeats", func() bool { return srv.count() >= 3 })
		n.Notify(resolved(a))
		waitFor(t, "the resolve", func() bool {
			hs := srv.received()
			return decode(t, hs[len(hs)-1]).Status == hub.AlertResolved
		})
		before := srv.count()
		time.Sleep(100 * time.Millisecond) // over three intervals
		if got := srv.count(); got != before {
			t.Errorf("requests after resolve: got %d more, want none", got-before)
		}
		got := decodeAll(t, srv.received())
		if got[0].Repeat || got[0].Status != hub.AlertFiring {
			t.Errorf("first: got %+v, want firing, not a repeat", got[0])
		}
		for i, d := range got[1 : len(got)-1] {
			if !d.Repeat || d.Status != hub.AlertFiring || d.Alert.Value != 99 {
				t.Errorf("message %d: got repeat %v status %s value %v, want a firing repeat of value 99", i+1, d.Repeat, d.Status, d.Alert.Value)
			}
		}
		if last := got[len(got)-1]; last.Repeat || last.Status != hub.AlertResolved {
			t.Errorf("last: got %+v, want resolved, not a repeat", last)
		}
	})

	t.Run("an acknowledged alert is not repeated", func(t *testing.T) {
		srv := newServer(t, nil)
		n := testNotifier(Receiver{Name: "r", URL: srv.URL, RepeatInterval: 20 * time.Millisecond})
		start(t, n)
		a := firing("a1")
		n.Notify(a)
		waitFor(t, "a repeat", func() bool { return srv.count() >= 2 })
		a.AckedAt = time.Now().UnixMilli()
		n.Notify(a)
		time.Sleep(30 * time.Millisecond) // a repeat queued before the ack may still land
		before := srv.count()
		time.Sleep(100 * time.Millisecond) // five intervals
		if got := srv.count(); got != before {
			t.Errorf("requests after the ack: got %d more, want none", got-before)
		}
	})

	t.Run("per receiver, negative means never", func(t *testing.T) {
		often, never := newServer(t, nil), newServer(t, nil)
		n := testNotifier(
			Receiver{Name: "often", URL: often.URL, RepeatInterval: 20 * time.Millisecond},
			Receiver{Name: "never", URL: never.URL, RepeatInterval: -1},
		)
		start(t, n)
		n.Notify(firing("a1"))
		waitFor(t, "repeats", func() bool { return often.count() >= 3 })
		if got := never.count(); got != 1 {
			t.Errorf("never: got %d requests, want 1", got)
		}
	})
}

func TestNotifier_Run(t *testing.T) {
	t.Run("returns promptly on cancel with a hanging receiver", func(t *testing.T) {
		srv := newServer(t, func(s *server, _ int, _ http.ResponseWriter, r *http.Request) { s.hang(r) })
		n := testNotifier(Receiver{Name: "r", URL: srv.URL})
		stop := start(t, n)
		n.Notify(firing("a1"))
		waitFor(t, "request in flight", func() bool { return srv.count() == 1 })
		stopsPromptly(t, stop)
	})

	t.Run("returns promptly on cancel while backing off", func(t *testing.T) {
		srv := newServer(t, status(http.StatusInternalServerError, ""))
		n := testNotifier(Receiver{Name: "r", URL: srv.URL})
		n.MinBackoff, n.MaxBackoff = 10*time.Second, 10*time.Second
		stop := start(t, n)
		n.Notify(firing("a1"))
		waitFor(t, "a retry pending", func() bool { return n.Stats()[0].Retries == 1 })
		stopsPromptly(t, stop)
	})

	t.Run("invalid receivers", func(t *testing.T) {
		srv := newServer(t, nil)
		tests := []struct {
			name      string
			receivers []Receiver
			want      string
		}{
			{"bad url", []Receiver{{Name: "ok", URL: srv.URL}, {Name: "bad", URL: "mailto:ops@example.com"}}, `notify: receiver "bad": url:`},
			{"duplicate", []Receiver{{Name: "r", URL: srv.URL}, {Name: "r", URL: srv.URL}}, `notify: receiver "r": name: duplicate`},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				n := testNotifier(tt.receivers...)
				n.Notify(firing("a1"))
				ctx, cancel := context.WithTimeout(context.Background(), time.Second)
				defer cancel()
				err := n.Run(ctx)
				if err == nil || !strings.Contains(err.Error(), tt.want) {
					t.Fatalf("got %v, want an error containing %q", err, tt.want)
				}
				if ctx.Err() != nil {
					t.Errorf("Run returned only when ctx expired, want at once")
				}
				if got := srv.count(); got != 0 {
					t.Errorf("requests: got %d, want 0: nothing started", got)
				}
			})
		}
	})

	t.Run("already running", func(t *testing.T) {
		srv := newServer(t, nil)
		n := testNotifier(Receiver{Name: "r", URL: srv.URL})
		start(t, n)
		n.Notify(firing("a1"))
		waitFor(t, "a delivery", func() bool { return srv.count() == 1 })
		err := n.Run(context.Background())
		if err == nil || !strings.Contains(err.Error(), "already running") {
			t.Errorf("got %v, want already running", err)
		}
	})

	t.Run("no receivers", func(t *testing.T) {
		n := testNotifier()
		stop := start(t, n)
		n.Notify(firing("a1"))
		if got := n.Stats(); len(got) != 0 {
			t.Errorf("got %+v, want no stats", got)
		}
		if err := stop(); err != nil {
			t.Errorf("got %v, want nil", err)
		}
	})
}

func TestNotifier_Stats(t *testing.T) {
	n := testNotifier(Receiver{Name: "b", URL: "http://127.0.0.1:1"}, Receiver{Name: "a", URL: "http://127.0.0.1:1"})
	n.Notify(firing("a1"))
	got := n.Stats()
	want := []ReceiverStats{{Name: "b", Queued: 1}, {Name: "a", Queued: 1}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("got %+v, want %+v", got, want)
	}
}

// stopsPromptly cancels Run through stop and wants it back well before any
// timeout or backoff in play (seconds) would have let it go.
func stopsPromptly(t *testing.T, stop func() error) {
	t.Helper()
	t0 := time.Now()
	if err := stop(); err != nil {
		t.Errorf("got %v, want nil", err)
	}
	if d := time.Since(t0); d > 500*time.Millisecond {
		t.Errorf("Run returned after %v, want promptly", d)
	}
}
