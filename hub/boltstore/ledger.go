package boltstore

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/fleetwatch/fleetwatch/agent/telemetry"
	"github.com/fleetwatch/fleetwatch/hub"
	"github.com/fleetwatch/fleetwatch/hub/watermark"
)

// markState is one (device, boot)'s watermark during a commit.
type markState struct {
	device, boot string
	base         *watermark.Mark // as committed
	m            *watermark.Mark // working copy
	lost         [][2]uint64
	seen         []seqTS
}

type seqTS struct {
	seq uint64
	ts  int64
}

// settle settles every seq below first as lost and returns how many had
// not arrived.
func (ms *markState) settle(first uint64) uint64 {
	if first > 1 {
		ms.lost = append(ms.lost, ms.m.Holes(first-1)...)
	}
	return ms.m.SettleBelow(first)
}

// mark returns the working watermark of (device, boot).
func (c *commit) mark(device, boot string) (*markState, error) {
	key := device + "\x00" + boot
	if ms := c.marks[key]; ms != nil {
		return ms, nil
	}
	base, ok := c.s.marks[key]
	if !ok {
		base = &watermark.Mark{}
		if db := c.tx.Bucket(bucketAcks).Bucket([]byte(device)); db != nil {
			if v := db.Get([]byte(boot)); v != nil {
				var err error
				if base, err = watermark.Decode(v); err != nil {
					return nil, fmt.Errorf("watermark of %s/%s: %w", device, boot, err)
				}
			}
		}
	}
	ms := &markState{device: device, boot: boot, base: base, m: base.Clone()}
	c.marks[key] = ms
	c.markKeys = append(c.markKeys, key)
	return ms, nil
}

// writeMarks stores the watermarks this commit moved, computes the acks
// they allow and updates the gap ledger.
func (c *commit) writeMarks() error {
	acks := c.tx.Bucket(bucketAcks)
	for _, key := range c.markKeys {
		ms := c.marks[key]
		db, err := acks.CreateBucketIfNotExists([]byte(ms.device))
		if err != nil {
			return fmt.Errorf("create acks bucket: %w", err)
		}
		if err := db.Put([]byte(ms.boot), ms.m.Encode()); err != nil {
			return fmt.Errorf("put watermark: %w", err)
		}
		if ms.m.Contiguous() > 0 {
			c.res.Acks = append(c.res.Acks, hub.DeviceAck{Device: ms.device, Ack: telemetry.Ack{V: telemetry.Version, Boot: ms.boot, Seq: ms.m.Contiguous()}})
		}
		if err := c.ledger(ms); err != nil {
			return fmt.Errorf("gap ledger of %s: %w", ms.device, err)
		}
	}
	return nil
}

func ledgerKey(boot string, first uint64) []byte {
	k := make([]byte, 0, len(boot)+9)
	k = append(append(k, boot...), 0)
	return binary.BigEndian.AppendUint64(k, first)
}

// ledger records the seq gaps a commit opened, and what became of the open
// ones: filled by later readings or declared lost by the agent.
func (c *commit) ledger(ms *markState) error {
	after := ms.m.Holes(ms.m.Top())
	if len(after) == 0 && len(ms.lost) == 0 && len(ms.base.Holes(ms.base.Top())) == 0 {
		return nil // the common case: in-order readings, nothing missing
	}
	gb, err := c.tx.Bucket(bucketGaps).CreateBucketIfNotExists([]byte(ms.device))
	if err != nil {
		return err
	}
	prefix := append([]byte(ms.boot), 0)
	var covered [][2]uint64
	cur := gb.Cursor()
	type update struct {
		key []byte
		rec hub.GapRecord
	}
	var updates []update
	for k, v := cur.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = cur.Next() {
		var rec hub.GapRecord
		if err := json.Unmarshal(v, &rec); err != nil {
			return fmt.Errorf("decode gap record %q: %w", k, err)
		}
		r := [2]uint64{rec.FirstSeq, rec.LastSeq}
		covered = append(covered, r)
		if rec.Open == 0 {
			continue
		}
		open := watermark.Overlap(r, after)
		rec.Lost += watermark.Overlap(r, ms.lost)
		size := rec.LastSeq - rec.FirstSeq + 1
		rec.Lost = min(rec.Lost, size-open)
		rec.Open, rec.Filled = open, size-open-rec.Lost
		if open == 0 {
			rec.Closed = c.now
		}
		updates = append(updates, update{bytes.Clone(k), rec})
	}
	for _, h := range after {
		for _, piece := range watermark.Subtract(h, covered) {
			covered = append(covered, piece)
			rec := hub.GapRecord{
				Boot: ms.boot, FirstSeq: piece[0], LastSeq: piece[1], Seen: c.now,
				Open:   piece[1] - piece[0] + 1,
				Before: c.tsOfSeq(ms, piece[0]-1), After: c.tsOfSeq(ms, piece[1]+1),
			}
			updates = append(updates, update{ledgerKey(ms.boot, piece[0]), rec})
		}
	}
	for _, l := range ms.lost { // declared lost before they were ever seen missing
		for _, piece := range watermark.Subtract(l, covered) {
			rec := hub.GapRecord{
				Boot: ms.boot, FirstSeq: piece[0], LastSeq: piece[1], Seen: c.now, Closed: c.now,
				Lost:   piece[1] - piece[0] + 1,
				Before: c.tsOfSeq(ms, piece[0]-1), After: c.tsOfSeq(ms, piece[1]+1),
			}
			updates = append(updates, update{ledgerKey(ms.boot, piece[0]), rec})
			covered = append(covered, piece)
		}
	}
	for _, u := range updates {
		v, err := json.Marshal(u.rec)
		if err != nil {
			return err
		}
		if err := gb.Put(u.key, v); err != nil {
			return err
		}
	}
	return nil
}

// tsOfSeq finds the timestamp of a reading near a gap: in this commit, or
// still in the open chunk of the device's seq series.
func (c *commit) tsOfSeq(ms *markState, seq uint64) int64 {
	for _, s := range ms.seen {
		if s.seq == seq {
			return s.ts
		}
	}
	if d := c.s.devs[ms.device]; d != nil {
		if sr := d.metrics[seqMetric]; sr != nil {
			h := &sr.head
			if sr.pendGen == c.gen {
				h = &sr.pend
			}
			for _, p := range h.pts {
				if p.V == float64(seq) {
					return p.TS
				}
			}
		}
	}
	return 0
}

// ledgerRange returns the gap records of device touching [from, to] (by the
// readings around them, or when they were seen).
func ledgerRange(tx *bolt.Tx, device string, from, to int64) ([]hub.GapRecord, error) {
	out := []hub.GapRecord{}
	gb := tx.Bucket(bucketGaps).Bucket([]byte(device))
	if gb == nil {
		return out, nil
	}
	err := gb.ForEach(func(k, v []byte) error {
		var rec hub.GapRecord
		if err := json.Unmarshal(v, &rec); err != nil {
			return fmt.Errorf("decode gap record %q: %w", k, err)
		}
		lo, hi := rec.Before, rec.After
		switch {
		case lo == 0 && hi == 0:
			lo, hi = rec.Seen, rec.Seen
		case lo == 0:
			lo = hi
		case hi == 0:
			hi = lo
		}
		if hi >= from && lo <= to {
			out = append(out, rec)
		}
		return nil
	})
	return out, err
}
