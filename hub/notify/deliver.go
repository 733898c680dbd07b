package notify

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// userAgent identifies the hub to receivers (and in their access logs).
const userAgent = "fleetwatch-hub"

// bodySnippet is how much of a refusal's body is logged: enough for the
// receiver's error message, not enough to flood the log.
const bodySnippet = 200

// work delivers rx's messages one at a time, in order, until ctx is done.
func (s *state) work(ctx context.Context, rx *rxState) {
	for ctx.Err() == nil {
		m, ok := rx.q.pop()
		if !ok {
			select {
			case <-ctx.Done():
			case <-rx.q.wake:
			}
			continue
		}
		s.deliver(ctx, rx, m)
	}
}

// outcome is the result of one attempt.
type outcome struct {
	err        error         // nil on success
	retry      bool          // worth another attempt
	status     int           // HTTP status, 0 if none
	body       string        // start of the body of a non-2xx response
	retryAfter time.Duration // from Retry-After; negative when absent
}

// deliver sends m to rx, retrying as the package rules say. It returns
// early, without counting a failure, only when ctx is done.
func (s *state) deliver(ctx context.Context, rx *rxState, m message) {
	body, hdr, err := encode(rx.r.Format, m)
	if err != nil {
		s.log.Error("notification not sent", "receiver", rx.r.Name, "alert", m.alert.ID, "err", err)
		rx.failed.Add(1)
		return
	}
	for attempt := 1; ; attempt++ {
		o := s.post(ctx, rx, body, hdr)
		if o.err == nil {
			rx.sent.Add(1)
			return
		}
		if ctx.Err() != nil {
			s.log.Debug("notification abandoned at shutdown", "receiver", rx.r.Name, "alert", m.alert.ID, "attempt", attempt)
			return
		}
		if !o.retry || attempt >= s.maxAttempts {
			// Log before counting, so whoever sees the count can find the reason.
			s.log.Warn("notification failed", "receiver", rx.r.Name, "alert", m.alert.ID,
				"status", o.status, "attempt", attempt, "err", o.err, "body", o.body)
			rx.failed.Add(1)
			return
		}
		wait := backoff(attempt, s.minBackoff, s.maxBackoff)
		if o.retryAfter >= 0 {
			wait = min(o.retryAfter, s.maxBackoff)
		}
		rx.retries.Add(1)
		s.log.Debug("notification will be retried", "receiver", rx.r.Name, "alert", m.alert.ID,
			"status", o.status, "attempt", attempt, "wait", wait, "err", o.err)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			s.log.Debug("notification abandoned at shutdown", "receiver", rx.r.Name, "alert", m.alert.ID, "attempt", attempt)
			return
		case <-t.C:
		}
	}
}

// post makes one attempt, bounded by the receiver's Timeout.
func (s *state) post(ctx context.Context, rx *rxState, body []byte, hdr http.Header) outcome {
	ctx, cancel := context.WithTimeout(ctx, rx.r.Timeout)
	defer cancel()
	fail := func(err error) error { return fmt.Errorf("post to %q: %w", rx.r.Name, err) }
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, rx.r.URL, bytes.NewReader(body))
	if err != nil {
		return outcome{err: fail(stripURL(err)), retryAfter: -1}
	}
	req.Header = hdr.Clone()
	req.Header.Set("User-Agent", userAgent)
	for k, v := range rx.r.Headers {
		req.Header.Set(k, v)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		// Network errors and timeouts are usually transient.
		return outcome{err: fail(stripURL(err)), retry: true, retryAfter: -1}
	}
	defer resp.Body.Close()
	o := outcome{status: resp.StatusCode, retryAfter: -1}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, bodySnippet))
		o.body = string(b)
		o.err = fail(fmt.Errorf("status %d", resp.StatusCode))
		o.retry = resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500
		if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable {
			if d, ok := retryAfter(resp.Header.Get("Retry-After"), time.Now()); ok {
				o.retryAfter = d
			}
		}
	}
	// Drain a little so the connection can be reused; a huge body is not
	// worth reading, the connection is cheaper to redial.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	return o
}

// stripURL unwraps *url.Error, whose message repeats the URL: webhook URLs
// often carry a secret, and errors end up in logs.
func stripURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// backoff is the wait after the attempt-th failure: lo doubling per attempt
// up to hi, with equal jitter. Half is fixed so retries never bunch at zero;
// half is random so receivers that failed together don't retry in lockstep.
func backoff(attempt int, lo, hi time.Duration) time.Duration {
	d := lo
	for i := 1; i < attempt && d < hi; i++ {
		if d > hi/2 {
			d = hi
			break
		}
		d *= 2
	}
	d = min(d, hi)
	half := d / 2
	return half + rand.N(d-half+1)
}

// retryAfter parses a Retry-After header: delay-seconds or an HTTP date.
func retryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs < 0 {
			return 0, false
		}
		// Clamp before multiplying so a silly value can't overflow; the
		// caller caps at MaxBackoff anyway.
		return time.Duration(min(secs, 1<<31)) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0), true
	}
	return 0, false
}
