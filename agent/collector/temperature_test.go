package collector

import (
	"fmt"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/shirou/gopsutil/v3/host"

	"github.com/fleetwatch/fleetwatch/agent/telemetry"
)

func TestParseMilliCelsius(t *testing.T) {
	tests := []struct {
		in      string
		want    float64
		wantErr bool
	}{
		{"48312\n", 48.312, false},
		{"0", 0, false},
		{"-5500\n", -5.5, false},
		{" 100000 ", 100, false},
		{"", 0, true},
		{"48.3", 0, true},
		{"hot", 0, true},
	}
	for _, tt := range tests {
		t.Run(strconv.Quote(tt.in), func(t *testing.T) {
			got, err := parseMilliCelsius(tt.in)
			if got != tt.want || (err != nil) != tt.wantErr {
				t.Errorf("parseMilliCelsius(%q) = %v, %v; want %v, error %v", tt.in, got, err, tt.want, tt.wantErr)
			}
		})
	}
}

// zoneTree writes thermal zones into a sysfs fixture: a value of "" leaves
// the temp file out.
func zoneTree(t *testing.T, root string, zones map[string]string) {
	t.Helper()
	for name, temp := range zones {
		dir := filepath.Join(root, "class/thermal", name)
		writeFile(t, filepath.Join(dir, "type"), "test\n")
		if temp != "" {
			writeFile(t, filepath.Join(dir, "temp"), temp)
		}
	}
}

func TestReadThermalZones(t *testing.T) {
	t.Run("mixed zones", func(t *testing.T) {
		root := t.TempDir()
		zoneTree(t, root, map[string]string{
			"thermal_zone0":  "48312\n",
			"thermal_zone1":  "45000\n",
			"thermal_zone10": "30000\n",
			"thermal_zone2":  "",          // no temp file
			"thermal_zone3":  "garbage\n", // unreadable value
			"thermal_zoneX":  "1000\n",    // not a zone number
		})
		writeFile(t, filepath.Join(root, "class/thermal/cooling_device0/cur_state"), "0\n")
		got := readThermalZones(root)
		want := []ThermalZone{{0, 48.312}, {1, 45}, {10, 30}}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("got %v, want %v", got, want)
		}
	})
	t.Run("no thermal class", func(t *testing.T) {
		if got := readThermalZones(t.TempDir()); len(got) != 0 {
			t.Errorf("got %v, want none", got)
		}
	})
	t.Run("capped to the lowest numbers", func(t *testing.T) {
		root := t.TempDir()
		zones := map[string]string{}
		for i := range MaxZones + 4 {
			zones["thermal_zone"+strconv.Itoa(i)] = strconv.Itoa(i * 1000)
		}
		zoneTree(t, root, zones)
		got := readThermalZones(root)
		if len(got) != MaxZones {
			t.Fatalf("got %d zones, want %d", len(got), MaxZones)
		}
		if last := got[len(got)-1]; last.N != MaxZones-1 {
			t.Errorf("last zone = %d, want %d", last.N, MaxZones-1)
		}
	})
}

func TestPutSensors(t *testing.T) {
	var temps []host.TemperatureStat
	temps = append(temps,
		host.TemperatureStat{SensorKey: "coretemp_package_id_0", Temperature: 55},
		host.TemperatureStat{SensorKey: "nvme", Temperature: 35},
		host.TemperatureStat{SensorKey: "nvme", Temperature: 36},
		host.TemperatureStat{SensorKey: "---", Temperature: 1},
	)
	for i := range MaxSensors {
		temps = append(temps, host.TemperatureStat{SensorKey: fmt.Sprintf("extra%d", i), Temperature: 20})
	}
	m := telemetry.Metrics{}
	putSensors(m, temps)
	if got, want := len(m), MaxSensors; got != want {
		t.Errorf("got %d metrics, want %d", got, want)
	}
	for name, want := range map[string]float64{"temp.coretemp_package_id_0": 55, "temp.nvme": 35, "temp.nvme_2": 36} {
		if got := m[name]; got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
}

func TestTemperature_Collect(t *testing.T) {
	t.Run("pi with hwmon and zones", func(t *testing.T) {
		root := t.TempDir()
		hw := filepath.Join(root, "class/hwmon")
		writeFile(t, filepath.Join(hw, "hwmon0/name"), "cpu_thermal\n")
		writeFile(t, filepath.Join(hw, "hwmon0/temp1_input"), "48312\n")
		writeFile(t, filepath.Join(hw, "hwmon1/name"), "nvme\n")
		writeFile(t, filepath.Join(hw, "hwmon1/temp1_label"), "Composite\n")
		writeFile(t, filepath.Join(hw, "hwmon1/temp1_input"), "35850\n")
		writeFile(t, filepath.Join(hw, "hwmon2/name"), "broken\n")
		writeFile(t, filepath.Join(hw, "hwmon2/temp1_input"), "n/a\n")
		zoneTree(t, root, map[string]string{"thermal_zone0": "48312\n", "thermal_zone1": "41000\n"})

		m := telemetry.Metrics{}
		if err := (&Temperature{SysRoot: root}).Collect(t.Context(), m); err != nil {
			t.Errorf("got error %v, want none: one bad input is only a warning", err)
		}
		want := telemetry.Metrics{
			"temp.cpu_thermal": 48.312, "temp.nvme_composite": 35.85,
			"temp.zone0": 48.312, "temp.zone1": 41, "temp.soc": 48.312,
		}
		if fmt.Sprint(m) != fmt.Sprint(want) {
			t.Errorf("got %v, want %v", m, want)
		}
	})
	t.Run("only broken sensors", func(t *testing.T) {
		root := t.TempDir()
		writeFile(t, filepath.Join(root, "class/hwmon/hwmon0/name"), "broken\n")
		writeFile(t, filepath.Join(root, "class/hwmon/hwmon0/temp1_input"), "n/a\n")
		err := (&Temperature{SysRoot: root}).Collect(t.Context(), telemetry.Metrics{})
		if err == nil {
			t.Errorf("got nil error, want one")
		}
	})
	t.Run("no sensors at all", func(t *testing.T) {
		m := telemetry.Metrics{}
		if err := (&Temperature{SysRoot: t.TempDir()}).Collect(t.Context(), m); err != nil || len(m) != 0 {
			t.Errorf("got %v, %v; want no metrics, no error", m, err)
		}
	})
}
