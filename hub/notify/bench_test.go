package notify

import (
	"strconv"
	"testing"
)

// BenchmarkNotifier_Notify measures the cost the hub's alert evaluation pays
// per alert: two receivers, queues full (nothing drains them).
func BenchmarkNotifier_Notify(b *testing.B) {
	n := testNotifier(Receiver{Name: "a", URL: "http://127.0.0.1:1"}, Receiver{Name: "b", URL: "http://127.0.0.1:1"})
	alerts := make([]string, 10000)
	for i := range alerts {
		alerts[i] = "a" + strconv.Itoa(i)
	}
	a := firing("")
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		a.ID = alerts[i%len(alerts)]
		a.Summary = strconv.Itoa(i & 1) // changes each time, so every call queues
		n.Notify(a)
		i++
	}
}
