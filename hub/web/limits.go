package web

import (
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
)

// Defaults for the connection limits, over WebSocket, SSE and long-poll
// together.
const (
	DefaultMaxConns      = 20_000
	DefaultMaxConnsPerIP = 200
	limitRetryAfter      = 5 // seconds
)

// limiter counts live streaming connections, in total and per client IP.
type limiter struct {
	mu    sync.Mutex
	total int
	perIP map[string]int
	byTr  map[string]int

	refusedTotal, refusedIP int64
}

// admit counts a new streaming connection or refuses it: 503 when the hub
// is full, 429 when one address holds too many. Both say when to retry.
func (s *Server) admit(w http.ResponseWriter, r *http.Request, transport string) (release func(), ok bool) {
	ip := clientIP(r)
	l := &s.limits
	l.mu.Lock()
	switch {
	case l.total >= s.MaxConns:
		l.refusedTotal++
		l.mu.Unlock()
		w.Header().Set("Retry-After", strconv.Itoa(limitRetryAfter))
		writeError(w, http.StatusServiceUnavailable, "too many connections: the hub holds "+strconv.Itoa(s.MaxConns)+"; retry later")
		return nil, false
	case l.perIP[ip] >= s.MaxConnsPerIP:
		l.refusedIP++
		l.mu.Unlock()
		w.Header().Set("Retry-After", strconv.Itoa(limitRetryAfter))
		writeError(w, http.StatusTooManyRequests, "too many connections from "+ip+": at most "+strconv.Itoa(s.MaxConnsPerIP))
		return nil, false
	}
	if l.perIP == nil {
		l.perIP, l.byTr = map[string]int{}, map[string]int{}
	}
	l.total++
	l.perIP[ip]++
	l.byTr[transport]++
	l.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			l.mu.Lock()
			l.total--
			l.byTr[transport]--
			if l.perIP[ip]--; l.perIP[ip] <= 0 {
				delete(l.perIP, ip)
			}
			l.mu.Unlock()
		})
	}, true
}

// connections returns the live connections per transport.
func (l *limiter) connections() (byTransport map[string]int, refusedTotal, refusedIP int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := map[string]int{"ws": 0, "sse": 0, "poll": 0}
	for k, v := range l.byTr {
		out[k] = v
	}
	return out, l.refusedTotal, l.refusedIP
}

// clientIP is the peer's address; behind a proxy on the same host (nginx)
// it is the address the proxy appended to X-Forwarded-For. Only a loopback
// peer is trusted to say so.
func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		if xff := r.Header.Get("X-Forwarded-For"); xff != "" {
			parts := strings.Split(xff, ",")
			if fwd := strings.TrimSpace(parts[len(parts)-1]); net.ParseIP(fwd) != nil {
				return fwd
			}
		}
	}
	return host
}
