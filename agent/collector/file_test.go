package collector

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/fleetwatch/fleetwatch/agent/telemetry"
)

// A DS18B20 as the w1-therm driver shows it.
const (
	w1SlaveOK = "72 01 4b 46 7f ff 0e 10 57 : crc=57 YES\n72 01 4b 46 7f ff 0e 10 57 t=23125\n"
	w1SlaveNO = "72 01 4b 46 7f ff 0e 10 57 : crc=57 NO\n72 01 4b 46 7f ff 0e 10 57 t=85000\n"
)

func TestParseFileNumber(t *testing.T) {
	tests := []struct {
		in      string
		want    float64
		wantErr bool
	}{
		{"23125\n", 23125, false},
		{"  -1.5e2 \n", -150, false},
		{"0", 0, false},
		{w1SlaveOK, 23125, false},
		{"aa : crc=aa YES\naa t=-62\n", -62, false},
		{"t=1 t=2\n", 2, false}, // the last t= wins
		{w1SlaveNO, 0, true},
		{"", 0, true},
		{"\n", 0, true},
		{"23.1 C\n", 0, true},
		{"NaN", 0, true},
		{"Inf", 0, true},
		{"aa t=\n", 0, true},
		{"aa t=hot\n", 0, true},
	}
	for _, tt := range tests {
		t.Run(strconv.Quote(tt.in), func(t *testing.T) {
			got, err := parseFileNumber(tt.in)
			if got != tt.want || (err != nil) != tt.wantErr {
				t.Errorf("parseFileNumber(%q) = %v, %v; want %v, error %v", tt.in, got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestFile_Collect(t *testing.T) {
	dir := t.TempDir()
	w1 := filepath.Join(dir, "devices")
	writeFile(t, filepath.Join(w1, "28-0316a2794cff/w1_slave"), w1SlaveOK)
	writeFile(t, filepath.Join(w1, "28-0316a2794cff/temperature"), "23125\n")
	writeFile(t, filepath.Join(dir, "two/28-a/temperature"), "1\n")
	writeFile(t, filepath.Join(dir, "two/28-b/temperature"), "2\n")
	writeFile(t, filepath.Join(dir, "plain"), "42\n")
	writeFile(t, filepath.Join(dir, "crc"), w1SlaveNO)
	writeFile(t, filepath.Join(dir, "big"), strings.Repeat("1", maxFileSize+1))
	writeFile(t, filepath.Join(dir, "huge"), "1e308\n")

	ok := []struct {
		name string
		f    File
		want string
	}{
		{"w1_slave", File{Key: "room", Path: filepath.Join(w1, "28-0316a2794cff/w1_slave"), Scale: 0.001}, "map[custom.room:23.125]"},
		{"temperature by glob", File{Key: "room", Path: filepath.Join(w1, "28-*/temperature"), Scale: 0.001}, "map[custom.room:23.125]"},
		{"plain number, no scale", File{Key: "level", Path: filepath.Join(dir, "plain")}, "map[custom.level:42]"},
		{"metric name", File{Key: "level", Path: filepath.Join(dir, "plain"), Metric: "tank.level"}, "map[tank.level:42]"},
	}
	for _, tt := range ok {
		t.Run(tt.name, func(t *testing.T) {
			m := telemetry.Metrics{}
			if err := tt.f.Collect(context.Background(), m); err != nil || fmt.Sprint(m) != tt.want {
				t.Errorf("Collect = %v, %v; want %s", m, err, tt.want)
			}
		})
	}

	bad := []struct {
		name, path string
		scale      float64
		want       string
	}{
		{"missing file", filepath.Join(dir, "missing"), 0, "no such file"},
		{"glob matching nothing", filepath.Join(dir, "nothing-*/temperature"), 0, "no such file"},
		{"glob matching two", filepath.Join(dir, "two/28-*/temperature"), 0, "matches 2 files"},
		{"failed crc", filepath.Join(dir, "crc"), 0, "CRC"},
		{"too big", filepath.Join(dir, "big"), 0, "longer than"},
		{"a directory", dir, 0, "is a directory"},
		{"overflow", filepath.Join(dir, "huge"), 1e10, "overflows"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			m := telemetry.Metrics{}
			err := (&File{Key: "x", Path: tt.path, Scale: tt.scale}).Collect(context.Background(), m)
			if err == nil || !strings.Contains(err.Error(), tt.want) || len(m) != 0 {
				t.Errorf("Collect = %v, %v; want no metrics and an error containing %q", m, err, tt.want)
			}
		})
	}
}
