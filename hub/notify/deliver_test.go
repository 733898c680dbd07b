package notify

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestNotifier_retry(t *testing.T) {
	t.Run("500 then success", func(t *testing.T) {
		srv := newServer(t, func(_ *server, n int, w http.ResponseWriter, _ *http.Request) {
			if n == 0 {
				w.WriteHeader(http.StatusInternalServerError)
			}
		})
		n := testNotifier(Receiver{Name: "r", URL: srv.URL})
		start(t, n)
		n.Notify(firing("a1"))
		waitFor(t, "a delivery", func() bool { return n.Stats()[0].Sent == 1 })
		st := n.Stats()[0]
		if st.Retries != 1 || st.Failed != 0 {
			t.Errorf("retries, failed: got %d, %d, want 1, 0", st.Retries, st.Failed)
		}
		got := decodeAll(t, srv.received())
		if len(got) != 2 || got[0].Alert.ID != "a1" || got[1].Alert.ID != "a1" {
			t.Errorf("got %+v, want a1 twice", got)
		}
	})

	t.Run("Retry-After honoured up to MaxBackoff", func(t *testing.T) {
		srv := newServer(t, func(_ *server, n int, w http.ResponseWriter, _ *http.Request) {
			if n == 0 {
				w.Header().Set("Retry-After", "1")
				w.WriteHeader(http.StatusTooManyRequests)
			}
		})
		n := testNotifier(Receiver{Name: "r", URL: srv.URL})
		n.MaxBackoff = 150 * time.Millisecond // MinBackoff alone would wait at most 5ms
		start(t, n)
		n.Notify(firing("a1"))
		waitFor(t, "a delivery", func() bool { return n.Stats()[0].Sent == 1 })
		hits := srv.received()
		if len(hits) != 2 {
			t.Fatalf("got %d requests, want 2", len(hits))
		}
		if gap := hits[1].At.Sub(hits[0].At); gap < 140*time.Millisecond || gap > 700*time.Millisecond {
			t.Errorf("gap between attempts: got %v, want about 150ms (Retry-After 1s capped)", gap)
		}
		if got := n.Stats()[0].Retries; got != 1 {
			t.Errorf("retries: got %d, want 1", got)
		}
	})

	t.Run("400 gives up at once", func(t *testing.T) {
		body := strings.Repeat("x", 200) + "TAIL"
		srv := newServer(t, status(http.StatusBadRequest, body))
		var logs logBuf
		n := testNotifier(Receiver{Name: "r", URL: srv.URL + "/T0/s3cret"})
		n.Logger = logs.logger()
		start(t, n)
		n.Notify(firing("a1"))
		waitFor(t, "a failure", func() bool { return n.Stats()[0].Failed == 1 })
		time.Sleep(30 * time.Millisecond) // room for a wrong retry to show
		if got := srv.count(); got != 1 {
			t.Errorf("requests: got %d, want 1", got)
		}
		if st := n.Stats()[0]; st.Retries != 0 || st.Sent != 0 {
			t.Errorf("retries, sent: got %d, %d, want 0, 0", st.Retries, st.Sent)
		}
		recs := logs.records(t, "notification failed")
		if len(recs) != 1 {
			t.Fatalf("got %d failure logs, want 1", len(recs))
		}
		rec := recs[0]
		if rec["receiver"] != "r" || rec["alert"] != "a1" || rec["status"] != float64(400) || rec["attempt"] != float64(1) {
			t.Errorf("got %v, want receiver r, alert a1, status 400, attempt 1", rec)
		}
		if got, want := rec["body"], strings.Repeat("x", 200); got != want {
			t.Errorf("body: got %q, want the first 200 bytes %q", got, want)
		}
		if strings.Contains(logs.String(), "s3cret") {
			t.Errorf("log %s contains the URL's secret", logs.String())
		}
	})

	t.Run("timeout retried", func(t *testing.T) {
		srv := newServer(t, func(s *server, n int, _ http.ResponseWriter, r *http.Request) {
			if n == 0 {
				s.hang(r)
			}
		})
		n := testNotifier(Receiver{Name: "r", URL: srv.URL, Timeout: 50 * time.Millisecond})
		start(t, n)
		n.Notify(firing("a1"))
		waitFor(t, "a delivery", func() bool { return n.Stats()[0].Sent == 1 })
		hits := srv.received()
		if len(hits) != 2 {
			t.Fatalf("requests: got %d, want 2", len(hits))
		}
		if gap := hits[1].At.Sub(hits[0].At); gap < 50*time.Millisecond {
			t.Errorf("gap: got %v, want at least the 50ms timeout", gap)
		}
		if got := n.Stats()[0].Retries; got != 1 {
			t.Errorf("retries: got %d, want 1", got)
		}
	})

	t.Run("network error retried until MaxAttempts", func(t *testing.T) {
		dead := httptest.NewServer(http.NotFoundHandler())
		url := dead.URL + "/s3cret"
		dead.Close()
		var logs logBuf
		n := testNotifier(Receiver{Name: "r", URL: url})
		n.MaxAttempts = 3
		n.Logger = logs.logger()
		start(t, n)
		n.Notify(firing("a1"))
		waitFor(t, "a failure", func() bool { return n.Stats()[0].Failed == 1 })
		if got := n.Stats()[0].Retries; got != 2 {
			t.Errorf("retries: got %d, want 2", got)
		}
		recs := logs.records(t, "notification failed")
		if len(recs) != 1 {
			t.Fatalf("got %d failure logs, want 1", len(recs))
		}
		if err, _ := recs[0]["err"].(string); !strings.HasPrefix(err, `post to "r": `) || strings.Contains(err, "s3cret") {
			t.Errorf("err: got %q, want it to start with the op and not hold the URL", err)
		}
	})

	t.Run("MaxAttempts then next message, in order", func(t *testing.T) {
		srv := newServer(t, status(http.StatusBadGateway, ""))
		n := testNotifier(Receiver{Name: "r", URL: srv.URL})
		n.MaxAttempts = 3
		start(t, n)
		n.Notify(firing("a1"))
		n.Notify(firing("a2"))
		waitFor(t, "two failures", func() bool { return n.Stats()[0].Failed == 2 })
		st := n.Stats()[0]
		if st.Retries != 4 || st.Sent != 0 {
			t.Errorf("retries, sent: got %d, %d, want 4, 0", st.Retries, st.Sent)
		}
		var ids []string
		for _, d := range decodeAll(t, srv.received()) {
			ids = append(ids, d.Alert.ID)
		}
		if got, want := strings.Join(ids, " "), "a1 a1 a1 a2 a2 a2"; got != want {
			t.Errorf("got %s, want %s", got, want)
		}
	})

	t.Run("retry holds back resolved", func(t *testing.T) {
		srv := newServer(t, func(_ *server, n int, w http.ResponseWriter, _ *http.Request) {
			if n == 0 {
				w.WriteHeader(http.StatusServiceUnavailable)
			}
		})
		n := testNotifier(Receiver{Name: "r", URL: srv.URL})
		start(t, n)
		n.Notify(firing("a1"))
		n.Notify(resolved(firing("a1")))
		waitFor(t, "two deliveries", func() bool { return n.Stats()[0].Sent == 2 })
		var states []string
		for _, d := range decodeAll(t, srv.received()) {
			states = append(states, d.Status)
		}
		if got, want := strings.Join(states, " "), "firing firing resolved"; got != want {
			t.Errorf("got %s, want %s", got, want)
		}
	})

	t.Run("2xx with a large body", func(t *testing.T) {
		srv := newServer(t, func(_ *server, _ int, w http.ResponseWriter, _ *http.Request) {
			_, _ = io.WriteString(w, strings.Repeat("ok", 1<<16))
		})
		n := testNotifier(Receiver{Name: "r", URL: srv.URL})
		start(t, n)
		n.Notify(firing("a1"))
		n.Notify(firing("a2"))
		waitFor(t, "two deliveries", func() bool { return n.Stats()[0].Sent == 2 })
		if got := srv.count(); got != 2 {
			t.Errorf("requests: got %d, want 2", got)
		}
	})
}

