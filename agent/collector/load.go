package collector

import (
	"context"
	"fmt"

	"github.com/shirou/gopsutil/v3/load"

	"github.com/fleetwatch/fleetwatch/agent/telemetry"
)

// Load reports the kernel's 1, 5 and 15 minute load averages. It keeps no
// state: the kernel already averages.
type Load struct{}

// Name implements agent.Collector.
func (Load) Name() string { return "load" }

// Collect implements agent.Collector.
func (Load) Collect(ctx context.Context, m telemetry.Metrics) error {
	avg, err := load.AvgWithContext(ctx)
	if err != nil {
		return fmt.Errorf("read load average: %w", err)
	}
	put(m, "load.1", avg.Load1)
	put(m, "load.5", avg.Load5)
	put(m, "load.15", avg.Load15)
	return nil
}
