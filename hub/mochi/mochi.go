// Package mochi is the hub's embedded MQTT broker, a thin wrapper around
// github.com/mochi-mqtt/server/v2.
//
// It is used when fleetwatch-hub runs without --broker, so a single command
// runs everything: agents connect to it over TCP (MQTT 3.1.1, QoS 1, retained
// status, Last Will) and the hub's own subscriber connects to it over loopback
// using URL.
//
// mochi's default capabilities drop QoS 1 messages under load ("client store
// quota reached") once a subscriber holds a few thousand unacknowledged
// messages. The hub acks only after a disk commit, so Open raises those
// limits; see capabilities.
//
// A Broker is started with Open and stopped with Close:
//
//	b, err := mochi.Open(mochi.Config{Addr: ":1883", Logger: logger})
//	if errors.Is(err, mochi.ErrAddrInUse) {
//		// suggest --broker to the user
//	}
//	defer b.Close()
package mochi

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"runtime"
	"sync"
	"syscall"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
)

const (
	// DefaultAddr is the listen address used when Config.Addr is empty.
	DefaultAddr = ":1883"

	// DefaultMaxPacketSize leaves room for telemetry payloads of up to
	// 256 KiB plus topic and headers.
	DefaultMaxPacketSize = 512 << 10

	// connectTimeout bounds how long a new TCP connection may take to send
	// CONNECT; mochi itself waits forever, which also blocks shutdown.
	connectTimeout = 10 * time.Second

	// closeGrace is how long Close lets mochi send DISCONNECT to clients
	// before it force-closes their connections.
	closeGrace = 2 * time.Second
)

// ErrAddrInUse is wrapped by the error Open returns when the listen address
// is already taken, typically by another MQTT broker.
var ErrAddrInUse = errors.New("listen address already in use")

// Config configures an embedded broker.
type Config struct {
	// Addr is the TCP listen address, e.g. ":1883" or "127.0.0.1:0".
	// Defaults to DefaultAddr.
	Addr string

	// Username and Password are optional. When Username is set, clients
	// must present exactly these credentials; otherwise anyone may connect.
	Username string
	Password string

	// MaxPacketSize is the largest MQTT packet accepted, in bytes.
	// Defaults to DefaultMaxPacketSize.
	MaxPacketSize uint32

	// Logger receives mochi's logs, with its info logs demoted to debug.
	// Defaults to discarding.
	Logger *slog.Logger
}

// Stats is a snapshot of broker counters. Dropped counters should stay 0;
// anything else means a subscriber lost messages.
type Stats struct {
	ClientsConnected int64 // currently connected clients
	MessagesReceived int64 // PUBLISH packets received since Open
	MessagesSent     int64 // PUBLISH packets sent since Open
	MessagesDropped  int64 // messages dropped because a client's write queue was full
	InflightDropped  int64 // QoS>0 messages dropped because a client's inflight store was full
	Inflight         int64 // QoS>0 messages currently awaiting acknowledgement
}

// Broker is a running embedded MQTT broker.
type Broker struct {
	srv    *mqtt.Server
	ln     *tcpListener
	logger *slog.Logger

	closeOnce sync.Once
	closeErr  error
}

// Open binds cfg.Addr and starts serving MQTT on it. If the address is taken
// the returned error wraps ErrAddrInUse.
func Open(cfg Config) (*Broker, error) {
	if cfg.Addr == "" {
		cfg.Addr = DefaultAddr
	}
	if cfg.MaxPacketSize == 0 {
		cfg.MaxPacketSize = DefaultMaxPacketSize
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}

	// Bind before creating the server so "address in use" is reported
	// synchronously to the caller rather than logged by a goroutine.
	nl, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		if isAddrInUse(err) {
			return nil, fmt.Errorf("open embedded broker on %q: %w: %w", cfg.Addr, ErrAddrInUse, err)
		}
		return nil, fmt.Errorf("open embedded broker on %q: %w", cfg.Addr, err)
	}

	srv := mqtt.New(&mqtt.Options{
		Capabilities: capabilities(cfg.MaxPacketSize),
		Logger:       slog.New(demoteInfo{cfg.Logger.Handler()}),
		InlineClient: false, // the hub talks to the broker over loopback like any client
	})
	ln := newTCPListener(nl)
	b := &Broker{srv: srv, ln: ln, logger: cfg.Logger}

	if err := srv.AddHook(newAuthHook(cfg.Username, cfg.Password), nil); err != nil {
		_ = nl.Close()
		return nil, fmt.Errorf("open embedded broker on %q: add auth hook: %w", cfg.Addr, err)
	}
	if err := srv.AddListener(ln); err != nil {
		_ = nl.Close()
		return nil, fmt.Errorf("open embedded broker on %q: add listener: %w", cfg.Addr, err)
	}
	if err := srv.Serve(); err != nil {
		_ = b.Close()
		return nil, fmt.Errorf("open embedded broker on %q: serve: %w", cfg.Addr, err)
	}

	cfg.Logger.Info("embedded mqtt broker listening",
		"addr", b.Addr(), "auth", cfg.Username != "", "max_packet_size", cfg.MaxPacketSize)
	return b, nil
}

