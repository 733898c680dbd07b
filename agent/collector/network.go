package collector

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/shirou/gopsutil/v3/net"

	"github.com/fleetwatch/fleetwatch/agent/telemetry"
)

// netSample is what Network keeps of an interface between collects.
// Errors and drops are summed over both directions: one series each is
// enough to notice a bad cable or a full queue.
type netSample struct {
	rxBytes, txBytes, rxPackets, txPackets, errors, drops uint64
}

func toNetSample(s net.IOCountersStat) netSample {
	return netSample{
		rxBytes:   s.BytesRecv,
		txBytes:   s.BytesSent,
		rxPackets: s.PacketsRecv,
		txPackets: s.PacketsSent,
		errors:    s.Errin + s.Errout,
		drops:     s.Dropin + s.Dropout,
	}
}

// Network reports traffic per interface (loopback excluded), as rates
// between two collects. The first Collect only takes a sample.
type Network struct {
	// Now is the clock for rates; default time.Now.
	Now func() time.Time

	mu     sync.Mutex
	prev   map[string]netSample // by interface name
	prevAt time.Time
}

// Name implements agent.Collector.
func (*Network) Name() string { return "network" }

// Collect implements agent.Collector.
func (n *Network) Collect(ctx context.Context, m telemetry.Metrics) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	stats, err := net.IOCountersWithContext(ctx, true)
	if err != nil {
		return fmt.Errorf("read network counters: %w", err)
	}
	n.update(nowFunc(n.Now)(), stats, m)
	return nil
}

// update adds rates against the previous sample and keeps this one.
// Interfaces are taken in /proc/net/dev order, which is creation order:
// the physical ones made at boot come before a crowd of veth pairs, so the
// cap keeps them. The caller holds n.mu.
func (n *Network) update(now time.Time, stats []net.IOCountersStat, m telemetry.Metrics) {
	elapsed := now.Sub(n.prevAt)
	cur := make(map[string]netSample, min(len(stats), MaxIfaces))
	keys := make(map[string]bool, MaxIfaces)
	for _, st := range stats {
		if len(cur) == MaxIfaces {
			break
		}
		if st.Name == "lo" {
			continue
		}
		key := Sanitize(st.Name)
		if key == "" {
			continue
		}
		key = uniqueKey(keys, key)
		s := toNetSample(st)
		cur[st.Name] = s
		p, ok := n.prev[st.Name]
		if !ok || n.prevAt.IsZero() {
			continue
		}
		prefix := "net." + key
		rate := func(suffix string, prev, cur uint64) {
			if r, ok := counterRate(prev, cur, elapsed); ok {
				put(m, prefix+suffix, r)
			}
		}
		rate(".rx_bytes_per_s", p.rxBytes, s.rxBytes)
		rate(".tx_bytes_per_s", p.txBytes, s.txBytes)
		rate(".rx_packets_per_s", p.rxPackets, s.rxPackets)
		rate(".tx_packets_per_s", p.txPackets, s.txPackets)
		rate(".errors_per_s", p.errors, s.errors)
		rate(".drops_per_s", p.drops, s.drops)
	}
	n.prev, n.prevAt = cur, now
}
