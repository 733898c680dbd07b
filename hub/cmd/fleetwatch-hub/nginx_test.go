package main_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/fleetwatch/fleetwatch/agent/mqttpub/mosquittotest"
	"github.com/fleetwatch/fleetwatch/agent/telemetry"
)

// nginxShippedConf is the site config users install; the test runs it.
var nginxShippedConf = filepath.Join("..", "..", "..", "configs", "nginx.conf")

// nginxLive bounds how long a live event may take through the proxy. A
// proxy that buffers or compresses the stream holds small events far
// longer: until its buffer fills or the stream ends.
const nginxLive = 5 * time.Second

// TestNginx_ProxiesLiveFeeds runs a real nginx with configs/nginx.conf in
// front of the real hub and checks the WebSocket and SSE streams pass
// through it live: the upgrade headers, Host (for the hub's Origin check)
// and unbuffered event streams.
func TestNginx_ProxiesLiveFeeds(t *testing.T) {
	binary(t, "fleetwatch-hub") // skips under -short, as the other end-to-end tests
	bin := nginxBinary(t)
	broker := mosquittotest.Start(t)
	hubAddr := freeAddr(t)
	startProc(t, "fleetwatch-hub", "--broker", broker.URL(), "--http", hubAddr, "--data", t.TempDir(), "--commit-interval", "50ms")
	waitHealthy(t, "http://"+hubAddr)
	base := nginxStart(t, bin, hubAddr)
	pub := observe(t, broker.URL(), "fleetwatch/+/ack")

	t.Run("WebSocket", func(t *testing.T) {
		ws := dialWS(t, base) // Origin: the nginx address, as a browser on it sends
		ws.send(t, map[string]string{"type": "subscribe", "channel": "fleet"})
		ws.waitFor(t, nginxLive, "fleet snapshot", func(m map[string]any) bool { return m["type"] == "fleet" })
		ws.send(t, map[string]string{"type": "subscribe", "channel": "device:nginx-ws"})
		ws.waitFor(t, nginxLive, "subscribed", func(m map[string]any) bool {
			return m["type"] == "subscribed" && m["channel"] == "device:nginx-ws"
		})
		nginxPublishReading(t, pub, "nginx-ws", 41)
		m := ws.waitFor(t, nginxLive, "live reading", func(m map[string]any) bool { return m["type"] == "reading" })
		if got, want := m["channel"], "device:nginx-ws"; got != want {
			t.Fatalf("channel=%v, want %v", got, want)
		}
		data, _ := m["data"].(map[string]any)
		metrics, _ := data["metrics"].(map[string]any)
		if got, want := metrics["nginx.marker"], 41.0; got != want {
			t.Fatalf("nginx.marker=%v, want %v", got, want)
		}
	})

	t.Run("WebSocketForeignOrigin", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), nginxLive)
		defer cancel()
		d := websocket.Dialer{HandshakeTimeout: nginxLive}
		conn, resp, err := d.DialContext(ctx, "ws"+strings.TrimPrefix(base, "http")+"/ws", http.Header{"Origin": {"http://evil.example"}})
		if err == nil {
			conn.Close()
			t.Fatal("a foreign Origin opened the WebSocket through nginx")
		}
		if resp == nil {
			t.Fatalf("dial: %v (want an HTTP 403 answer)", err)
		}
		if got, want := resp.StatusCode, http.StatusForbidden; got != want {
			t.Fatalf("foreign Origin: status=%d, want %d", got, want)
		}
	})

	t.Run("SSE", func(t *testing.T) {
		// The harness turns gzip on for text/event-stream, as an eager
		// main config might; the shipped location must still send the
		// stream uncompressed.
		nginxCheckSSEHeaders(t, base+"/events")

		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		sse := readSSE(ctx, t, base+"/events") // checks Content-Type: text/event-stream
		first := nginxNextSSE(t, sse, "first event", func(sseEvent) bool { return true })
		if got, want := first.Event, "fleet"; got != want {
			t.Fatalf("first event %q, want %q", got, want)
		}
		nginxPublishReading(t, pub, "nginx-sse", 42)
		ev := nginxNextSSE(t, sse, "live reading", func(ev sseEvent) bool { return ev.Event == "reading" })
		var r struct {
			Device  string             `json:"device"`
			Metrics map[string]float64 `json:"metrics"`
		}
		if err := json.Unmarshal([]byte(ev.Data), &r); err != nil {
			t.Fatalf("reading %q: %v", ev.Data, err)
		}
		if r.Device != "nginx-sse" || r.Metrics["nginx.marker"] != 42 {
			t.Fatalf("reading %s, want device nginx-sse with nginx.marker 42", ev.Data)
		}
	})
}

// nginxBinary returns the nginx executable; its absence fails the test
// (make test installs it), never skips it.
func nginxBinary(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("nginx")
	if err != nil {
		bin = "/usr/sbin/nginx" // not on a non-root PATH
		if _, err := os.Stat(bin); err != nil {
			t.Fatal("nginx is not installed: run scripts/deps.sh (make test installs nginx)")
		}
	}
	if out, err := exec.Command(bin, "-v").CombinedOutput(); err == nil {
		t.Log(strings.TrimSpace(string(out)))
	}
	return bin
}

