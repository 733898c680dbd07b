package boltstore

import (
	"bytes"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// Why compact: a series gains one chunk per commit at most, and bbolt, when
// one append overflows a page, moves at least two keys to the new page, so
// appended pages end about 70% full (50% for 1 KB values). Rewriting a
// closed partition's series buckets in one transaction each packs them to
// about 95%; bbolt reuses the pages this frees for the next partition.

// compactBudget bounds the bytes one sweep rewrites, keeping its
// transaction short; a day's partition of a 100-device fleet takes a few
// hours of sweeps.
const compactBudget = 4 << 20

var (
	metaCompact = []byte("compact/")
	compactDone = []byte{0xff, 0xff, 0xff, 0xff}
)

func compactKey(t *tier, part []byte) []byte {
	k := append(append(append([]byte{}, metaCompact...), t.name...), '/')
	return append(k, part...)
}

// compact rewrites the series buckets of partitions closed for longer than
// the head age (no more appends, only rare backfill), within the budget.
func (s *Store) compact(now int64) error {
	grace := s.opt.MaxHeadAge.Milliseconds() + 2*minuteMS
	// Look first: most sweeps find every closed partition compacted, and
	// an empty commit would still cost two fsyncs.
	due := false
	err := s.db.View(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		for i := range s.tiers {
			t := &s.tiers[i]
			c := tx.Bucket(t.name).Cursor()
			for pk, _ := c.First(); pk != nil && !due; pk, _ = c.Next() {
				if int64(bytes2u64(pk))+t.part+grace > now {
					break
				}
				due = !bytes.Equal(meta.Get(compactKey(t, pk)), compactDone)
			}
		}
		return nil
	})
	if err != nil || !due {
		return err
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		budget := compactBudget
		for i := range s.tiers {
			t := &s.tiers[i]
			tb := tx.Bucket(t.name)
			c := tb.Cursor()
			for pk, _ := c.First(); pk != nil && budget > 0; pk, _ = c.Next() {
				if int64(bytes2u64(pk))+t.part+grace > now {
					break // partitions are in time order: the rest are open
				}
				key := compactKey(t, pk)
				from := meta.Get(key)
				if bytes.Equal(from, compactDone) {
					continue
				}
				pb := tb.Bucket(pk)
				if pb == nil {
					continue
				}
				next, err := compactPartition(pb, from, &budget)
				if err != nil {
					return fmt.Errorf("compact partition %s/%d: %w", t.name, bytes2u64(pk), err)
				}
				if next == nil {
					next = compactDone
				}
				if err := meta.Put(key, next); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

// compactPartition rewrites pb's series buckets from sid from on until the
// budget is spent; it returns the sid to resume at, nil when done.
func compactPartition(pb *bolt.Bucket, from []byte, budget *int) ([]byte, error) {
	var names [][]byte
	c := pb.Cursor()
	k, v := c.First()
	if from != nil {
		k, v = c.Seek(from)
	}
	for ; k != nil; k, v = c.Next() {
		if v == nil { // a nested bucket
			names = append(names, bytes.Clone(k))
		}
	}
	type kv struct{ k, v []byte }
	for _, name := range names {
		if *budget <= 0 {
			return name, nil
		}
		old := pb.Bucket(name)
		var items []kv
		err := old.ForEach(func(k, v []byte) error {
			items = append(items, kv{bytes.Clone(k), bytes.Clone(v)})
			*budget -= len(k) + len(v)
			return nil
		})
		if err != nil {
			return nil, err
		}
		if err := pb.DeleteBucket(name); err != nil {
			return nil, err
		}
		nb, err := pb.CreateBucket(name)
		if err != nil {
			return nil, err
		}
		nb.FillPercent = 1.0
		for _, it := range items {
			if err := nb.Put(it.k, it.v); err != nil {
				return nil, err
			}
		}
	}
	return nil, nil
}

// dropCompactState forgets the compaction progress of an expired partition.
func dropCompactState(meta *bolt.Bucket, t *tier, part []byte) error {
	return meta.Delete(compactKey(t, part))
}
