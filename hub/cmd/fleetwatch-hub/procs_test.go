package main_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/gorilla/websocket"
	bolt "go.etcd.io/bbolt"
)

// bins holds the binaries built once by TestMain.
var bins struct {
	dir string
	err error
}

func TestMain(m *testing.M) {
	flag.Parse()
	dir, err := os.MkdirTemp("", "fleetwatch-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bins.dir = dir
	if !testing.Short() {
		cmd := exec.Command("go", "build", "-o", dir+"/",
			"github.com/fleetwatch/fleetwatch/hub/cmd/fleetwatch-hub",
			"github.com/fleetwatch/fleetwatch/agent/cmd/fleetwatch-agent",
			"github.com/fleetwatch/fleetwatch/agent/cmd/fleetwatch-sim")
		cmd.Stderr = os.Stderr
		bins.err = cmd.Run()
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func binary(t testing.TB, name string) string {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end: builds and runs real processes")
	}
	if bins.err != nil {
		t.Fatalf("build binaries: %v", bins.err)
	}
	return filepath.Join(bins.dir, name)
}

// proc is a real fleetwatch process with its output captured.
type proc struct {
	t    testing.TB
	name string
	cmd  *exec.Cmd
	mu   sync.Mutex
	out  bytes.Buffer
	done chan struct{}
}

func startProc(t testing.TB, name string, args ...string) *proc {
	t.Helper()
	p := &proc{t: t, name: name, done: make(chan struct{})}
	p.cmd = exec.Command(binary(t, name), args...)
	p.cmd.Stdout = p
	p.cmd.Stderr = p
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() { p.cmd.Wait(); close(p.done) }() //nolint:errcheck // status checked by callers
	t.Cleanup(func() {
		p.signal(syscall.SIGKILL)
		if t.Failed() {
			t.Logf("%s output:\n%s", name, p.output())
		}
	})
	return p
}

func (p *proc) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.Write(b)
}

func (p *proc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

// signal sends sig and waits up to 10 s for the exit.
func (p *proc) signal(sig syscall.Signal) bool {
	select {
	case <-p.done:
		return true
	default:
	}
	p.cmd.Process.Signal(sig) //nolint:errcheck // gone already is fine
	select {
	case <-p.done:
		return true
	case <-time.After(10 * time.Second):
		p.cmd.Process.Kill() //nolint:errcheck
		<-p.done
		return false
	}
}

func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// eventually retries f every 20 ms until it returns nil or timeout passes.
func eventually(t testing.TB, timeout time.Duration, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var err error
	for time.Now().Before(deadline) {
		if err = f(); err == nil {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s: not within %s: %v", what, timeout, err)
}

// checkBolt opens a bbolt file read-only and runs bbolt's own consistency
// check, knowing nothing of the store's layout.
func checkBolt(path string) error {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 2 * time.Second, ReadOnly: true})
	if err != nil {
		return fmt.Errorf("bolt open %s: %w", filepath.Base(path), err)
	}
	err = db.View(func(tx *bolt.Tx) error {
		var errs []error
		for err := range tx.Check() { // drain: the checker blocks until read
			errs = append(errs, err)
		}
		return errors.Join(errs...)
	})
	if cerr := db.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("close: %w", cerr)
	}
	if err != nil {
		return fmt.Errorf("bbolt check of %s: %w", filepath.Base(path), err)
	}
	return nil
}

func getJSON(url string, v any) (int, http.Header, error) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, resp.Header, err
	}
	if v != nil && resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(body, v); err != nil {
			return resp.StatusCode, resp.Header, fmt.Errorf("decode %s: %w: %s", url, err, body)
		}
	}
	return resp.StatusCode, resp.Header, nil
}

// waitHealthy returns when /healthz first answered 200.
func waitHealthy(t testing.TB, base string) time.Time {
	t.Helper()
	eventually(t, 15*time.Second, "hub healthy", func() error {
		code, _, err := getJSON(base+"/healthz", nil)
		if err != nil {
			return err
		}
		if code != http.StatusOK {
			return fmt.Errorf("healthz %d", code)
		}
		return nil
	})
	return time.Now()
}

// wsClient is a real WebSocket client collecting server messages.
type wsClient struct {
	conn *websocket.Conn
	msgs chan map[string]any
}

func dialWS(t *testing.T, base string) *wsClient {
	t.Helper()
	url := "ws" + strings.TrimPrefix(base, "http") + "/ws"
	conn, _, err := websocket.DefaultDialer.Dial(url, http.Header{"Origin": {base}})
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	c := &wsClient{conn: conn, msgs: make(chan map[string]any, 4096)}
	go func() {
		defer close(c.msgs)
		for {
			_, b, err := conn.ReadMessage()
			if err != nil {
				return
			}
			var m map[string]any
			if json.Unmarshal(b, &m) == nil {
				select {
				case c.msgs <- m:
				default: // the test stopped reading
				}
			}
		}
	}()
	t.Cleanup(func() { conn.Close() })
	return c
}

