package collector

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/shirou/gopsutil/v3/common"
	"github.com/shirou/gopsutil/v3/host"

	"github.com/fleetwatch/fleetwatch/agent/telemetry"
)

// parseMilliCelsius parses a sysfs temperature in millidegrees Celsius,
// e.g. "48312\n" → 48.312.
func parseMilliCelsius(s string) (float64, error) {
	v, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("parse millidegrees %q: %w", strings.TrimSpace(s), err)
	}
	return float64(v) / 1000, nil
}

// ThermalZone is one /sys/class/thermal/thermal_zone<N>.
type ThermalZone struct {
	N       int
	Celsius float64
}

// readThermalZones reads the lowest-numbered MaxZones thermal zones under
// sysRoot, in zone order. A zone that cannot be read is left out, not an
// error: some report ENODATA for good while their device is off (iwlwifi
// with the radio down), and that is not a failure of this host.
func readThermalZones(sysRoot string) []ThermalZone {
	dirs, _ := filepath.Glob(filepath.Join(sysRoot, "class/thermal/thermal_zone*")) // only fails on a bad pattern
	nums := make([]int, 0, len(dirs))
	for _, dir := range dirs {
		n, err := strconv.Atoi(strings.TrimPrefix(filepath.Base(dir), "thermal_zone"))
		if err == nil && n >= 0 {
			nums = append(nums, n)
		}
	}
	sort.Ints(nums)
	if len(nums) > MaxZones {
		nums = nums[:MaxZones]
	}
	zones := make([]ThermalZone, 0, len(nums))
	for _, n := range nums {
		b, err := os.ReadFile(filepath.Join(sysRoot, "class/thermal", "thermal_zone"+strconv.Itoa(n), "temp"))
		if err != nil {
			continue
		}
		c, err := parseMilliCelsius(string(b))
		if err != nil {
			continue
		}
		zones = append(zones, ThermalZone{N: n, Celsius: c})
	}
	return zones
}

// putSensors adds temp.<sensor> for the first MaxSensors hwmon readings.
// Sensor keys repeat when a chip has unlabeled inputs (two "nvme" drives),
// so later ones get _2, _3….
func putSensors(m telemetry.Metrics, temps []host.TemperatureStat) {
	keys := make(map[string]bool, len(temps))
	for _, t := range temps {
		if len(keys) == MaxSensors {
			return
		}
		key := Sanitize(t.SensorKey)
		if key == "" {
			continue
		}
		put(m, "temp."+uniqueKey(keys, key), t.Temperature)
	}
}

// Temperature reports hwmon sensors (through gopsutil) and thermal zones.
// A host without either reports nothing and no error.
type Temperature struct {
	// SysRoot is where sysfs is mounted; default "/sys". It is handed to
	// gopsutil too, so tests and containers can point both at another tree.
	SysRoot string
}

// Name implements agent.Collector.
func (*Temperature) Name() string { return "temperature" }

// Collect implements agent.Collector.
func (t *Temperature) Collect(ctx context.Context, m telemetry.Metrics) error {
	root := orDefault(t.SysRoot, "/sys")
	var err error
	sctx := context.WithValue(ctx, common.EnvKey, common.EnvMap{common.HostSysEnvKey: root})
	temps, serr := host.SensorsTemperaturesWithContext(sctx)
	putSensors(m, temps)
	var warns *host.Warnings
	// Warnings come with the sensors that did read: one dead input is not
	// worth an error every interval, but all of them failing is.
	if serr != nil && !(errors.As(serr, &warns) && len(temps) > 0) {
		err = fmt.Errorf("read temperature sensors: %w", serr)
	}
	for _, z := range readThermalZones(root) {
		put(m, "temp.zone"+strconv.Itoa(z.N), z.Celsius)
		if z.N == 0 {
			// The Raspberry Pi firmware exposes the SoC as zone 0.
			put(m, "temp.soc", z.Celsius)
		}
	}
	return err
}
