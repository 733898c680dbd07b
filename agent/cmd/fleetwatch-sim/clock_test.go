package main

import (
	"context"
	"sync/atomic"
	"testing"
	"time"
)

func TestClockStampsNReadingsThenWallClock(t *testing.T) {
	start := time.Now()
	c := newClock(start, time.Second, 3)
	ctx, cancel := context.WithCancel(context.Background())
	var ts []int64
	for range 3 {
		c.next(ctx)
		ts = append(ts, c.Now().UnixMilli())
	}
	select {
	case <-c.full:
	default:
		t.Fatal("full not closed after n readings")
	}
	from, to := c.Range()
	if ts[0] != from || ts[2] != to || ts[1]-ts[0] != 1000 || to >= start.UnixMilli() {
		t.Fatalf("stamps %v, range [%d, %d], start %d: want 1 s apart ending before start", ts, from, to, start.UnixMilli())
	}
	// Past n the collector holds the agent until its run is stopped.
	held := make(chan struct{})
	go func() { c.next(ctx); close(held) }()
	select {
	case <-held:
		t.Fatal("reading n+1 taken while the run still goes")
	case <-time.After(20 * time.Millisecond):
	}
	cancel()
	<-held
	// Released, readings follow the wall clock and never repeat a ms.
	c.release()
	prev := c.Now().UnixMilli()
	for range 3 {
		c.next(context.Background())
		now := c.Now().UnixMilli()
		if now <= prev || now < start.UnixMilli() {
			t.Fatalf("stamp %d after %d: want increasing wall-clock ms", now, prev)
		}
		prev = now
	}
}

func TestClockWindowWaitsForAcks(t *testing.T) {
	c := newClock(time.Now(), time.Millisecond, 10)
	var pending atomic.Uint64
	pending.Store(5)
	c.window, c.pending = 5, pending.Load
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	c.next(ctx) // held by the window until ctx ends
	if ctx.Err() == nil {
		t.Fatal("next returned with the window full")
	}
	fresh := newClock(time.Now(), time.Millisecond, 10)
	pending.Store(4)
	fresh.window, fresh.pending = 5, pending.Load
	fresh.next(context.Background())
	if got, want := fresh.Now().UnixMilli(), fresh.base.Add(time.Millisecond).UnixMilli(); got != want {
		t.Fatalf("first stamp with room in the window: %d, want %d", got, want)
	}
}