func (c *wsClient) send(t *testing.T, v any) {
	t.Helper()
	if err := c.conn.WriteJSON(v); err != nil {
		t.Fatalf("ws write: %v", err)
	}
}

// waitFor returns the first message for which match is true.
func (c *wsClient) waitFor(t *testing.T, timeout time.Duration, what string, match func(map[string]any) bool) map[string]any {
	t.Helper()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		select {
		case m, ok := <-c.msgs:
			if !ok {
				t.Fatalf("ws closed while waiting for %s", what)
			}
			if match(m) {
				return m
			}
		case <-timer.C:
			t.Fatalf("ws: no %s within %s", what, timeout)
		}
	}
}

// sseEvent is one parsed server-sent event.
type sseEvent struct {
	ID, Event, Data string
}

func readSSE(ctx context.Context, t *testing.T, url string) <-chan sseEvent {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("sse %s: %v", url, err)
	}
	if got, want := resp.Header.Get("Content-Type"), "text/event-stream"; got != want {
		t.Fatalf("sse Content-Type=%q, want %q", got, want)
	}
	out := make(chan sseEvent, 4096)
	go func() {
		defer resp.Body.Close()
		defer close(out)
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 4<<20)
		var ev sseEvent
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if ev.Event != "" || ev.Data != "" {
					select {
					case out <- ev:
					default:
					}
				}
				ev = sseEvent{}
			case strings.HasPrefix(line, "id: "):
				ev.ID = line[4:]
			case strings.HasPrefix(line, "event: "):
				ev.Event = line[7:]
			case strings.HasPrefix(line, "data: "):
				ev.Data = line[6:]
			}
		}
	}()
	return out
}

// observer is a plain MQTT client watching the broker, as mosquitto_sub.
type observer struct {
	client mqtt.Client
	mu     sync.Mutex
	msgs   []mqtt.Message
}

func observe(t *testing.T, broker, filter string) *observer {
	t.Helper()
	o := &observer{}
	subscribed := make(chan error, 8)
	handler := func(_ mqtt.Client, m mqtt.Message) {
		o.mu.Lock()
		o.msgs = append(o.msgs, m)
		o.mu.Unlock()
	}
	// Subscribe on every connect: the embedded broker restarts with the hub.
	// A persistent session: while the observer reconnects after a broker
	// restart, the broker queues what the agent replays, so the observer
	// sees every publish, as mosquitto_sub -c would.
	opts := mqtt.NewClientOptions().AddBroker(broker).SetClientID(fmt.Sprintf("observer-%d", time.Now().UnixNano())).
		SetCleanSession(false).
		SetOrderMatters(false).SetMaxReconnectInterval(200 * time.Millisecond).
		SetOnConnectHandler(func(c mqtt.Client) {
			tok := c.Subscribe(filter, 1, handler)
			go func() { tok.WaitTimeout(5 * time.Second); subscribed <- tok.Error() }()
		})
	o.client = mqtt.NewClient(opts)
	if tok := o.client.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("observer connect: %v", tok.Error())
	}
	select {
	case err := <-subscribed:
		if err != nil {
			t.Fatalf("observer subscribe: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("observer subscribe: timeout")
	}
	t.Cleanup(func() { o.client.Disconnect(100) })
	return o
}

func (o *observer) publish(t *testing.T, topic string, payload []byte) {
	t.Helper()
	tok := o.client.Publish(topic, 1, false, payload)
	if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("publish %s: %v", topic, tok.Error())
	}
}

// messages returns what arrived on topic so far.
func (o *observer) messages(topic string) [][]byte {
	o.mu.Lock()
	defer o.mu.Unlock()
	var out [][]byte
	for _, m := range o.msgs {
		if m.Topic() == topic {
			out = append(out, m.Payload())
		}
	}
	return out
}

// driveDevice is a device the test steers: it says it is online, then
// every interval publishes sim.temp (whatever the returned value holds,
// starting at temp), a changing cpu.percent and the tag site=lab, until
// the test ends.
func driveDevice(t *testing.T, broker, id string, interval time.Duration, temp int64) *atomic.Int64 {
	t.Helper()
	obs := observe(t, broker, "fleetwatch/"+id+"/ack")
	obs.publish(t, "fleetwatch/"+id+"/status", fmt.Appendf(nil, `{"v":1,"state":"online","boot":"b1","interval_ms":%d,"model":"Raspberry Pi 4 Model B"}`, interval.Milliseconds()))
	v := new(atomic.Int64)
	v.Store(temp)
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	t.Cleanup(func() { stop(); <-done }) // before the observer disconnects
	go func() {
		defer close(done)
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for seq := 1; ; seq++ {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			p := fmt.Sprintf(`{"v":1,"device":%q,"boot":"b1","tags":{"site":"lab"},"readings":[{"seq":%d,"ts":%d,"metrics":{"sim.temp":%d,"cpu.percent":%d}}]}`,
				id, seq, time.Now().UnixMilli(), v.Load(), 20+seq%7)
			obs.client.Publish("fleetwatch/"+id+"/telemetry", 1, false, []byte(p))
		}
	}()
	return v
}
