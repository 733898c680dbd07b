package boltstore

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"slices"

	bolt "go.etcd.io/bbolt"

	"github.com/fleetwatch/fleetwatch/hub"
)

// Alerts and device timelines: small records, kept as JSON.
//
//	alerts/<id>                          → hub.Alert (newest version)
//	alert_times/<started BE8><id>        → nil: newest-first listing
//	events/<device>/<ts BE8><seq BE8>    → hub.DeviceEvent
var (
	bucketAlerts     = []byte("alerts")
	bucketAlertTimes = []byte("alert_times")
	bucketEvents     = []byte("events")
)

// Bounds on what the sweep keeps besides age: a flapping device must not
// grow the file without end.
const (
	maxAlerts       = 10_000
	maxDeviceEvents = 5_000
	// DefaultAlertLimit and MaxAlertLimit bound a listing.
	DefaultAlertLimit = 100
	MaxAlertLimit     = 1000
)

func (c *commit) writeAlerts(alerts []hub.Alert) error {
	if len(alerts) == 0 {
		return nil
	}
	ab, tb := c.tx.Bucket(bucketAlerts), c.tx.Bucket(bucketAlertTimes)
	for _, a := range alerts {
		v, err := json.Marshal(a)
		if err != nil {
			return fmt.Errorf("encode alert %q: %w", a.ID, err)
		}
		if err := ab.Put([]byte(a.ID), v); err != nil {
			return fmt.Errorf("put alert %q: %w", a.ID, err)
		}
		if err := tb.Put(alertTimeKey(a.StartedAt, a.ID), nil); err != nil {
			return fmt.Errorf("index alert %q: %w", a.ID, err)
		}
	}
	return nil
}

func alertTimeKey(started int64, id string) []byte {
	return append(u64Key(uint64(started)), id...)
}

func (c *commit) writeEvents(events []hub.DeviceEvent) error {
	if len(events) == 0 {
		return nil
	}
	eb := c.tx.Bucket(bucketEvents)
	for _, ev := range events {
		db, err := eb.CreateBucketIfNotExists([]byte(ev.Device))
		if err != nil {
			return fmt.Errorf("events bucket of %q: %w", ev.Device, err)
		}
		seq, err := db.NextSequence()
		if err != nil {
			return err
		}
		v, err := json.Marshal(ev)
		if err != nil {
			return fmt.Errorf("encode event of %q: %w", ev.Device, err)
		}
		if err := db.Put(append(u64Key(uint64(ev.TS)), u64Key(seq)...), v); err != nil {
			return fmt.Errorf("put event of %q: %w", ev.Device, err)
		}
	}
	return nil
}

// Alerts returns stored alerts matching q, newest first.
func (s *Store) Alerts(q hub.AlertQuery) ([]hub.Alert, error) {
	limit := q.Limit
	if limit <= 0 {
		limit = DefaultAlertLimit
	}
	limit = min(limit, MaxAlertLimit)
	out := []hub.Alert{}
	err := s.db.View(func(tx *bolt.Tx) error {
		ab := tx.Bucket(bucketAlerts)
		if q.ID != "" {
			v := ab.Get([]byte(q.ID))
			if v == nil {
				return nil
			}
			var a hub.Alert
			if err := json.Unmarshal(v, &a); err != nil {
				return fmt.Errorf("decode alert %q: %w", q.ID, err)
			}
			out = append(out, a)
			return nil
		}
		c := tx.Bucket(bucketAlertTimes).Cursor()
		for k, _ := c.Last(); k != nil && len(out) < limit; k, _ = c.Prev() {
			v := ab.Get(k[8:])
			if v == nil {
				continue
			}
			var a hub.Alert
			if err := json.Unmarshal(v, &a); err != nil {
				return fmt.Errorf("decode alert %q: %w", k[8:], err)
			}
			if (q.State == "" || a.State == q.State) && (q.Device == "" || a.Device == q.Device) {
				out = append(out, a)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list alerts: %w", err)
	}
	return out, nil
}

// DeviceEvents returns a device's timeline in [from, to] ms, newest first.
func (s *Store) DeviceEvents(device string, from, to int64, limit int) ([]hub.DeviceEvent, error) {
	out := []hub.DeviceEvent{}
	err := s.db.View(func(tx *bolt.Tx) error {
		db := tx.Bucket(bucketEvents).Bucket([]byte(device))
		if db == nil {
			return nil
		}
		c := db.Cursor()
		var k, v []byte
		if k, _ = c.Seek(u64Key(uint64(to) + 1)); k == nil {
			k, v = c.Last()
		} else {
			k, v = c.Prev()
		}
		for ; k != nil && len(out) < limit; k, v = c.Prev() {
			if int64(binary.BigEndian.Uint64(k)) < from {
				break
			}
			var ev hub.DeviceEvent
			if err := json.Unmarshal(v, &ev); err != nil {
				return fmt.Errorf("decode event %x: %w", k, err)
			}
			out = append(out, ev)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("device events of %q: %w", device, err)
	}
	return out, nil
}

// expireRecords drops resolved alerts and device events older than floor
// (ms), and the oldest past the count bounds.
func (s *Store) expireRecords(tx *bolt.Tx, floor int64) error {
	ab, tb := tx.Bucket(bucketAlerts), tx.Bucket(bucketAlertTimes)
	n := tb.Stats().KeyN
	var drop [][]byte
	c := tb.Cursor()
	for k, _ := c.First(); k != nil; k, _ = c.Next() {
		old := int64(binary.BigEndian.Uint64(k)) < floor
		if !old && n-len(drop) <= maxAlerts {
			break
		}
		var a hub.Alert
		if v := ab.Get(k[8:]); v != nil && json.Unmarshal(v, &a) == nil && a.Firing() {
			continue // a firing alert stays, however old
		}
		drop = append(drop, slices.Clone(k))
	}
	for _, k := range drop {
		if err := ab.Delete(k[8:]); err != nil {
			return err
		}
		if err := tb.Delete(k); err != nil {
			return err
		}
	}
	eb := tx.Bucket(bucketEvents)
	return eb.ForEachBucket(func(dev []byte) error {
		db := eb.Bucket(dev)
		n := db.Stats().KeyN
		var drop [][]byte
		c := db.Cursor()
		for k, _ := c.First(); k != nil; k, _ = c.Next() {
			if int64(binary.BigEndian.Uint64(k)) >= floor && n-len(drop) <= maxDeviceEvents {
				break
			}
			drop = append(drop, slices.Clone(k))
		}
		for _, k := range drop {
			if err := db.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
}
