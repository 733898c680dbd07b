package fleet

import (
	"fmt"
	"testing"
)

// BenchmarkCount counts a 10,000-device fleet by state.
func BenchmarkCount(b *testing.B) {
	devs := make([]Device, 10_000)
	states := []string{Online, Stale, Offline}
	for i := range devs {
		devs[i] = Device{ID: fmt.Sprintf("pi-%05d", i), State: states[i%3]}
	}
	b.ReportAllocs()
	for b.Loop() {
		if s := Count(devs); s.Total != len(devs) {
			b.Fatalf("Total=%d, want %d", s.Total, len(devs))
		}
	}
}
