package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

var wsDialer = &websocket.Dialer{HandshakeTimeout: 15 * time.Second, ReadBufferSize: 4096, WriteBufferSize: 1024}

func wsURL(base string) string { return "ws" + strings.TrimPrefix(base, "http") + "/ws" }

// FanStats are what a set of fan-out clients saw.
type FanStats struct {
	Connected atomic.Int64 // clients that connected and subscribed
	Failed    atomic.Int64 // clients that could not connect
	Dropped   atomic.Int64 // connections that ended before the harness closed them
	Events    atomic.Int64 // fleet broadcasts received while recording
	Lag       Recorder     // receive − snapshot ts, ms
	firstErr  atomic.Value
}

func (f *FanStats) fail(err error) {
	f.Failed.Add(1)
	f.firstErr.CompareAndSwap(nil, err.Error())
}

// FirstError is the first connect error, if any.
func (f *FanStats) FirstError() string {
	s, _ := f.firstErr.Load().(string)
	return s
}

// snapshotTS finds the fleet snapshot's "ts" (hub ms clock) in the first
// bytes of a frame: {"type":"fleet","id":N,"data":{"version":V,"ts":T,…
// or an SSE data line {"version":V,"ts":T,…. The rest of a snapshot, which
// grows with the fleet, is never parsed.
func snapshotTS(prefix []byte) (int64, bool) {
	i := bytes.Index(prefix, []byte(`"ts":`))
	if i < 0 {
		return 0, false
	}
	rest := prefix[i+5:]
	j := 0
	for j < len(rest) && rest[j] >= '0' && rest[j] <= '9' {
		j++
	}
	ts, err := strconv.ParseInt(string(rest[:j]), 10, 64)
	return ts, err == nil && j > 0
}

// connectBudget bounds the connect phase of n fan-out clients: a swamped
// hub (every new client first gets the whole snapshot) must not stretch
// the run without end. Clients not started by then count as failed.
func connectBudget(n int) time.Duration {
	return max(30*time.Second, time.Duration(n)*10*time.Millisecond)
}

// runWSFleet connects n WebSocket clients subscribed to the fleet channel
// and reads until ctx is done. It returns once every client has connected
// or failed.
func runWSFleet(ctx context.Context, base string, n int, st *FanStats, wg *sync.WaitGroup) {
	runClients(ctx, n, st, wg, func() (func(), error) {
		c, err := dialSubscribe(ctx, base, []string{"fleet"})
		if err != nil {
			return nil, err
		}
		return func() { readFleetWS(ctx, c, st) }, nil
	})
}

// runClients starts n fan-out clients, at most 64 connecting at once
// within connectBudget(n): connect opens one and returns its reader, run
// on wg. It returns once every client has connected or failed.
func runClients(ctx context.Context, n int, st *FanStats, wg *sync.WaitGroup, connect func() (read func(), err error)) {
	sem := make(chan struct{}, 64)
	var ready sync.WaitGroup
	deadline := time.Now().Add(connectBudget(n))
	for i := range n {
		if ctx.Err() != nil {
			break
		}
		if time.Now().After(deadline) {
			st.Failed.Add(int64(n - i))
			st.firstErr.CompareAndSwap(nil, fmt.Sprintf("%d clients not started: connecting took over %s", n-i, connectBudget(n)))
			break
		}
		sem <- struct{}{}
		ready.Add(1)
		wg.Go(func() {
			read, err := connect()
			<-sem
			if err != nil {
				st.fail(err)
				ready.Done()
				return
			}
			st.Connected.Add(1)
			ready.Done()
			read()
		})
	}
	ready.Wait()
}

