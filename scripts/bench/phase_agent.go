package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// phaseAgent measures fleetwatch-agent at 1 s next to
// prometheus-node-exporter scraped once a second, in the same window on
// the same host, with the fleet stopped.
func (b *Bench) phaseAgent(ctx context.Context) error {
	size := "not built: " + errText(b.armErr)
	sizeOK := false
	mib := float64(b.armBytes) / (1 << 20)
	if b.armErr == nil {
		size = fmt.Sprintf("%.2f MiB (%d B)", mib, b.armBytes)
		sizeOK = mib <= 8
	}
	agent, err := b.Scene.Start("agent", filepath.Join(b.Scene.Bin, "fleetwatch-agent"), "--broker", b.broker, "--interval", "1s",
		"--device", "bench-agent", "--state-dir", filepath.Join(b.Scene.Dir, "agent-state"), "--log-level", "warn")
	if err != nil {
		return err
	}
	defer agent.Stop(10 * time.Second) //nolint:errcheck // reported by the scene if stuck

	var ne *Proc
	var neURL, neVersion, neWhy string
	neBin, err := ensurePackage(ctx, b.Log, "prometheus-node-exporter", "prometheus-node-exporter", b.Sizes.Install)
	if err != nil {
		neWhy = err.Error()
	} else {
		neVersion = firstLine(exec.Command(neBin, "--version"))
		port, err := freePort()
		if err != nil {
			return err
		}
		addr := "127.0.0.1:" + strconv.Itoa(port)
		if ne, err = b.Scene.Start("node-exporter", neBin, "--web.listen-address="+addr); err != nil {
			return err
		}
		defer ne.Stop(10 * time.Second) //nolint:errcheck
		if err := waitTCP(ctx, ne, addr, 15*time.Second); err != nil {
			neWhy, ne = err.Error(), nil
		}
		neURL = "http://" + addr + "/metrics"
	}

	// Scrape as Prometheus would, once a second, from before the window.
	sctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()
	var series, scrapes int
	var scrapeMu sync.Mutex
	if ne != nil {
		wg.Go(func() {
			t := time.NewTicker(time.Second)
			defer t.Stop()
			for {
				n, err := scrapeCount(sctx, neURL)
				if err == nil {
					scrapeMu.Lock()
					series, scrapes = n, scrapes+1
					scrapeMu.Unlock()
				}
				select {
				case <-sctx.Done():
					return
				case <-t.C:
				}
			}
		})
	}
	// The agent's first readings prime its rates and read the inventory.
	if err := sleep(ctx, 3*time.Second); err != nil {
		return err
	}
	if !agent.Alive() {
		return fmt.Errorf("fleetwatch-agent exited: %s", agent.Tail(500))
	}
	am, err := StartMeter(agent.PID)
	if err != nil {
		return err
	}
	// The agent must not wear out an SD card while the hub acks: nothing
	// written while online.
	wb0, wbErr := writeBytes(agent.PID)
	var nm *Meter
	if ne != nil {
		if nm, err = StartMeter(ne.PID); err != nil {
			return err
		}
	}
	scrapeMu.Lock()
	scrapes0 := scrapes
	scrapeMu.Unlock()
	if err := sleep(ctx, b.Sizes.AgentWindow); err != nil {
		return err
	}
	wb1, err := writeBytes(agent.PID)
	if wbErr == nil {
		wbErr = err
	}
	au, err := am.Stop()
	if err != nil {
		return err
	}
	written := "disk writes not measured: " + errText(wbErr)
	if wbErr == nil {
		written = fmt.Sprintf("%.0f B/s written to disk while online", float64(wb1-wb0)/au.Wall.Seconds())
	}
	row := Row{Name: "agent",
		// At 1 Hz, CPU % of a core × 10 is the CPU time per collection cycle
		// in ms, everything included (collect, encode, publish, runtime).
		Figure: fmt.Sprintf("RSS %s mean (max %s), CPU %.3f%% of a core over %.0f s at 1 s (%.2f ms CPU per reading, all included); %s; linux/arm64 stripped %s",
			mb(au.RSSMeanKB), mb(float64(au.RSSMaxKB)), au.CPUPercent, au.Wall.Seconds(), au.CPUPercent*10, written, size),
		Values: map[string]float64{"agent_rss_kb": au.RSSMeanKB, "agent_cpu_pct": au.CPUPercent, "arm64_bytes": float64(b.armBytes)},
	}
	if wbErr == nil {
		row.Values["agent_disk_write_bytes_per_s"] = float64(wb1-wb0) / au.Wall.Seconds()
	}
	if nm == nil {
		row.Baseline = "not measured: " + neWhy
		row.Verdict, row.Why = NA, "no node-exporter baseline: "+neWhy
		b.setRow(row)
		return nil
	}
	nu, err := nm.Stop()
	if err != nil {
		return err
	}
	scrapeMu.Lock()
	n, done := series, scrapes-scrapes0
	scrapeMu.Unlock()
	rssRatio, cpuRatio := au.RSSMeanKB/nu.RSSMeanKB, au.CPUPercent/nu.CPUPercent
	row.Figure += fmt.Sprintf("; %.2f× RSS, %.2f× CPU", rssRatio, cpuRatio)
	row.Baseline = fmt.Sprintf("%s: RSS %s mean (max %s), CPU %.3f%% of a core; %d scrapes of %d series",
		neVersion, mb(nu.RSSMeanKB), mb(float64(nu.RSSMaxKB)), nu.CPUPercent, done, n)
	row.Verdict, row.Why = judge(need(rssRatio <= 0.5, "RSS %.2f× > 0.5×", rssRatio), need(cpuRatio <= 0.2, "CPU %.2f× > 0.2×", cpuRatio),
		need(sizeOK || b.armErr != nil, "arm64 binary %s > 8 MiB", size))
	if b.armErr != nil {
		row.caveat("arm64 size not measured")
	}
	if b.Sizes.AgentWindow < time.Minute {
		row.caveat(fmt.Sprintf("over %s in the %s profile, 60 s in BENCH=full", b.Sizes.AgentWindow, b.Sizes.Profile))
	}
	row.Values["node_exporter_rss_kb"], row.Values["node_exporter_cpu_pct"] = nu.RSSMeanKB, nu.CPUPercent
	row.Values["rss_ratio"], row.Values["cpu_ratio"] = rssRatio, cpuRatio
	b.setRow(row)
	return nil
}

// scrapeCount GETs a Prometheus endpoint and counts its series.
func scrapeCount(ctx context.Context, url string) (int, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := api.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	m, err := parseProm(resp.Body)
	io.Copy(io.Discard, resp.Body) //nolint:errcheck
	return len(m), err
}

func firstLine(cmd *exec.Cmd) string {
	out, _ := cmd.CombinedOutput()
	line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	return strings.TrimSpace(line)
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
