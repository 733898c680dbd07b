package collector

import (
	"context"
	"fmt"

	"github.com/shirou/gopsutil/v3/mem"

	"github.com/fleetwatch/fleetwatch/agent/telemetry"
)

// MemUsage is the memory picture the metrics report.
type MemUsage struct {
	Total, Used, Available float64 // bytes
	UsedPercent            float64
}

// memUsage counts as used whatever is not available (total − MemAvailable),
// as procps-ng free(1) does since 4.0: cache the kernel can drop is not
// pressure, and MemAvailable is the kernel's own estimate of what it can
// hand out without swapping.
func memUsage(total, available uint64) MemUsage {
	if available > total {
		available = total
	}
	used := float64(total - available)
	return MemUsage{
		Total:       float64(total),
		Used:        used,
		Available:   float64(available),
		UsedPercent: percent(used, float64(total)),
	}
}

// swapUsage returns used bytes and percent; free above total (a racy read)
// counts as nothing used.
func swapUsage(total, free uint64) (used, usedPercent float64) {
	if free > total {
		free = total
	}
	used = float64(total - free)
	return used, percent(used, float64(total))
}

// Memory reports RAM and swap usage. It keeps no state.
type Memory struct{}

// Name implements agent.Collector.
func (Memory) Name() string { return "memory" }

// Collect implements agent.Collector. Swap comes from the same
// /proc/meminfo read: gopsutil's SwapMemory would also parse /proc/vmstat
// and /proc/swaps, most of this collector's cost, for fields not reported.
func (Memory) Collect(ctx context.Context, m telemetry.Metrics) error {
	vm, err := mem.VirtualMemoryWithContext(ctx)
	if err != nil {
		return fmt.Errorf("read memory: %w", err)
	}
	u := memUsage(vm.Total, vm.Available)
	put(m, "mem.total_bytes", u.Total)
	put(m, "mem.used_bytes", u.Used)
	put(m, "mem.available_bytes", u.Available)
	put(m, "mem.used_percent", u.UsedPercent)
	swapUsed, swapPercent := swapUsage(vm.SwapTotal, vm.SwapFree)
	put(m, "swap.total_bytes", float64(vm.SwapTotal))
	put(m, "swap.used_bytes", swapUsed)
	put(m, "swap.used_percent", swapPercent)
	return nil
}
