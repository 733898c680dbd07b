package notify

import (
	"context"
	"net/http"
	"testing"
	"testing/synctest"
	"time"
)

// TestNotifier_repeatHours runs the default 4 h repeat on the bubble's fake
// clock: a day of firing takes no real time. The receiver is a real HTTP
// server outside the bubble; without keep-alive no connection goroutine
// idles on the network, so the clock advances between posts.
func TestNotifier_repeatHours(t *testing.T) {
	srv := newServer(t, nil)
	synctest.Test(t, func(t *testing.T) {
		n := &Notifier{
			Receivers: []Receiver{{Name: "r", URL: srv.URL}}, // RepeatInterval 0: DefaultRepeat, 4h
			Client:    &http.Client{Transport: &http.Transport{DisableKeepAlives: true}},
		}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- n.Run(ctx) }()
		a := firing("a1")
		n.Notify(a)
		sent := func() int {
			// A post in flight is network I/O, which the bubble does not
			// wait for: poll the server a little in real time.
			for range 200 {
				synctest.Wait()
				if st := n.Stats()[0]; st.Queued == 0 && int(st.Sent) == srv.count() {
					return srv.count()
				}
				time.Sleep(time.Millisecond) // fake; yields to the post
			}
			return srv.count()
		}
		if got := sent(); got != 1 {
			t.Fatalf("at start: %d posts, want 1", got)
		}
		time.Sleep(4*time.Hour - time.Minute)
		if got := sent(); got != 1 {
			t.Errorf("a minute before 4 h: %d posts, want 1", got)
		}
		time.Sleep(2 * time.Minute)
		if got := sent(); got != 2 {
			t.Errorf("just past 4 h: %d posts, want 2 (one repeat)", got)
		}
		time.Sleep(20 * time.Hour)
		if got := sent(); got != 7 {
			t.Errorf("after 24 h: %d posts, want 7 (six repeats)", got)
		}
		n.Notify(resolved(a))
		time.Sleep(8 * time.Hour)
		if got := sent(); got != 8 {
			t.Errorf("8 h after the resolve: %d posts, want 8 (the resolve, no more repeats)", got)
		}
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run = %v", err)
		}
	})
}
