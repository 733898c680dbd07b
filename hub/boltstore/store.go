// Package boltstore keeps the hub's history in a bbolt file.
//
// Layout (walking-skeleton version: one key per sample, simple and exact;
// compressed chunks come later behind the same hub.Store interface):
//
//	devices/<id>                       → JSON hub.DeviceRecord
//	series/<device>/<metric>/<ts BE8>  → float64 bits BE8
//	acks/<device>/<boot>               → watermark (uvarints)
//
// A sample is keyed by its timestamp, so a redelivered reading, or a second
// sample at the same instant, overwrites instead of adding. The acks
// watermark decides whether a (boot, seq) is new, so duplicates are skipped
// before they touch the series at all.
//
// Only the Ingester's writer goroutine calls Commit; reads run in their own
// read-only transactions.
package boltstore

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/fleetwatch/fleetwatch/agent/telemetry"
	"github.com/fleetwatch/fleetwatch/hub"
)

var (
	bucketDevices = []byte("devices")
	bucketSeries  = []byte("series")
	bucketAcks    = []byte("acks")
)

// ErrLocked means another process holds the store file open.
var ErrLocked = errors.New("store is locked by another process (is another fleetwatch-hub running on this data dir?)")

// DefaultLockTimeout bounds how long Open waits for the file lock.
const DefaultLockTimeout = time.Second

// Store is a bbolt-backed hub.Store.
type Store struct {
	db   *bolt.DB
	path string
	// marks caches watermarks by device+"\x00"+boot. Only Commit touches
	// it, and only the single writer calls Commit.
	marks map[string]*watermark
}

var _ hub.Store = (*Store)(nil)

// Open opens (creating if needed) the store file at path.
func Open(path string, lockTimeout time.Duration) (*Store, error) {
	if lockTimeout <= 0 {
		lockTimeout = DefaultLockTimeout
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("open store %q: %w", path, err)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{
		Timeout:      lockTimeout,
		FreelistType: bolt.FreelistMapType,
		// The freelist is rebuilt on open instead of written on every
		// commit: commits stay fast as the file grows.
		NoFreelistSync: true,
	})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, fmt.Errorf("open store %q: %w", path, ErrLocked)
	}
	if err != nil {
		return nil, fmt.Errorf("open store %q: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, name := range [][]byte{bucketDevices, bucketSeries, bucketAcks} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open store %q: create buckets: %w", path, err)
	}
	return &Store{db: db, path: path, marks: make(map[string]*watermark)}, nil
}

// Close closes the file.
func (s *Store) Close() error {
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("close store %q: %w", s.path, err)
	}
	return nil
}

// Path returns the file path.
func (s *Store) Path() string { return s.path }

// Check runs bbolt's consistency check and returns the first problem found.
func (s *Store) Check() error {
	return s.db.View(func(tx *bolt.Tx) error {
		var first error
		for err := range tx.Check() { // drain: the checker blocks until read
			if first == nil {
				first = fmt.Errorf("check store %q: %w", s.path, err)
			}
		}
		return first
	})
}

// Commit stores b in one transaction (two fsyncs) and returns the acks it
// allows.
func (s *Store) Commit(b *hub.Batch) (hub.CommitResult, error) {
	var res hub.CommitResult
	touched := make(map[string]*watermark)
	order := []string{}
	err := s.db.Update(func(tx *bolt.Tx) error {
		series := tx.Bucket(bucketSeries)
		acks := tx.Bucket(bucketAcks)
		for _, env := range b.Envelopes {
			// One lookup of the device's bucket per envelope, not per reading.
			db, err := series.CreateBucketIfNotExists([]byte(env.Device))
			if err != nil {
				return fmt.Errorf("create series bucket %q: %w", env.Device, err)
			}
			if env.Simple {
				for _, r := range env.Readings {
					if err := putReading(db, env.Device, r); err != nil {
						return err
					}
					res.Stored++
				}
				continue
			}
			key := env.Device + "\x00" + env.Boot
			m, ok := touched[key]
			if !ok {
				base, err := s.watermark(acks, env.Device, env.Boot)
				if err != nil {
					return err
				}
				m = base.clone()
				touched[key] = m
				order = append(order, key)
			}
			if env.First != nil {
				res.Gaps += int(m.settleBelow(*env.First))
			}
			for _, r := range env.Readings {
				if m.has(r.Seq) {
					res.Duplicates++
					continue
				}
				if err := putReading(db, env.Device, r); err != nil {
					return err
				}
				m.add(r.Seq)
				res.Stored++
			}
		}
		for _, key := range order {
			device, boot := splitKey(key)
			db, err := acks.CreateBucketIfNotExists([]byte(device))
			if err != nil {
				return fmt.Errorf("create acks bucket: %w", err)
			}
			if err := db.Put([]byte(boot), touched[key].encode()); err != nil {
				return fmt.Errorf("put watermark: %w", err)
			}
		}
		devices := tx.Bucket(bucketDevices)
		for _, rec := range b.Devices {
			v, err := json.Marshal(rec)
			if err != nil {
				return fmt.Errorf("encode device %q: %w", rec.ID, err)
			}
			if err := devices.Put([]byte(rec.ID), v); err != nil {
				return fmt.Errorf("put device %q: %w", rec.ID, err)
			}
		}
		return nil
	})
	if err != nil {
		return hub.CommitResult{}, fmt.Errorf("commit %d envelopes: %w", len(b.Envelopes), err)
	}
	for _, key := range order {
		m := touched[key]
		s.marks[key] = m
		if m.w > 0 {
			device, boot := splitKey(key)
			res.Acks = append(res.Acks, hub.DeviceAck{Device: device, Ack: telemetry.Ack{V: telemetry.Version, Boot: boot, Seq: m.w}})
		}
	}
	return res, nil
}

