package main_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"

	"github.com/fleetwatch/fleetwatch/agent/mqttpub/mosquittotest"
)

// chromiumPath finds Debian's Chromium. make test requires it
// (FLEETWATCH_REQUIRE_CHROMIUM=1, installed by scripts/deps.sh); a plain
// go test without it skips.
func chromiumPath(t testing.TB) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("FLEETWATCH_REQUIRE_CHROMIUM") != "" {
		t.Fatal("chromium not found: run ./scripts/deps.sh as root, or apt-get install chromium")
	}
	t.Skip("chromium not found (make test installs it)")
	return ""
}

// browser starts headless Chromium and returns a tab's context; every
// console message the page writes is kept.
type browser struct {
	ctx     context.Context
	mu      sync.Mutex
	console []chromedp.ConsoleMessage
}

func newBrowser(t testing.TB) *browser {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath(t)), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("window-size", "1280,900"))
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); cancelA() })
	b := &browser{ctx: ctx}
	if err := chromedp.Do(ctx); err != nil { // start the browser
		t.Fatalf("start chromium: %v", err)
	}
	msgs := chromedp.Console(ctx)
	go func() {
		for m, err := range msgs {
			if err != nil {
				return
			}
			b.mu.Lock()
			b.console = append(b.console, m)
			b.mu.Unlock()
		}
	}()
	return b
}

// errors returns the console errors and warnings so far; with network
// true, also the browser's own network log (expected while the hub is
// down).
func (b *browser) errors(network bool) []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	for _, m := range b.console {
		if m.Type != "error" && m.Type != "warning" && !m.IsException() {
			continue
		}
		if m.Source == "network" && !network {
			continue
		}
		out = append(out, m.String())
	}
	return out
}

func (b *browser) do(t testing.TB, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// wait polls a JavaScript predicate until it is truthy.
func (b *browser) wait(t testing.TB, what, js string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 25*time.Second)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](js, chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(20*time.Second))); err != nil {
		t.Fatalf("waiting for %s (%s): %v", what, js, err)
	}
}

func (b *browser) text(t testing.TB, js string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string](js, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("evaluate %s: %v", js, err)
	}
	return s
}

// screenshot saves the page at width × height (CSS px) as name.png under
// FLEETWATCH_SCREENSHOTS (make screenshots: dashboard/screenshots), or the
// test's temp dir.
func (b *browser) screenshot(t testing.TB, name string, width, height int64, mobile bool) {
	t.Helper()
	dir := os.Getenv("FLEETWATCH_SCREENSHOTS")
	if dir == "" {
		dir = t.TempDir()
	}
	var opts []chromedp.EmulateViewportOption
	if mobile {
		opts = append(opts, chromedp.EmulateScale(2), chromedp.EmulateMobile)
	}
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(width, height, opts...), chromedp.Sleep(700*time.Millisecond)); err != nil {
		t.Fatalf("viewport %dx%d: %v", width, height, err)
	}
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1280, 900)); err != nil {
		t.Fatal(err)
	}
}