func TestBackoff(t *testing.T) {
	lo, hi := 10*time.Millisecond, 100*time.Millisecond
	for attempt, base := range map[int]time.Duration{1: 10, 2: 20, 3: 40, 4: 80, 5: 100, 60: 100} {
		base *= time.Millisecond
		seen := map[time.Duration]bool{}
		for range 200 {
			got := backoff(attempt, lo, hi)
			if got < base/2 || got > base {
				t.Fatalf("attempt %d: got %v, want within [%v, %v]", attempt, got, base/2, base)
			}
			seen[got] = true
		}
		if len(seen) < 2 {
			t.Errorf("attempt %d: got the same wait 200 times, want jitter", attempt)
		}
	}
	if got := backoff(100, time.Second, time.Duration(1<<62)); got <= 0 {
		t.Errorf("huge bounds: got %v, want positive (no overflow)", got)
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		in     string
		want   time.Duration
		wantOK bool
	}{
		{"", 0, false},
		{"3", 3 * time.Second, true},
		{" 0 ", 0, true},
		{"-1", 0, false},
		{"soon", 0, false},
		{now.Add(5 * time.Second).Format(http.TimeFormat), 5 * time.Second, true},
		{now.Add(-time.Hour).Format(http.TimeFormat), 0, true},
		{"99999999999999999", (1 << 31) * time.Second, true},
	}
	for _, tt := range tests {
		got, ok := retryAfter(tt.in, now)
		if got != tt.want || ok != tt.wantOK {
			t.Errorf("retryAfter(%q): got %v, %v, want %v, %v", tt.in, got, ok, tt.want, tt.wantOK)
		}
	}
}