// nginxSiteConf rewrites the shipped site config for a test: listen on
// listen instead of port 80, and proxy to the hub at hubAddr. Each line it
// rewrites must appear exactly once outside comments, so a change in the
// file's shape fails here instead of testing something else. server_name
// stays: the only server is the default for its port.
func nginxSiteConf(t *testing.T, shipped, listen, hubAddr string) string {
	t.Helper()
	lines := strings.Split(shipped, "\n")
	for _, rw := range []struct{ from, to string }{
		{"listen 80;", "listen " + listen + ";"},
		{"listen [::]:80;", ""}, // loopback only
		{"server 127.0.0.1:8080;", "server " + hubAddr + ";"},
	} {
		n := 0
		for i, line := range lines {
			if strings.TrimSpace(line) == rw.from {
				lines[i] = strings.Replace(line, rw.from, rw.to, 1)
				n++
			}
		}
		if n != 1 {
			t.Fatalf("%s: %q appears %d times outside comments, want once", nginxShippedConf, rw.from, n)
		}
	}
	return strings.Join(lines, "\n")
}

// nginxStart runs nginx in the foreground as a child process, with every
// file it writes in a temporary directory and the shipped site config
// included in its http block, and returns its base URL once the hub
// answers through it.
func nginxStart(t *testing.T, bin, hubAddr string) string {
	t.Helper()
	shipped, err := os.ReadFile(nginxShippedConf)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	mainConf := filepath.Join(dir, "nginx.conf")
	for attempt := 1; ; attempt++ {
		listen := freeAddr(t)
		site := filepath.Join(dir, "fleetwatch.conf")
		if err := os.WriteFile(site, []byte(nginxSiteConf(t, string(shipped), listen, hubAddr)), 0o644); err != nil {
			t.Fatal(err)
		}
		// A single process (no master, no workers to orphan), logging to
		// stderr, with its pid and temp files in dir.
		conf := fmt.Sprintf(`daemon off;
master_process off;
pid %[1]s/nginx.pid;
error_log stderr notice;
events { worker_connections 256; }
http {
    access_log /dev/stderr;
    client_body_temp_path %[1]s/client_body;
    proxy_temp_path %[1]s/proxy;
    fastcgi_temp_path %[1]s/fastcgi;
    uwsgi_temp_path %[1]s/uwsgi;
    scgi_temp_path %[1]s/scgi;
    gzip on;
    gzip_min_length 1;
    gzip_types text/event-stream application/json;
    include %[2]s;
}
`, dir, site)
		if err := os.WriteFile(mainConf, []byte(conf), 0o644); err != nil {
			t.Fatal(err)
		}
		p := &proc{t: t, name: "nginx", done: make(chan struct{})}
		p.cmd = exec.Command(bin, "-p", dir+"/", "-c", mainConf, "-e", "stderr")
		p.cmd.Stdout, p.cmd.Stderr = p, p
		if err := p.cmd.Start(); err != nil {
			t.Fatalf("start nginx: %v", err)
		}
		go func() { p.cmd.Wait(); close(p.done) }() //nolint:errcheck // exit seen through done
		base := "http://" + listen
		err := nginxReady(p, base)
		if err == nil {
			t.Cleanup(func() {
				p.signal(syscall.SIGTERM)
				if t.Failed() {
					t.Logf("nginx output:\n%s", p.output())
				}
			})
			return base
		}
		p.signal(syscall.SIGKILL)
		if attempt < 3 && strings.Contains(p.output(), "Address already in use") {
			continue // the free port was taken in between
		}
		t.Fatalf("nginx: %v\n%s", err, p.output())
	}
}

// nginxReady waits until the hub's /healthz answers 200 through nginx.
func nginxReady(p *proc, base string) error {
	deadline := time.Now().Add(10 * time.Second)
	client := &http.Client{Timeout: time.Second}
	var err error
	for time.Now().Before(deadline) {
		select {
		case <-p.done:
			return errors.New("exited at start")
		default:
		}
		var resp *http.Response
		if resp, err = client.Get(base + "/healthz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("healthz through nginx: %s", resp.Status)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("not ready within 10s: %v", err)
}

// nginxPublishReading publishes one valid telemetry envelope for device,
// with marker as its nginx.marker metric.
func nginxPublishReading(t *testing.T, o *observer, device string, marker float64) {
	t.Helper()
	env := telemetry.Envelope{V: telemetry.Version, Device: device, Boot: "nginx-boot", Readings: []telemetry.Reading{
		{Seq: 1, TS: time.Now().UnixMilli(), Metrics: telemetry.Metrics{"nginx.marker": marker}},
	}}
	payload, err := env.Encode()
	if err != nil {
		t.Fatal(err)
	}
	topics, _ := telemetry.NewTopics("")
	o.publish(t, topics.Telemetry(device), payload)
}

// nginxCheckSSEHeaders asks for the stream as a browser would, gzip
// accepted, and checks nginx passes it as an uncompressed event stream.
func nginxCheckSSEHeaders(t *testing.T, url string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), nginxLive)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	req.Header.Set("Accept-Encoding", "gzip") // set by hand: Go then leaves the body and headers alone
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("sse %s: no response within %s through nginx (buffered?): %v", url, nginxLive, err)
	}
	defer resp.Body.Close()
	if got, want := resp.Header.Get("Content-Type"), "text/event-stream"; got != want {
		t.Fatalf("Content-Type=%q, want %q", got, want)
	}
	if got := resp.Header.Get("Content-Encoding"); got != "" {
		t.Fatalf("Content-Encoding=%q: the event stream must not be compressed", got)
	}
}

// nginxNextSSE returns the next event for which match is true, within
// nginxLive.
func nginxNextSSE(t *testing.T, events <-chan sseEvent, what string, match func(sseEvent) bool) sseEvent {
	t.Helper()
	timer := time.NewTimer(nginxLive)
	defer timer.Stop()
	for {
		select {
		case ev, ok := <-events:
			if !ok {
				t.Fatalf("sse stream ended while waiting for %s", what)
			}
			if match(ev) {
				return ev
			}
		case <-timer.C:
			t.Fatalf("sse: no %s within %s through nginx (buffered?)", what, nginxLive)
		}
	}
}
