// Package mosquittotest runs a real mosquitto broker for tests, on a free
// loopback port with its own config, data and log in t.TempDir(), the way
// net/http/httptest runs a server.
//
// Where the mosquitto binary is missing, tests are skipped with a reason,
// unless FLEETWATCH_REQUIRE_MOSQUITTO=1 (set by `make test`), which turns
// that into a failure saying how to install it.
package mosquittotest

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Option configures Start.
type Option func(*Broker)

// WithTLS makes the listener TLS-only with the given PEM certificate and
// key; clients dial ssl://127.0.0.1:<port>.
func WithTLS(certFile, keyFile string) Option {
	return func(b *Broker) { b.certFile, b.keyFile = certFile, keyFile }
}

// Broker is a running mosquitto process.
type Broker struct {
	tb   testing.TB
	bin  string
	dir  string
	Port int

	certFile, keyFile string

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
	log    *bytes.Buffer
}

// Binary returns the path of mosquitto, or "" if it is not installed.
func Binary() string {
	if p, err := exec.LookPath("mosquitto"); err == nil {
		return p
	}
	for _, p := range []string{"/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return ""
}

// Start runs mosquitto on a free 127.0.0.1 port and stops it at cleanup.
func Start(tb testing.TB, opts ...Option) *Broker {
	tb.Helper()
	bin := Binary()
	if bin == "" {
		const how = "mosquitto is not installed: run `apt-get install -y mosquitto` (or `make deps`)"
		if os.Getenv("FLEETWATCH_REQUIRE_MOSQUITTO") == "1" {
			tb.Fatal(how)
		}
		tb.Skip(how)
	}
	b := &Broker{tb: tb, bin: bin, dir: tb.TempDir()}
	for _, o := range opts {
		o(b)
	}
	for attempt := 0; ; attempt++ {
		b.Port = freePort(tb)
		err := b.start()
		if err == nil {
			break
		}
		if attempt == 4 {
			tb.Fatalf("start mosquitto: %v\n%s", err, b.Log())
		}
	}
	tb.Cleanup(func() {
		b.Stop()
		if tb.Failed() {
			tb.Logf("mosquitto log:\n%s", b.Log())
		}
	})
	return b
}

// URL is the broker's tcp:// (or ssl:// with TLS) URL.
func (b *Broker) URL() string {
	if b.certFile != "" {
		return "ssl://" + b.Addr()
	}
	return "tcp://" + b.Addr()
}

// Addr is host:port.
func (b *Broker) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(b.Port)) }

func (b *Broker) start() error {
	conf := fmt.Sprintf(`listener %d 127.0.0.1
allow_anonymous true
user root
persistence true
persistence_location %s/
autosave_interval 1
max_inflight_messages 10000
max_queued_messages 100000
max_queued_bytes 0
max_packet_size 524288
set_tcp_nodelay true
log_dest stderr
log_type error
log_type warning
log_type notice
connection_messages true
`, b.Port, b.dir)
	if b.certFile != "" {
		conf += fmt.Sprintf("certfile %s\nkeyfile %s\n", b.certFile, b.keyFile)
	}
	path := filepath.Join(b.dir, "mosquitto.conf")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		return err
	}
	b.mu.Lock()
	b.log = new(bytes.Buffer)
	cmd := exec.Command(b.bin, "-c", path)
	cmd.Stdout, cmd.Stderr = syncWriter{&b.mu, b.log}, syncWriter{&b.mu, b.log}
	exited := make(chan struct{})
	b.cmd, b.exited = cmd, exited
	b.mu.Unlock()
	if err := cmd.Start(); err != nil {
		close(exited)
		return err
	}
	go func() { cmd.Wait(); close(exited) }() //nolint:errcheck // exit status is in the log
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return fmt.Errorf("mosquitto exited at start")
		default:
		}
		if c, err := net.DialTimeout("tcp", b.Addr(), 100*time.Millisecond); err == nil {
			c.Close()
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	cmd.Process.Kill() //nolint:errcheck
	return fmt.Errorf("mosquitto did not listen on %s within 5s", b.Addr())
}

// Stop terminates the broker gracefully (it saves its persistence file).
func (b *Broker) Stop() { b.signal(syscall.SIGTERM) }

// Kill SIGKILLs the broker.
func (b *Broker) Kill() { b.signal(syscall.SIGKILL) }

func (b *Broker) signal(sig syscall.Signal) {
	b.mu.Lock()
	cmd, exited := b.cmd, b.exited
	b.cmd = nil
	b.mu.Unlock()
	if cmd == nil || cmd.Process == nil {
		return
	}
	cmd.Process.Signal(sig) //nolint:errcheck // already gone is fine
	select {
	case <-exited:
	case <-time.After(5 * time.Second):
		cmd.Process.Kill() //nolint:errcheck
	}
}

// Restart starts the broker again on the same port with the same data.
func (b *Broker) Restart() {
	b.tb.Helper()
	b.Stop()
	if err := b.start(); err != nil {
		b.tb.Fatalf("restart mosquitto: %v\n%s", err, b.Log())
	}
}

// Log returns what the broker printed.
func (b *Broker) Log() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.log == nil {
		return ""
	}
	return b.log.String()
}

type syncWriter struct {
	mu *sync.Mutex
	b  *bytes.Buffer
}

func (w syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func freePort(tb testing.TB) int {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("find a free port: %v", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
