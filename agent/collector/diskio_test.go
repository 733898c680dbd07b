package collector

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/shirou/gopsutil/v3/disk"

	"github.com/fleetwatch/fleetwatch/agent/telemetry"
)

func TestSkipBlockDev(t *testing.T) {
	tests := []struct {
		name string
		want bool
	}{
		{"sda", false},
		{"sda1", false},
		{"mmcblk0p2", false},
		{"nvme0n1", false},
		{"zram0", false},
		{"loop0", true},
		{"ram15", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := skipBlockDev(tt.name); got != tt.want {
				t.Errorf("skipBlockDev(%q) = %v, want %v", tt.name, got, tt.want)
			}
		})
	}
}

func ioStats(pairs ...any) map[string]disk.IOCountersStat {
	out := map[string]disk.IOCountersStat{}
	for i := 0; i < len(pairs); i += 3 {
		name := pairs[i].(string)
		out[name] = disk.IOCountersStat{Name: name, ReadBytes: uint64(pairs[i+1].(int)), WriteBytes: uint64(pairs[i+2].(int))}
	}
	return out
}

func TestDiskIO_update(t *testing.T) {
	t0 := time.Date(2025, 11, 29, 12, 0, 0, 0, time.UTC)
	d := &DiskIO{}

	m := telemetry.Metrics{}
	d.update(t0, ioStats("sda", 1000, 2000, "loop0", 5, 5), m)
	if len(m) != 0 {
		t.Errorf("first update: got %v, want no metrics", m)
	}

	m = telemetry.Metrics{}
	d.update(t0.Add(2*time.Second), ioStats("sda", 5000, 2000, "loop0", 50, 50, "sdb", 10, 10), m)
	want := telemetry.Metrics{"diskio.sda.read_bytes_per_s": 2000, "diskio.sda.write_bytes_per_s": 0}
	if fmt.Sprint(m) != fmt.Sprint(want) {
		t.Errorf("second update: got %v, want %v (sdb is new, loop0 skipped)", m, want)
	}

	// sda's read counter was reset (device re-attached): skip that point,
	// keep the write rate, and resume from the new value next time.
	m = telemetry.Metrics{}
	d.update(t0.Add(3*time.Second), ioStats("sda", 100, 3000, "sdb", 10, 1034), m)
	want = telemetry.Metrics{"diskio.sda.write_bytes_per_s": 1000, "diskio.sdb.read_bytes_per_s": 0, "diskio.sdb.write_bytes_per_s": 1024}
	if fmt.Sprint(m) != fmt.Sprint(want) {
		t.Errorf("after reset: got %v, want %v", m, want)
	}

	m = telemetry.Metrics{}
	d.update(t0.Add(4*time.Second), ioStats("sda", 600, 3000), m)
	if got, want := m["diskio.sda.read_bytes_per_s"], 500.0; got != want {
		t.Errorf("after resume: read rate = %v, want %v", got, want)
	}
}

func TestDiskIO_updateCap(t *testing.T) {
	d := &DiskIO{}
	stats := map[string]disk.IOCountersStat{}
	for i := range MaxDevices + 10 {
		name := fmt.Sprintf("sd%02d", i)
		stats[name] = disk.IOCountersStat{Name: name, ReadBytes: 1}
	}
	t0 := time.Now()
	d.update(t0, stats, telemetry.Metrics{})
	m := telemetry.Metrics{}
	d.update(t0.Add(time.Second), stats, m)
	if got, want := len(m), 2*MaxDevices; got != want {
		t.Errorf("got %d metrics, want %d", got, want)
	}
	if _, ok := m["diskio.sd00.read_bytes_per_s"]; !ok {
		t.Errorf("sd00 missing: the cap must keep the first names in order")
	}
}

func TestParseDiskstats(t *testing.T) {
	const sample = `   8       0 sda 1000 10 2048 300 500 20 4096 600 0 700 900 0 0 0 0
 179       0 mmcblk0 7 0 1 0 9
   7       0 loop0 1 0 2 0 0 0 0 0 0 0 0 0 0 0 0
`
	for _, tc := range []struct {
		name    string
		in      string
		want    map[string][2]uint64
		wantErr bool
	}{
		{name: "OK", in: sample[:strings.Index(sample, " 179")] + "\n" + sample[strings.Index(sample, "   7"):],
			want: map[string][2]uint64{"sda": {2048 * 512, 4096 * 512}, "loop0": {2 * 512, 0}}},
		{name: "ErrShortLine", in: sample, want: map[string][2]uint64{"sda": {2048 * 512, 4096 * 512}}, wantErr: true},
		{name: "ErrNotNumber", in: "8 0 sda 1 2 x 4 5 6 7 8 9 10 11\n", want: map[string][2]uint64{}, wantErr: true},
		{name: "Empty", in: "", want: map[string][2]uint64{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseDiskstats(tc.in)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err=%v, wantErr %v", err, tc.wantErr)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %d devices %v, want %d", len(got), got, len(tc.want))
			}
			for name, w := range tc.want {
				if g := got[name]; g.ReadBytes != w[0] || g.WriteBytes != w[1] {
					t.Fatalf("%s: read=%d write=%d, want %d %d", name, g.ReadBytes, g.WriteBytes, w[0], w[1])
				}
			}
		})
	}
}
