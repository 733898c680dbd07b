package web

import (
	"bytes"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"
)

// deliveryBounds are the histogram's upper bounds in ms: publish → the
// event's bytes handed to the client's socket.
var deliveryBounds = [...]int64{1, 2, 5, 10, 20, 30, 50, 75, 100, 150, 200, 250, 300, 500, 1000, 2500, 5000}

// deliveryHist times live delivery on one transport: how long events wait
// in the hub, fan-out included. Lock-free: every send records into it.
type deliveryHist struct {
	buckets [len(deliveryBounds) + 1]atomic.Uint64 // the last is +Inf
	sumMS   atomic.Uint64
}

// record adds one event published at publishedMS (Unix ms), sent now.
func (h *deliveryHist) record(publishedMS int64, now time.Time) {
	d := max(now.UnixMilli()-publishedMS, 0)
	i := 0
	for i < len(deliveryBounds) && d > deliveryBounds[i] {
		i++
	}
	h.buckets[i].Add(1)
	h.sumMS.Add(uint64(d))
}

// write appends the Prometheus histogram for transport tr (cumulative).
func (h *deliveryHist) write(b *bytes.Buffer, tr string) {
	const name = "fleetwatch_live_delivery_seconds"
	var cum uint64
	for i := range h.buckets {
		cum += h.buckets[i].Load()
		le := "+Inf"
		if i < len(deliveryBounds) {
			le = strconv.FormatFloat(float64(deliveryBounds[i])/1000, 'g', -1, 64)
		}
		fmt.Fprintf(b, "%s_bucket{transport=%q,le=%q} %d\n", name, tr, le, cum)
	}
	fmt.Fprintf(b, "%s_sum{transport=%q} %g\n%s_count{transport=%q} %d\n", name, tr, float64(h.sumMS.Load())/1000, name, tr, cum)
}
