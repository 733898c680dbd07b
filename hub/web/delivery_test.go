package web

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestDeliveryHist_record(t *testing.T) {
	now := time.UnixMilli(1_000_000)
	var h deliveryHist
	for _, lagMS := range []int64{0, 1, 3, 100, 101, 9000, -5} { // -5: a clock step; counts as 0
		h.record(now.UnixMilli()-lagMS, now)
	}
	var b bytes.Buffer
	h.write(&b, "ws")
	text := b.String()
	for _, want := range []string{
		`fleetwatch_live_delivery_seconds_bucket{transport="ws",le="0.001"} 3` + "\n", // 0, 1, and the step
		`fleetwatch_live_delivery_seconds_bucket{transport="ws",le="0.005"} 4` + "\n",
		`fleetwatch_live_delivery_seconds_bucket{transport="ws",le="0.1"} 5` + "\n",
		`fleetwatch_live_delivery_seconds_bucket{transport="ws",le="0.15"} 6` + "\n",
		`fleetwatch_live_delivery_seconds_bucket{transport="ws",le="5"} 6` + "\n",
		`fleetwatch_live_delivery_seconds_bucket{transport="ws",le="+Inf"} 7` + "\n",
		`fleetwatch_live_delivery_seconds_count{transport="ws"} 7` + "\n",
		`fleetwatch_live_delivery_seconds_sum{transport="ws"} 9.205` + "\n",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("histogram lacks %q; got\n%s", want, text)
		}
	}
}
