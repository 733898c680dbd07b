package main

import (
	"encoding/json"
	"fmt"
	"os"
	"time"
)

// Summary is what --summary writes: what the sim's agents numbered, sent
// and had acked, in total and per device, so a harness can compare them
// with what the hub stored.
type Summary struct {
	Mode              string `json:"mode"`
	Devices           int    `json:"devices"`
	Conns             int    `json:"conns"` // 0: one per device
	IntervalMS        int64  `json:"interval_ms"`
	MetricsPerReading int    `json:"metrics_per_reading"`
	Started           int64  `json:"started_ms"`
	Stopped           int64  `json:"stopped_ms"` // devices stopped; the drain follows

	Published    uint64 `json:"readings_published"` // numbered by the agents (seq)
	Acked        uint64 `json:"readings_acked"`     // covered by the hub's acks
	Pending      uint64 `json:"readings_pending"`   // still unacked at exit
	Dropped      uint64 `json:"readings_dropped"`   // dropped by full outboxes
	Messages     uint64 `json:"messages"`           // MQTT publishes handed to the connection
	PayloadBytes uint64 `json:"payload_bytes"`

	PerDevice map[string]DeviceSummary `json:"per_device"`
}

// DeviceSummary is one device's counts.
type DeviceSummary struct {
	Boot    string `json:"boot"`
	LastSeq uint64 `json:"last_seq"`
	Acked   uint64 `json:"acked"`
	Pending uint64 `json:"pending"`
	// Burst and replay: the timestamps of the N back-dated readings.
	From int64 `json:"from_ms,omitempty"`
	To   int64 `json:"to_ms,omitempty"`
	N    int64 `json:"n,omitempty"`
}

func summarize(o options, mode string, devs []*device, started, stopped time.Time) Summary {
	metrics := BaseMetrics + o.extra + 1 // + agent.collector_errors
	if o.stamp {
		metrics++
	}
	s := Summary{
		Mode: mode, Devices: len(devs), Conns: o.conns, IntervalMS: o.interval.Milliseconds(),
		MetricsPerReading: metrics, Started: started.UnixMilli(), Stopped: stopped.UnixMilli(),
		PerDevice: make(map[string]DeviceSummary, len(devs)),
	}
	for _, d := range devs {
		st := d.agent.Stats()
		ds := DeviceSummary{Boot: d.agent.Boot, LastSeq: st.NextSeq - 1, Acked: st.Acked, Pending: st.Pending}
		if d.clock != nil {
			ds.From, ds.To = d.clock.Range()
			ds.N = d.clock.n
		}
		s.PerDevice[d.id] = ds
		s.Published += ds.LastSeq
		s.Acked += st.Acked
		s.Pending += st.Pending
		s.Dropped += st.Dropped
		s.Messages += d.count.messages.Load()
		s.PayloadBytes += d.count.bytes.Load()
	}
	return s
}

// write replaces path atomically, so a reader never sees half a file.
func (s Summary) write(path string) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return fmt.Errorf("write summary: %w", err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write summary: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write summary: %w", err)
	}
	return nil
}
