package boltstore

import (
	"encoding/json"
	"fmt"
	"slices"

	bolt "go.etcd.io/bbolt"

	"github.com/fleetwatch/fleetwatch/hub"
)

// sweepEvery is how often (hub ms) Commit checks for expired partitions
// and partitions to compact; ledgerSweepEvery, for old gap records.
const (
	sweepEvery       = 60_000
	ledgerSweepEvery = 3_600_000
)

// maxLedger bounds the gap records kept per device; the oldest closed ones
// go first.
const maxLedger = 1000

// expire drops every partition whose whole span is past its tier's
// retention, and closed gap records as old as the raw retention, in one
// transaction of its own (the writer's, between commits).
func (s *Store) expire(now int64) error {
	// Most sweeps find nothing: look first, so an idle sweep costs no
	// commit (and no fsync).
	due := false
	err := s.db.View(func(tx *bolt.Tx) error {
		for i := range s.tiers {
			t := &s.tiers[i]
			if k, _ := tx.Bucket(t.name).Cursor().First(); k != nil && int64(bytes2u64(k))+t.part <= now-t.retention {
				due = true
			}
		}
		return nil
	})
	if err != nil || (!due && now-s.lastLedger < ledgerSweepEvery) {
		return err
	}
	s.lastLedger = now
	return s.db.Update(func(tx *bolt.Tx) error {
		for i := range s.tiers {
			t := &s.tiers[i]
			tb := tx.Bucket(t.name)
			var old [][]byte
			c := tb.Cursor()
			for k, _ := c.First(); k != nil; k, _ = c.Next() {
				if int64(bytes2u64(k))+t.part > now-t.retention {
					break
				}
				old = append(old, slices.Clone(k))
			}
			for _, k := range old {
				if err := tb.DeleteBucket(k); err != nil {
					return fmt.Errorf("expire partition %s/%d: %w", t.name, bytes2u64(k), err)
				}
				if err := dropCompactState(tx.Bucket(bucketMeta), t, k); err != nil {
					return err
				}
				s.opt.Logger.Info("expired history partition", "tier", string(t.name), "start_ms", bytes2u64(k))
			}
		}
		if err := s.expireRecords(tx, now-s.tiers[tierMinute].retention); err != nil {
			return err
		}
		return s.expireLedger(tx, now-s.tiers[tierRaw].retention)
	})
}

func (s *Store) expireLedger(tx *bolt.Tx, floor int64) error {
	gaps := tx.Bucket(bucketGaps)
	return gaps.ForEachBucket(func(dev []byte) error {
		gb := gaps.Bucket(dev)
		type closed struct {
			key []byte
			at  int64
		}
		var all []closed
		n := 0
		err := gb.ForEach(func(k, v []byte) error {
			n++
			var rec hub.GapRecord
			if err := json.Unmarshal(v, &rec); err != nil {
				return fmt.Errorf("decode gap record %q: %w", k, err)
			}
			if rec.Closed != 0 {
				all = append(all, closed{slices.Clone(k), rec.Closed})
			}
			return nil
		})
		if err != nil {
			return err
		}
		slices.SortFunc(all, func(a, b closed) int { return cmp64(a.at, b.at) })
		for _, c := range all {
			if c.at >= floor && n <= maxLedger {
				break
			}
			if err := gb.Delete(c.key); err != nil {
				return err
			}
			n--
		}
		return nil
	})
}