// TestDashboard_Browser drives the real dashboard in headless Chromium
// against the hub binary, a spawned mosquitto, simulated devices and one
// device whose temperature the test controls.
func TestDashboard_Browser(t *testing.T) {
	if _, err := os.Stat("../../../dashboard/static/vendor/uPlot.esm.js"); err != nil {
		if os.Getenv("FLEETWATCH_REQUIRE_ASSETS") != "" {
			t.Fatalf("the dashboard's uPlot is not built: run make assets: %v", err)
		}
		t.Skip("the dashboard's uPlot is not built (make assets); the hub would serve a page without charts")
	}
	b := newBrowser(t)
	broker := mosquittotest.Start(t)
	httpAddr := freeAddr(t)
	base := "http://" + httpAddr
	cfg := filepath.Join(t.TempDir(), "hub.yaml")
	os.WriteFile(cfg, []byte(`alerts:
  every: 200ms
  rules:
    - {name: lab_hot, metric: sim.temp, op: ">", warn: 50, crit: 80, clear: 40, for: 400ms}
`), 0o600)
	data := t.TempDir()
	hubArgs := []string{"--config", cfg, "--broker", broker.URL(), "--http", httpAddr, "--data", data, "--commit-interval", "100ms"}
	hub := startProc(t, "fleetwatch-hub", hubArgs...)
	// A hub restarted in a subtest must outlive it: its cleanup goes on the
	// parent; the subtest waits for it.
	restartHub := func(st *testing.T) {
		hub = startProc(t, "fleetwatch-hub", hubArgs...)
		waitHealthy(st, base)
	}
	waitHealthy(t, base)
	// For screenshots, an hour of history first (the devices' own 1 s
	// interval, so the charts show no false gaps), then the same devices
	// live; the test alone needs only live data.
	shots := os.Getenv("FLEETWATCH_SCREENSHOTS") != ""
	interval := "500ms"
	if shots {
		interval = "1s"
		replay := startProc(t, "fleetwatch-sim", "--broker", broker.URL(), "--devices", "8", "--replay", "1h", "--interval", interval)
		select {
		case <-replay.done:
		case <-time.After(60 * time.Second):
			t.Fatal("the history replay did not finish within 60 s")
		}
	}
	startProc(t, "fleetwatch-sim", "--broker", broker.URL(), "--devices", "8", "--interval", interval)

	// The device the test drives across a threshold.
	temp := driveDevice(t, broker.URL(), "lab-1", 500*time.Millisecond, 35)

	cpuOf := func(dev string) string {
		return b.text(t, fmt.Sprintf(`(document.querySelector('#rows tr[data-device=%q] td[data-metric="cpu.percent"]')||{}).textContent||""`, dev))
	}
	t.Run("OverviewListsDevicesAndValuesChange", func(t *testing.T) {
		b.do(t, "open the overview", chromedp.Navigate(base+"/"))
		b.wait(t, "9 device rows", `document.querySelectorAll('#rows tr[data-device]').length >= 9`)
		b.wait(t, "live", `document.querySelector('#conn').dataset.state === 'live'`)
		first := cpuOf("sim-001")
		if first == "" {
			t.Fatal("sim-001 has no CPU value")
		}
		b.wait(t, "sim-001's CPU to change", fmt.Sprintf(`(document.querySelector('#rows tr[data-device="sim-001"] td[data-metric="cpu.percent"]')||{}).textContent !== %q`, first))
		b.wait(t, "the summary cards", `document.querySelector('#cards [data-card="online"] .value').textContent.includes('9')`)
		if shots {
			time.Sleep(30 * time.Second) // let the sparklines fill
		}
		b.screenshot(t, "overview-desktop", 1280, 900, false)
		b.screenshot(t, "overview-phone", 390, 844, true)
		// The dark scheme, as a system set to dark gets it.
		dark := []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: "dark"}}
		if _, err := chromedp.Call(b.ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{Features: dark}); err != nil {
			t.Fatalf("emulate dark: %v", err)
		}
		b.wait(t, "the dark scheme", `matchMedia('(prefers-color-scheme: dark)').matches`)
		b.screenshot(t, "overview-dark", 1280, 900, false)
		if _, err := chromedp.Call(b.ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{}); err != nil {
			t.Fatalf("reset media: %v", err)
		}
	})

	t.Run("DevicePageDrawsPoints", func(t *testing.T) {
		b.do(t, "open sim-001", chromedp.Navigate(base+"/#/device/sim-001"))
		b.wait(t, "the device view", `document.querySelector('#view-device')?.dataset.device === 'sim-001'`)
		b.wait(t, "points on the CPU chart", `+(document.querySelector('.chart[data-metric="cpu.percent"]')?.dataset.points||0) >= 3`)
		before := b.text(t, `document.querySelector('.chart[data-metric="cpu.percent"]').dataset.points`)
		b.wait(t, "live points appended", fmt.Sprintf(`+document.querySelector('.chart[data-metric="cpu.percent"]').dataset.points > %s`, before))
		b.wait(t, "the inventory", `document.querySelector('#device-info')?.textContent.length > 0`)
		b.screenshot(t, "device-desktop", 1280, 900, false)
		b.screenshot(t, "device-phone", 390, 844, true)
	})

	t.Run("ThresholdShowsAToast", func(t *testing.T) {
		b.do(t, "back to the overview", chromedp.Navigate(base+"/"))
		b.wait(t, "live", `document.querySelector('#conn').dataset.state === 'live'`)
		temp.Store(65)
		b.wait(t, "a firing toast", `!!document.querySelector('#toasts .toast[data-state="firing"]')`)
		if got := b.text(t, `document.querySelector('#toasts .toast[data-state="firing"]').textContent`); !strings.Contains(got, "lab-1") {
			t.Errorf("toast %q does not name lab-1", got)
		}
		b.wait(t, "the alert count", `(document.querySelector('#alert-count')?.textContent||'').includes('1')`)
		temp.Store(30)
		b.wait(t, "a resolved toast", `!!document.querySelector('#toasts .toast[data-state="resolved"]')`)
	})

	if errs := b.errors(false); len(errs) > 0 {
		t.Errorf("console errors or warnings while the hub was up:\n%s", strings.Join(errs, "\n"))
	}

	t.Run("HubKilledShowsReconnectingWithLastKnownValues", func(t *testing.T) {
		hub.signal(syscall.SIGKILL)
		b.wait(t, "reconnecting", `['reconnecting','offline'].includes(document.querySelector('#conn').dataset.state)`)
		b.wait(t, "stale marking", `document.body.dataset.stale === 'true'`)
		if got := cpuOf("sim-001"); got == "" {
			t.Error("sim-001's last-known CPU is gone while the hub is down")
		}
		if n := b.text(t, `String(document.querySelectorAll('#rows tr[data-device]').length)`); n != "9" {
			t.Errorf("%s rows while the hub is down, want the 9 last known", n)
		}
	})

	t.Run("HubBackBringsLiveData", func(t *testing.T) {
		restartHub(t)
		b.wait(t, "live again", `document.querySelector('#conn').dataset.state === 'live'`)
		b.wait(t, "not stale", `document.body.dataset.stale !== 'true'`)
		last := cpuOf("sim-002")
		b.wait(t, "values changing again", fmt.Sprintf(`(document.querySelector('#rows tr[data-device="sim-002"] td[data-metric="cpu.percent"]')||{}).textContent !== %q`, last))
	})
	t.Run("ChartResumesWithoutAHole", func(t *testing.T) {
		b.do(t, "open sim-003", chromedp.Navigate(base+"/#/device/sim-003"))
		b.wait(t, "the device view", `document.querySelector('#view-device')?.dataset.device === 'sim-003'`)
		b.do(t, "the 15 m range", chromedp.Click(chromedp.CSS(`button[data-range="15m"]`)))
		b.wait(t, "15 m chosen", `document.querySelector('button[data-range="15m"]').getAttribute('aria-pressed') === 'true'`)
		b.wait(t, "points", `+(document.querySelector('.chart[data-metric="cpu.percent"]')?.dataset.points||0) >= 5`)
		// Holes the data already has (a screenshot run's replay ends a few
		// seconds before the live simulator starts) are not the outage's.
		b.wait(t, "the chart drawn", `document.querySelector('.chart[data-metric="cpu.percent"]')?.dataset.gaps !== undefined`)
		gaps := b.text(t, `document.querySelector('.chart[data-metric="cpu.percent"]').dataset.gaps`)
		hub.signal(syscall.SIGKILL)
		b.wait(t, "reconnecting", `['reconnecting','offline'].includes(document.querySelector('#conn').dataset.state)`)
		time.Sleep(3 * time.Second) // readings the hub misses meanwhile wait at the broker
		restartHub(t)
		b.wait(t, "live again", `document.querySelector('#conn').dataset.state === 'live'`)
		// The page refetches the span it missed: the line has no hole.
		b.wait(t, "no new hole in the CPU chart", fmt.Sprintf(`(() => { const c = document.querySelector('.chart[data-metric="cpu.percent"]'); return c && c.dataset.gaps === %q && +c.dataset.points >= 20 })()`, gaps))
	})
	// After the outage only the browser's own network log may complain.
	for _, e := range b.errors(true) {
		if !strings.Contains(e, "network") && !strings.Contains(e, "ERR_CONNECTION_REFUSED") && !strings.Contains(e, "WebSocket") {
			t.Errorf("console after the outage: %s", e)
		}
	}
}

