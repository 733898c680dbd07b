package boltstore_test

import (
	"encoding/binary"
	"math"
	"path/filepath"
	"slices"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/fleetwatch/fleetwatch/hub"
)

// TestOpen_migratesWalkingSkeleton opens a file in the first release's
// layout (one key per sample) and finds its history in chunks.
func TestOpen_migratesWalkingSkeleton(t *testing.T) {
	path := filepath.Join(t.TempDir(), "fleetwatch.db")
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	var want []hub.Point
	err = db.Update(func(tx *bolt.Tx) error {
		for _, name := range []string{"devices", "acks"} {
			if _, err := tx.CreateBucket([]byte(name)); err != nil {
				return err
			}
		}
		series, err := tx.CreateBucket([]byte("series"))
		if err != nil {
			return err
		}
		dev, err := series.CreateBucket([]byte("pi-a"))
		if err != nil {
			return err
		}
		for _, metric := range []string{cpuMetric, memMetric} {
			mb, err := dev.CreateBucket([]byte(metric))
			if err != nil {
				return err
			}
			for i := range 700 {
				var k, v [8]byte
				ts := t0 + int64(i)*1000
				binary.BigEndian.PutUint64(k[:], uint64(ts))
				binary.BigEndian.PutUint64(v[:], math.Float64bits(float64(i)/10))
				if err := mb.Put(k[:], v[:]); err != nil {
					return err
				}
				if metric == cpuMetric {
					want = append(want, hub.Point{TS: ts, Value: float64(i) / 10})
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	s := mustOpenWith(t, path, testOptions())
	got, _ := mustHistory(t, s, "pi-a", cpuMetric, t0, t0+1e6, 100_000)
	if !slices.Equal(got, want) {
		t.Errorf("migrated history: %d points, want %d; first diff at %d", len(got), len(want), firstDiff(got, want))
	}
	ser := mustSeries(t, s, hub.HistoryQuery{Device: "pi-a", Metrics: []string{memMetric}, From: t0, To: t0 + 1e6, Points: 10})
	if ser.Step == 0 || len(ser.Buckets) == 0 {
		t.Errorf("migrated series has no rollups: %+v", ser)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	db, err = bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.View(func(tx *bolt.Tx) error {
		if tx.Bucket([]byte("series")) != nil {
			t.Error("the walking-skeleton bucket is still there after migration")
		}
		return nil
	})
}