func dialSubscribe(ctx context.Context, base string, channels []string) (*websocket.Conn, error) {
	c, _, err := wsDialer.DialContext(ctx, wsURL(base), nil)
	if err != nil {
		return nil, fmt.Errorf("dial websocket: %w", err)
	}
	if err := subscribe(c, channels); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// subscribe sends one subscribe message per channel. The hub answers each,
// and cuts a client whose answers pile up: with many channels, read while
// subscribing.
func subscribe(c *websocket.Conn, channels []string) error {
	for _, ch := range channels {
		msg, _ := json.Marshal(map[string]string{"type": "subscribe", "channel": ch})
		if err := c.WriteMessage(websocket.TextMessage, msg); err != nil {
			return fmt.Errorf("subscribe %s: %w", ch, err)
		}
	}
	return nil
}

// readFleetWS reads frames, timing the fleet broadcasts (those with an
// "id"; the snapshot sent on subscribe has none and is not a broadcast).
func readFleetWS(ctx context.Context, c *websocket.Conn, st *FanStats) {
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	defer c.Close()
	buf := make([]byte, 256)
	for {
		_, r, err := c.NextReader()
		if err != nil {
			if ctx.Err() == nil {
				st.Dropped.Add(1)
			}
			return
		}
		n, _ := io.ReadFull(r, buf)
		if _, err := io.Copy(io.Discard, r); err != nil {
			continue
		}
		now := time.Now().UnixMilli()
		head := buf[:n]
		if !bytes.HasPrefix(head, []byte(`{"type":"fleet","id":`)) {
			continue
		}
		if data := bytes.Index(head, []byte(`"data":`)); data >= 0 {
			if ts, ok := snapshotTS(head[data:]); ok && st.Lag.on.Load() {
				st.Events.Add(1)
				st.Lag.Add(float64(now - ts))
			}
		}
	}
}

// LiveWS is a WebSocket client subscribed to device channels: it times
// each reading from its publish stamp, the same way PlainSub does.
type LiveWS struct {
	readings   atomic.Uint64
	subscribed atomic.Int64 // "subscribed" answers received
	devices    int          // channels subscribed
	Latency    Recorder
	err        atomic.Value
}

// runLiveWS subscribes one client to device:<id> for every id.
func runLiveWS(ctx context.Context, base string, ids []string, wg *sync.WaitGroup) (*LiveWS, error) {
	chans := make([]string, len(ids))
	for i, id := range ids {
		chans[i] = "device:" + id
	}
	c, _, err := wsDialer.DialContext(ctx, wsURL(base), nil)
	if err != nil {
		return nil, fmt.Errorf("dial websocket: %w", err)
	}
	l := &LiveWS{devices: len(ids)}
	wg.Go(func() {
		stop := context.AfterFunc(ctx, func() { c.Close() })
		defer stop()
		defer c.Close()
		var msg struct {
			Type string `json:"type"`
			Data struct {
				Metrics map[string]float64 `json:"metrics"`
			} `json:"data"`
		}
		for {
			_, b, err := c.ReadMessage()
			if err != nil {
				if ctx.Err() == nil {
					l.err.Store(err.Error())
				}
				return
			}
			now := time.Now().UnixMicro()
			if len(b) < 128 && bytes.Contains(b, []byte(`"type":"subscribed"`)) { // keys in any order
				l.subscribed.Add(1)
				continue
			}
			if !bytes.HasPrefix(b, []byte(`{"type":"reading"`)) {
				continue
			}
			msg.Data.Metrics = nil
			if json.Unmarshal(b, &msg) != nil {
				continue
			}
			l.readings.Add(1)
			if sent, ok := msg.Data.Metrics[stampMetric]; ok {
				l.Latency.Add(float64(now-int64(sent)) / 1000)
			}
		}
	})
	// The hub cuts a session whose outgoing queue (256) overflows, and it
	// reads subscribes faster than it writes their answers: keep at most
	// 100 answers outstanding.
	for i := 0; i < len(chans); i += 100 {
		if err := subscribe(c, chans[i:min(i+100, len(chans))]); err != nil {
			c.Close()
			return nil, err
		}
		sent := int64(min(i+100, len(chans)))
		if !waitFor(ctx, 30*time.Second, func() bool { return l.subscribed.Load() >= sent-100 || l.Err() != "" }) {
			c.Close()
			return nil, fmt.Errorf("subscribe: %d of %d answered within 30 s", l.subscribed.Load(), sent)
		}
		if e := l.Err(); e != "" {
			return nil, fmt.Errorf("subscribe: %s", e)
		}
	}
	return l, nil
}

// Err is why the client stopped early, if it did.
func (l *LiveWS) Err() string {
	s, _ := l.err.Load().(string)
	return s
}
