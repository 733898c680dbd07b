package mochi

import (
	"errors"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"
)

const listenerID = "tcp"

// tcpListener is a mochi listener like listeners.TCP, except that:
//   - the socket is bound by Open, so bind errors are returned synchronously;
//   - a new connection must send CONNECT within connectTimeout;
//   - Close force-closes every connection after closeGrace, because mochi's
//     shutdown waits for all client goroutines and a client that never sends
//     CONNECT, or stops reading, would otherwise block it forever;
//   - transient Accept errors (e.g. out of file descriptors) are retried
//     rather than silently ending the listener.
type tcpListener struct {
	ln  net.Listener
	log *slog.Logger

	mu       sync.Mutex
	conns    map[net.Conn]struct{}
	closed   bool
	sessions sync.WaitGroup // establish goroutines, so none logs after Close
}

var _ listeners.Listener = (*tcpListener)(nil)

func newTCPListener(ln net.Listener) *tcpListener {
	return &tcpListener{
		ln:    ln,
		log:   slog.New(slog.DiscardHandler),
		conns: make(map[net.Conn]struct{}),
	}
}

func (l *tcpListener) ID() string       { return listenerID }
func (l *tcpListener) Protocol() string { return "tcp" }
func (l *tcpListener) Address() string  { return l.ln.Addr().String() }

// Init is called by mochi's AddListener; the socket is already bound.
func (l *tcpListener) Init(log *slog.Logger) error {
	l.log = log
	return nil
}

// Serve accepts connections until Close, handing each to establish in its
// own goroutine.
func (l *tcpListener) Serve(establish listeners.EstablishFn) {
	backoff := 5 * time.Millisecond
	for {
		conn, err := l.ln.Accept()
		if err != nil {
			if l.isClosed() || errors.Is(err, net.ErrClosed) {
				return
			}
			l.log.Warn("accept mqtt connection", "error", err, "retry_in", backoff)
			time.Sleep(backoff)
			backoff = min(2*backoff, time.Second)
			continue
		}
		backoff = 5 * time.Millisecond

		if !l.track(conn) {
			_ = conn.Close()
			return
		}
		// mochi replaces this deadline with one derived from the client's
		// keepalive once CONNECT has been read.
		_ = conn.SetDeadline(time.Now().Add(connectTimeout))

		go func() {
			defer l.untrack(conn)
			err := establish(l.ID(), conn)
			switch {
			case err == nil:
			case errors.Is(err, packets.ErrBadUsernameOrPassword):
				// Worth a warning: usually a misconfigured agent.
				l.log.Warn("mqtt client rejected", "error", err, "remote", conn.RemoteAddr().String())
			default:
				// Routine: abrupt disconnects, keepalive timeouts, shutdown.
				l.log.Debug("mqtt client session ended", "error", err, "remote", conn.RemoteAddr().String())
			}
		}()
	}
}

// Close stops accepting and closes this listener's connections; mochi
// then ends each session (publishing Last Wills) as its read fails.
//
// It does not call mochi's closeClients: that reads the client list with
// Clients.GetByListener, which takes the list's read lock twice (it calls
// Len inside). A client disconnecting at that moment queues for the write
// lock between the two, and the second read lock waits behind it forever:
// mochi's Close then never returns (seen once in make test, a 10-minute
// hang). For MQTT 3.1.1 clients, which is what agents and the hub speak,
// closing the connection is all closeClients would have done.
func (l *tcpListener) Close(_ listeners.CloseFn) {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return
	}
	l.closed = true
	l.mu.Unlock()

	_ = l.ln.Close()

	l.mu.Lock()
	for c := range l.conns {
		_ = c.Close()
	}
	l.mu.Unlock()

	// With every connection closed, sessions end promptly; the timeout is a
	// backstop so that Close stays bounded whatever mochi does.
	ended := make(chan struct{})
	go func() {
		l.sessions.Wait()
		close(ended)
	}()
	select {
	case <-ended:
	case <-time.After(closeGrace):
		l.log.Warn("mqtt client sessions did not end in time", "grace", closeGrace)
	}
}

// track registers a new session unless the listener is closed. Adding to
// sessions under mu, which Close takes before Wait, keeps Add before Wait.
func (l *tcpListener) track(c net.Conn) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return false
	}
	l.conns[c] = struct{}{}
	l.sessions.Add(1)
	return true
}

func (l *tcpListener) untrack(c net.Conn) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.conns, c)
	l.sessions.Done()
}

func (l *tcpListener) isClosed() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.closed
}