// capabilities returns mochi's defaults with the limits that matter for the
// hub raised or bounded.
func capabilities(maxPacketSize uint32) *mqtt.Capabilities {
	c := mqtt.NewDefaultServerCapabilities()

	// The hub's subscriber acks QoS 1 messages only after a disk commit (up
	// to ~250 ms), so at 10k msg/s thousands are unacked at any time, and
	// more pile up while the hub reconnects. mochi drops once a client holds
	// MaximumInflight messages; 65535 is the most MQTT packet ids allow.
	c.MaximumInflight = math.MaxUint16

	// Per-client outbound queue; messages beyond it are dropped while the
	// hub's client reads slower than agents publish. mochi allocates it for
	// every client at connect, 8 bytes a slot, so 64Ki slots would cost each
	// agent 512 KiB of heap. 16Ki (128 KiB) is 1.6 s of stall at 10k msg/s,
	// ample if the hub's paho client uses SetOrderMatters(false) so slow
	// handlers never block its reader.
	c.MaximumClientWritesPending = 16 << 10

	// MQTT 3.1.1 clients cannot learn this limit and are disconnected when
	// they exceed it with QoS 2; QoS 1 publishes release their slot at once.
	c.ReceiveMaximum = math.MaxUint16

	c.MaximumPacketSize = maxPacketSize
	c.MaximumSessionExpiryInterval = 24 * 60 * 60 // forget abandoned persistent sessions after a day
	c.MaximumClients = 10000
	return c
}

// Addr returns the address the broker is bound to, e.g. "127.0.0.1:41883",
// or "[::]:1883" when listening on all interfaces.
func (b *Broker) Addr() string {
	return b.ln.Address()
}

// URL returns the URL a client on this host should dial, e.g.
// "tcp://127.0.0.1:1883". Unspecified listen hosts are replaced by 127.0.0.1.
func (b *Broker) URL() string {
	host, port, err := net.SplitHostPort(b.Addr())
	if err != nil {
		return "tcp://" + b.Addr()
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return "tcp://" + net.JoinHostPort(host, port)
}

// Stats returns a snapshot of the broker's counters.
func (b *Broker) Stats() Stats {
	info := b.srv.Info.Clone()
	return Stats{
		ClientsConnected: info.ClientsConnected,
		MessagesReceived: info.MessagesReceived,
		MessagesSent:     info.MessagesSent,
		MessagesDropped:  info.MessagesDropped,
		InflightDropped:  info.InflightDropped,
		Inflight:         info.Inflight,
	}
}

// Close disconnects all clients and stops the broker. It returns within a
// few seconds even if clients stop reading, and is safe to call repeatedly.
//
// Clients whose connection Close ends have their Last Will published, so the
// hub should disconnect its own subscriber first.
func (b *Broker) Close() error {
	b.closeOnce.Do(func() {
		if err := b.srv.Close(); err != nil {
			b.closeErr = fmt.Errorf("close embedded broker on %q: %w", b.Addr(), err)
			return
		}
		b.logger.Info("embedded mqtt broker stopped", "addr", b.Addr())
	})
	return b.closeErr
}

// isAddrInUse reports whether err is a failure to bind an address that is
// already bound.
func isAddrInUse(err error) bool {
	var errno syscall.Errno
	if !errors.As(err, &errno) {
		return false
	}
	// Windows reports WSAEADDRINUSE (10048), which syscall.EADDRINUSE isn't.
	return errno == syscall.EADDRINUSE || (runtime.GOOS == "windows" && errno == 10048)
}