// BenchmarkDashboard_500Devices opens the overview of a 500-device fleet
// in headless Chromium: the time from navigation to the frame after the
// first render of the 500 rows,
// and, over 120 frames of live updates, the 95th percentile frame interval and
// the long tasks (> 50 ms) the page ran.
//
//	go test -run x -bench Dashboard ./hub/cmd/fleetwatch-hub/
func BenchmarkDashboard_500Devices(b *testing.B) {
	if _, err := exec.LookPath("chromium"); err != nil {
		b.Skip("chromium not found")
	}
	if _, err := os.Stat("../../../dashboard/static/vendor/uPlot.esm.js"); err != nil {
		b.Skip("make assets first")
	}
	bt := testing.TB(b)
	broker := mosquittotest.Start(b)
	httpAddr := freeAddr(b)
	base := "http://" + httpAddr
	startProc(bt, "fleetwatch-hub", "--broker", broker.URL(), "--http", httpAddr, "--data", b.TempDir())
	waitHealthy(bt, base)
	startProc(bt, "fleetwatch-sim", "--broker", broker.URL(), "--devices", "500", "--conns", "20", "--interval", "1s")
	eventually(bt, 60*time.Second, "500 devices known", func() error {
		var f struct{ Devices []any }
		if _, _, err := getJSON(base+"/api/v1/fleet", &f); err != nil {
			return err
		}
		if len(f.Devices) < 500 {
			return fmt.Errorf("%d devices", len(f.Devices))
		}
		return nil
	})
	br := newBrowser(bt)
	// The page marks the frame after its first fleet render; the rows are
	// checked too. The first load is cold (a new browser, empty caches,
	// modules compiled for the first time) and reported on its own.
	open := func() float64 {
		br.do(bt, "open", chromedp.Navigate(base+"/"))
		br.wait(bt, "500 rows", `document.querySelectorAll('#rows tr[data-device]').length >= 500`)
		ms := br.text(bt, `new Promise(done => { const f = () => { const m = performance.getEntriesByName('fleetwatch:first-fleet-paint')[0]; m ? done(String(m.startTime)) : setTimeout(f, 20) }; f() })`)
		var v float64
		fmt.Sscan(ms, &v)
		return v
	}
	cold := open()
	var paint, frame95, longTasks float64
	for b.Loop() {
		paint += open()
		res := br.text(bt, `new Promise(done => {
			const gaps = []; let last = performance.now(), long = 0;
			new PerformanceObserver(l => { long += l.getEntries().length }).observe({type: 'longtask', buffered: false});
			const tick = now => { gaps.push(now - last); last = now; if (gaps.length < 120) requestAnimationFrame(tick); else {
				gaps.sort((a, b) => a - b); done(gaps[Math.floor(gaps.length * 0.95)] + ' ' + long) } };
			requestAnimationFrame(tick);
		})`)
		var f95, lt float64
		fmt.Sscan(res, &f95, &lt)
		frame95 += f95
		longTasks += lt
	}
	n := float64(b.N)
	b.ReportMetric(cold, "cold-ms-to-first-paint")
	b.ReportMetric(paint/n, "ms-to-first-paint")
	b.ReportMetric(frame95/n, "p95-frame-ms")
	b.ReportMetric(longTasks/n, "long-tasks/120-frames")
}
