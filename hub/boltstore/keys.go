package boltstore

import (
	"encoding/binary"
	"fmt"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Keys are fixed-width big-endian so byte order is time order (bbolt's own
// advice for range scans) and a series' chunks are adjacent.

// sidKey names a series' bucket inside a partition.
func sidKey(sid uint32) []byte {
	k := make([]byte, 4)
	binary.BigEndian.PutUint32(k, sid)
	return k
}

func u64Key(v uint64) []byte {
	k := make([]byte, 8)
	binary.BigEndian.PutUint64(k, v)
	return k
}

// seriesKey names a series in the index: device, NUL, metric. Neither a
// device id nor a metric name can hold a NUL.
func seriesKey(device, metric string) string { return device + "\x00" + metric }

func splitSeriesKey(k []byte) (device, metric string, ok bool) {
	device, metric, ok = strings.Cut(string(k), "\x00")
	return device, metric, ok && device != "" && metric != ""
}

// seqMetric is the internal series of a device's reading seqs, which
// answers completeness queries. '@' is outside the metric-name alphabet, so
// it cannot collide with a device's metric.
const seqMetric = "@seq"

// Tier indexes.
const (
	tierRaw = iota
	tierMinute
	tierHour
)

// tier is one level of history: raw samples or rollups of a fixed width,
// in partitions of a fixed length that expire whole.
type tier struct {
	name      []byte
	width     int64 // rollup width in ms; 0 for raw
	part      int64 // partition length in ms
	retention int64 // ms
}

func (t *tier) partOf(ts int64) int64 { return floorDiv(ts, t.part) * t.part }

func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

var metaPartition = []byte("partition/")

// initTiers fixes each tier's partition length: the stored one, or the
// configured one for a new file.
func (s *Store) initTiers(tx *bolt.Tx) error {
	o := &s.opt
	s.tiers = [3]tier{
		{name: []byte("raw"), retention: o.RawRetention.Milliseconds()},
		{name: []byte("1m"), width: time.Minute.Milliseconds(), retention: o.MinuteRetention.Milliseconds()},
		{name: []byte("1h"), width: time.Hour.Milliseconds(), retention: o.HourRetention.Milliseconds()},
	}
	meta := tx.Bucket(bucketMeta)
	for i := range s.tiers {
		t := &s.tiers[i]
		if _, err := tx.CreateBucketIfNotExists(t.name); err != nil {
			return fmt.Errorf("create bucket %s: %w", t.name, err)
		}
		key := append(append([]byte{}, metaPartition...), t.name...)
		if v := meta.Get(key); len(v) == 8 {
			t.part = int64(binary.BigEndian.Uint64(v))
			continue
		}
		part := o.Partitions[i].Milliseconds()
		if part <= 0 {
			// Eight partitions per retention: expiring one frees an eighth
			// of the tier, which the next partition reuses, so the file
			// settles near 9/8 of the live data.
			part = max(t.retention/8/60_000*60_000, 60_000)
			if t.width > 0 {
				part = max(part/t.width*t.width, t.width)
			}
		}
		t.part = part
		if err := meta.Put(key, u64Key(uint64(part))); err != nil {
			return fmt.Errorf("store partition length of %s: %w", t.name, err)
		}
	}
	return nil
}