func splitKey(key string) (device, boot string) {
	for i := 0; i < len(key); i++ {
		if key[i] == 0 {
			return key[:i], key[i+1:]
		}
	}
	return key, ""
}

// watermark returns the cached or stored watermark of (device, boot).
func (s *Store) watermark(acks *bolt.Bucket, device, boot string) (*watermark, error) {
	if m, ok := s.marks[device+"\x00"+boot]; ok {
		return m, nil
	}
	m := &watermark{}
	if db := acks.Bucket([]byte(device)); db != nil {
		if v := db.Get([]byte(boot)); v != nil {
			var err error
			if m, err = decodeWatermark(v); err != nil {
				return nil, fmt.Errorf("watermark of %s/%s: %w", device, boot, err)
			}
		}
	}
	return m, nil
}

// putReading stores r's samples in db, the device's series bucket.
func putReading(db *bolt.Bucket, device string, r telemetry.Reading) error {
	var k [8]byte
	binary.BigEndian.PutUint64(k[:], uint64(r.TS))
	for name, v := range r.Metrics {
		mb, err := db.CreateBucketIfNotExists([]byte(name))
		if err != nil {
			return fmt.Errorf("create series %s/%s: %w", device, name, err)
		}
		var val [8]byte
		binary.BigEndian.PutUint64(val[:], math.Float64bits(v))
		if err := mb.Put(k[:], val[:]); err != nil {
			return fmt.Errorf("put %s/%s: %w", device, name, err)
		}
	}
	return nil
}

// History is a stand-in until the chunked store lands: raw points only.
func (s *Store) History(q hub.HistoryQuery) ([]hub.Series, error) {
	var out []hub.Series
	for _, m := range q.Metrics {
		pts, _, err := s.HistoryRaw(q.Device, m, q.From, q.To, hub.MaxHistoryPoints)
		if err != nil {
			return nil, err
		}
		out = append(out, hub.Series{Metric: m, Resolution: hub.ResolutionRaw, Points: pts})
	}
	return out, nil
}

// Completeness is a stand-in until the chunked store lands.
func (s *Store) Completeness(device string, from, to int64) (hub.Completeness, error) {
	return hub.Completeness{Device: device, From: from, To: to, Ratio: 1}, nil
}

// HistoryRaw is the walking-skeleton read, kept for its tests until the chunked store lands.
func (s *Store) HistoryRaw(device, metric string, from, to int64, limit int) ([]hub.Point, bool, error) {
	var pts []hub.Point
	more := false
	err := s.db.View(func(tx *bolt.Tx) error {
		db := tx.Bucket(bucketSeries).Bucket([]byte(device))
		if db == nil {
			return nil
		}
		mb := db.Bucket([]byte(metric))
		if mb == nil {
			return nil
		}
		var lo [8]byte
		binary.BigEndian.PutUint64(lo[:], uint64(max(from, 0)))
		c := mb.Cursor()
		for k, v := c.Seek(lo[:]); k != nil; k, v = c.Next() {
			ts := int64(binary.BigEndian.Uint64(k))
			if ts > to {
				break
			}
			if len(pts) == limit {
				more = true
				break
			}
			pts = append(pts, hub.Point{TS: ts, Value: math.Float64frombits(binary.BigEndian.Uint64(v))})
		}
		return nil
	})
	if err != nil {
		return nil, false, fmt.Errorf("history %s/%s: %w", device, metric, err)
	}
	return pts, more, nil
}

// Devices returns every stored device record.
func (s *Store) Devices() ([]hub.DeviceRecord, error) {
	var out []hub.DeviceRecord
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketDevices).ForEach(func(k, v []byte) error {
			var rec hub.DeviceRecord
			if err := json.Unmarshal(v, &rec); err != nil {
				return fmt.Errorf("decode device %q: %w", k, err)
			}
			out = append(out, rec)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("load devices: %w", err)
	}
	return out, nil
}

// Stats returns bbolt's counters; TxStats.Write counts page writes.
func (s *Store) Stats() bolt.Stats { return s.db.Stats() }
