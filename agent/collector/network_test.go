package collector

import (
	"fmt"
	"testing"
	"time"

	"github.com/shirou/gopsutil/v3/net"

	"github.com/fleetwatch/fleetwatch/agent/telemetry"
)

func TestNetwork_update(t *testing.T) {
	t0 := time.Date(2025, 11, 29, 12, 0, 0, 0, time.UTC)
	n := &Network{}
	first := []net.IOCountersStat{
		{Name: "lo", BytesRecv: 10, BytesSent: 10},
		{Name: "eth0", BytesRecv: 1000, BytesSent: 500, PacketsRecv: 10, PacketsSent: 5, Errin: 1, Errout: 1, Dropin: 0, Dropout: 2},
		{Name: "br-1a2b", BytesRecv: 0, BytesSent: 0},
	}
	m := telemetry.Metrics{}
	n.update(t0, first, m)
	if len(m) != 0 {
		t.Errorf("first update: got %v, want no metrics", m)
	}

	second := []net.IOCountersStat{
		{Name: "lo", BytesRecv: 1e6, BytesSent: 1e6},
		{Name: "eth0", BytesRecv: 5000, BytesSent: 900, PacketsRecv: 50, PacketsSent: 9, Errin: 3, Errout: 1, Dropin: 4, Dropout: 2},
		{Name: "br-1a2b", BytesRecv: 300, BytesSent: 0},
	}
	m = telemetry.Metrics{}
	n.update(t0.Add(4*time.Second), second, m)
	want := telemetry.Metrics{
		"net.eth0.rx_bytes_per_s": 1000, "net.eth0.tx_bytes_per_s": 100,
		"net.eth0.rx_packets_per_s": 10, "net.eth0.tx_packets_per_s": 1,
		"net.eth0.errors_per_s": 0.5, "net.eth0.drops_per_s": 1,
		"net.br_1a2b.rx_bytes_per_s": 75, "net.br_1a2b.tx_bytes_per_s": 0,
		"net.br_1a2b.rx_packets_per_s": 0, "net.br_1a2b.tx_packets_per_s": 0,
		"net.br_1a2b.errors_per_s": 0, "net.br_1a2b.drops_per_s": 0,
	}
	if fmt.Sprint(m) != fmt.Sprint(want) {
		t.Errorf("second update:\n got %v\nwant %v", m, want)
	}

	t.Run("counter reset skips only that series", func(t *testing.T) {
		third := []net.IOCountersStat{
			{Name: "eth0", BytesRecv: 100, BytesSent: 1900, PacketsRecv: 60, PacketsSent: 19, Errin: 3, Errout: 1, Dropin: 4, Dropout: 2},
		}
		m := telemetry.Metrics{}
		n.update(t0.Add(5*time.Second), third, m)
		if _, ok := m["net.eth0.rx_bytes_per_s"]; ok {
			t.Errorf("rx_bytes_per_s = %v after a reset, want no value", m["net.eth0.rx_bytes_per_s"])
		}
		if got, want := m["net.eth0.tx_bytes_per_s"], 1000.0; got != want {
			t.Errorf("tx_bytes_per_s = %v, want %v", got, want)
		}
		if _, ok := m["net.br_1a2b.rx_bytes_per_s"]; ok {
			t.Errorf("vanished interface br-1a2b still reported")
		}
	})
}

func TestNetwork_updateCap(t *testing.T) {
	n := &Network{}
	stats := []net.IOCountersStat{{Name: "lo"}}
	for i := range MaxIfaces + 10 {
		stats = append(stats, net.IOCountersStat{Name: fmt.Sprintf("veth%d", i)})
	}
	t0 := time.Now()
	n.update(t0, stats, telemetry.Metrics{})
	m := telemetry.Metrics{}
	n.update(t0.Add(time.Second), stats, m)
	if got, want := len(m), 6*MaxIfaces; got != want {
		t.Errorf("got %d metrics, want %d", got, want)
	}
	if _, ok := m[fmt.Sprintf("net.veth%d.rx_bytes_per_s", MaxIfaces)]; ok {
		t.Errorf("interface past the cap reported")
	}
}

func TestNetwork_Collect(t *testing.T) {
	now := time.Date(2025, 11, 29, 12, 0, 0, 0, time.UTC)
	n := &Network{Now: func() time.Time { return now }}
	if err := n.Collect(t.Context(), telemetry.Metrics{}); err != nil {
		t.Fatal(err)
	}
	now = now.Add(time.Second)
	m := telemetry.Metrics{}
	if err := n.Collect(t.Context(), m); err != nil {
		t.Fatal(err)
	}
	for name, v := range m {
		if !telemetry.ValidMetricName(name) || v < 0 {
			t.Errorf("%s = %v, want a valid name and a rate ≥ 0", name, v)
		}
	}
}
