package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"
)

// sseClient is shared by the SSE fan-out clients: one TCP connection each,
// no overall timeout (the streams are long), bounded dial and header waits.
var sseClient = &http.Client{Transport: &http.Transport{
	DialContext:           (&net.Dialer{Timeout: 15 * time.Second}).DialContext,
	ResponseHeaderTimeout: 15 * time.Second,
	MaxIdleConnsPerHost:   -1,
	DisableCompression:    true,
}}

// runSSEFleet connects n SSE clients to /events, following the fleet
// channel, and times the fleet events after the first (the first is the
// current snapshot, sent on connect). It returns once every client has
// connected or failed.
func runSSEFleet(ctx context.Context, base string, n int, st *FanStats, wg *sync.WaitGroup) {
	runClients(ctx, n, st, wg, func() (func(), error) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/events?channels=fleet", nil)
		resp, err := sseClient.Do(req)
		if err != nil {
			return nil, err
		}
		if resp.StatusCode != http.StatusOK {
			resp.Body.Close()
			return nil, fmt.Errorf("GET /events: %s", resp.Status)
		}
		return func() {
			defer resp.Body.Close()
			readSSE(bufio.NewReaderSize(resp.Body, 32<<10), func(event string, data []byte) { //nolint:errcheck // the stream ends with the run
				if event != "fleet" {
					return
				}
				now := time.Now().UnixMilli()
				if ts, ok := snapshotTS(data); ok && st.Lag.on.Load() {
					st.Events.Add(1)
					st.Lag.Add(float64(now - ts))
				}
			})
			if ctx.Err() == nil {
				st.Dropped.Add(1)
			}
		}, nil
	})
}

// readSSE parses an event stream, calling fn with each event's type and
// the first bytes of its data once the event is complete. Data lines can
// be megabytes (a big fleet's snapshot): only a prefix is kept. The first
// event (the snapshot on connect) is skipped.
func readSSE(r *bufio.Reader, fn func(event string, dataPrefix []byte)) error {
	const keep = 256
	var event string
	data := make([]byte, 0, keep)
	first := true
	for {
		line, err := r.ReadSlice('\n')
		head := line
		for errors.Is(err, bufio.ErrBufferFull) {
			if len(head) > keep {
				head = head[:keep]
			}
			head = append([]byte(nil), head...)
			_, err = r.ReadSlice('\n')
			for errors.Is(err, bufio.ErrBufferFull) {
				_, err = r.ReadSlice('\n')
			}
		}
		if err != nil {
			return err
		}
		head = bytes.TrimRight(head, "\r\n")
		switch {
		case len(head) == 0 && len(line) > 0: // blank line: the event is complete
			if event != "" && !first {
				fn(event, data)
			}
			if event != "" {
				first = false
			}
			event, data = "", data[:0]
		case bytes.HasPrefix(head, []byte("event: ")):
			event = string(head[7:])
		case bytes.HasPrefix(head, []byte("data: ")):
			d := head[6:]
			data = append(data, d[:min(len(d), keep)]...)
		}
	}
}
