package main

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/fleetwatch/fleetwatch/agent"
)

// Modes of a virtual device.
const (
	modeLive   = "live"   // one reading per interval, wall clock
	modeBurst  = "burst"  // N readings back to back, 1 ms apart, then wait for acks
	modeReplay = "replay" // DUR of history at the interval, oldest first, paced by acks
	modeOutage = "outage" // the same history held through an outage, then sent as the agent sends a backlog
)

// burstTick is the agent's tick while it builds a burst or replay: the
// loop runs as fast as collect, encode and publish allow.
const burstTick = time.Microsecond

// idleTick is the agent's tick once its burst or replay is built: it only
// answers acks and reconnects until everything is acked.
const idleTick = time.Hour

// device is one virtual device: a real agent.Agent, its publisher chain
// and, for a burst or replay, its clock.
type device struct {
	id    string
	agent *agent.Agent
	clock *clock    // burst, replay, outage
	gate  *gatedPub // outage
	count *countingPub
	ready func() bool                 // connected to the broker
	close func(context.Context) error // own connection; nil when shared
}

// run drives the device until ctx is done or, for a burst or replay,
// until every reading is acked.
func (d *device) run(ctx context.Context, mode string, stagger time.Duration) {
	if mode == modeLive {
		select {
		case <-time.After(stagger):
		case <-ctx.Done():
			return
		}
		d.agent.Run(ctx) //nolint:errcheck // ctx's error on stop
		return
	}
	// Without a connection every step would re-encode the whole unsent
	// backlog: wait for it first.
	for !d.ready() {
		select {
		case <-time.After(20 * time.Millisecond):
		case <-ctx.Done():
			return
		}
	}
	d.agent.Interval = burstTick
	gen, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { d.agent.Run(gen); close(done) }() //nolint:errcheck // gen's error
	select {
	case <-d.clock.full:
	case <-ctx.Done():
	}
	stop()
	<-done
	if ctx.Err() != nil {
		return
	}
	d.clock.release()
	if d.gate != nil {
		d.gate.open()
	}
	// Run is stopped, so its fields may change; Reconnected marks the
	// backlog unsent and wakes the next Run to send it in full batches.
	d.agent.Interval = idleTick
	d.agent.Reconnected()
	idle, stopIdle := context.WithCancel(ctx)
	idleDone := make(chan struct{})
	go func() { d.agent.Run(idle); close(idleDone) }() //nolint:errcheck // idle's error
	defer func() { stopIdle(); <-idleDone }()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for d.agent.Stats().Pending > 0 {
		select {
		case <-tick.C:
		case <-ctx.Done():
			return
		}
	}
}

// countingPub counts what reaches the broker connection.
type countingPub struct {
	next     agent.Publisher
	messages atomic.Uint64
	bytes    atomic.Uint64
}

func (c *countingPub) PublishTelemetry(ctx context.Context, payload []byte) error {
	if err := c.next.PublishTelemetry(ctx, payload); err != nil {
		return err
	}
	c.messages.Add(1)
	c.bytes.Add(uint64(len(payload)))
	return nil
}
