package boltstore

import (
	"encoding/binary"
	"fmt"
	"math"

	bolt "go.etcd.io/bbolt"

	"github.com/fleetwatch/fleetwatch/hub/chunk"
)

// migrateLegacy converts the walking-skeleton layout (one key per sample,
// series/<device>/<metric>/<ts BE8> → float64 bits) into chunks and
// rollups, one series per transaction, then drops it. An interrupted
// migration resumes: a series is deleted in the transaction that stores it.
func (s *Store) migrateLegacy() error {
	for {
		var device, metric []byte
		err := s.db.View(func(tx *bolt.Tx) error {
			legacy := tx.Bucket(bucketLegacy)
			if legacy == nil {
				return nil
			}
			return legacy.ForEachBucket(func(dev []byte) error {
				if device != nil {
					return nil
				}
				return legacy.Bucket(dev).ForEachBucket(func(m []byte) error {
					if device == nil {
						device, metric = append([]byte{}, dev...), append([]byte{}, m...)
					}
					return nil
				})
			})
		})
		if err != nil {
			return err
		}
		if device == nil {
			return s.db.Update(func(tx *bolt.Tx) error {
				if tx.Bucket(bucketLegacy) == nil {
					return nil
				}
				s.opt.Logger.Info("migrated walking-skeleton history to chunks")
				return tx.DeleteBucket(bucketLegacy)
			})
		}
		if err := s.migrateSeries(string(device), string(metric)); err != nil {
			return fmt.Errorf("series %s %s: %w", device, metric, err)
		}
	}
}

func (s *Store) migrateSeries(dev, metric string) error {
	var pts []chunk.Point
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketLegacy).Bucket([]byte(dev)).Bucket([]byte(metric)).ForEach(func(k, v []byte) error {
			if len(k) == 8 && len(v) == 8 {
				pts = append(pts, chunk.Point{TS: int64(binary.BigEndian.Uint64(k)), V: math.Float64frombits(binary.BigEndian.Uint64(v))})
			}
			return nil
		})
	})
	if err != nil {
		return err
	}
	now := s.opt.Now().UnixMilli()
	c := s.newCommit(now)
	err = s.db.Update(func(tx *bolt.Tx) error {
		c.tx, c.sids = tx, tx.Bucket(bucketSIDs)
		sr, err := c.seriesFor(dev, metric)
		if err != nil {
			return err
		}
		st := c.state(sr)
		for _, p := range pts {
			if p.TS >= c.rawFloor {
				c.backfill[sr] = append(c.backfill[sr], p)
				st.sealed = max(st.sealed, p.TS)
			}
		}
		if err := c.flushBackfill(); err != nil {
			return err
		}
		if err := c.flushRollups(); err != nil {
			return err
		}
		return tx.Bucket(bucketLegacy).Bucket([]byte(dev)).DeleteBucket([]byte(metric))
	})
	if err != nil {
		return err
	}
	s.publish(c)
	return nil
}
