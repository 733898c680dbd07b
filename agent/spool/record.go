package spool

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
	"math"
	"slices"

	"github.com/fleetwatch/fleetwatch/agent/telemetry"
)

// A record on disk is a 12-byte header and a payload:
//
//	len u32 LE | crc32c(payload) u32 LE | crc32c(header[0:8]) u32 LE | payload
//
// The header has its own checksum so that recovery can tell a damaged
// length from a damaged payload and can resynchronise after garbage by
// testing each offset cheaply, without trusting any length it reads.
const (
	headerLen = 12
	// maxPayload bounds a record: a reading of 512 metrics with 128-byte
	// names is about 70 KB, so anything larger is a damaged length.
	maxPayload = 1 << 20
	// payloadVersion is the first payload byte; a new encoding gets a new one.
	payloadVersion = 1
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

var errBadPayload = errors.New("bad record payload")

// Record is one spooled reading and the boot it belongs to.
type Record struct {
	Boot    string
	Reading telemetry.Reading
}

// Loc is where a record lies in the spool: its segment and the byte range
// of its frame. 32 bits each keep an outbox index entry small; Append
// keeps segments below 4 GiB and their ids below 2^32.
type Loc struct {
	Seg, Off, Len uint32
}

// Entry indexes a spilled reading: what the agent keeps of it in memory to
// order, ack, age and bound it, and to read its metrics back (Read).
type Entry struct {
	Boot string
	Seq  uint64
	TS   int64
	Loc  Loc
}

// appendRecord appends the framed encoding of r to b.
//
// The payload is: version byte, boot (uvarint length + bytes), seq
// (uvarint), ts (varint), metric count (uvarint), then each metric in name
// order as the length of the prefix it shares with the previous name, the
// rest of the name (uvarint length + bytes) and the value's IEEE 754 bits
// (8 bytes LE). Sorted, front-coded names roughly halve a typical reading
// ("net.eth0.rx_bytes_per_s", "net.eth0.rx_packets_per_s", …).
func appendRecord(b []byte, r Record) []byte {
	start := len(b)
	b = append(b, make([]byte, headerLen)...)
	b = append(b, payloadVersion)
	b = binary.AppendUvarint(b, uint64(len(r.Boot)))
	b = append(b, r.Boot...)
	b = binary.AppendUvarint(b, r.Reading.Seq)
	b = binary.AppendVarint(b, r.Reading.TS)
	names := make([]string, 0, len(r.Reading.Metrics))
	for name := range r.Reading.Metrics {
		names = append(names, name)
	}
	slices.Sort(names)
	b = binary.AppendUvarint(b, uint64(len(names)))
	prev := ""
	for _, name := range names {
		shared := commonPrefix(prev, name)
		b = binary.AppendUvarint(b, uint64(shared))
		b = binary.AppendUvarint(b, uint64(len(name)-shared))
		b = append(b, name[shared:]...)
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(r.Reading.Metrics[name]))
		prev = name
	}
	payload := b[start+headerLen:]
	h := b[start : start+headerLen]
	binary.LittleEndian.PutUint32(h[0:4], uint32(len(payload)))
	binary.LittleEndian.PutUint32(h[4:8], crc32.Checksum(payload, castagnoli))
	binary.LittleEndian.PutUint32(h[8:12], crc32.Checksum(h[0:8], castagnoli))
	return b
}

func commonPrefix(a, b string) int {
	n := min(len(a), len(b))
	for i := range n {
		if a[i] != b[i] {
			return i
		}
	}
	return n
}

// parseHeader returns the payload length and checksum of the record header
// at the start of b, or ok=false when the header is damaged.
func parseHeader(b []byte) (n int, sum uint32, ok bool) {
	if len(b) < headerLen {
		return 0, 0, false
	}
	if crc32.Checksum(b[0:8], castagnoli) != binary.LittleEndian.Uint32(b[8:12]) {
		return 0, 0, false
	}
	n = int(binary.LittleEndian.Uint32(b[0:4]))
	if n < 1 || n > maxPayload {
		return 0, 0, false
	}
	return n, binary.LittleEndian.Uint32(b[4:8]), true
}

// decodePayload decodes one record payload into m, or a new map if m is nil.
// intern shares metric name and boot strings between readings, so that a
// replayed batch holds each name once.
func decodePayload(p []byte, intern map[string]string, m telemetry.Metrics) (Record, error) {
	d := decoder{b: p}
	if v := d.byte(); v != payloadVersion {
		return Record{}, errBadPayload
	}
	boot := d.bytes()
	var r Record
	r.Boot = intern1(intern, boot)
	r.Reading.Seq = d.uvarint()
	r.Reading.TS = d.varint()
	count := d.uvarint()
	if d.err || count > telemetry.MaxMetrics {
		return Record{}, errBadPayload
	}
	if m == nil {
		m = make(telemetry.Metrics, count)
	}
	clear(m)
	r.Reading.Metrics = m
	var name []byte
	for range count {
		shared := d.uvarint()
		suffix := d.bytes()
		if d.err || shared > uint64(len(name)) {
			return Record{}, errBadPayload
		}
		name = append(name[:shared], suffix...)
		bits := d.u64()
		if d.err {
			return Record{}, errBadPayload
		}
		r.Reading.Metrics[intern1(intern, name)] = math.Float64frombits(bits)
	}
	if len(d.b) != 0 || len(r.Reading.Metrics) != int(count) {
		return Record{}, errBadPayload
	}
	// The checksum matched, so this guards against our own bugs rather
	// than the disk: a reading the hub would reject must not reach the
	// outbox, where it would fail its whole envelope.
	if telemetry.ValidateBootID(r.Boot) != nil || r.Reading.Seq == 0 ||
		r.Reading.TS <= 0 || r.Reading.TS > telemetry.MaxTimestamp ||
		telemetry.ValidateMetrics(r.Reading.Metrics) != nil {
		return Record{}, errBadPayload
	}
	return r, nil
}

func intern1(m map[string]string, b []byte) string {
	if s, ok := m[string(b)]; ok {
		return s
	}
	s := string(b)
	m[s] = s
	return s
}

// decoder reads varints and byte strings, remembering the first error.
type decoder struct {
	b   []byte
	err bool
}

func (d *decoder) byte() byte {
	if len(d.b) < 1 {
		d.err = true
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = true
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.err = true
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) bytes() []byte {
	n := d.uvarint()
	if d.err || n > uint64(len(d.b)) {
		d.err = true
		return nil
	}
	s := d.b[:n]
	d.b = d.b[n:]
	return s
}

func (d *decoder) u64() uint64 {
	if len(d.b) < 8 {
		d.err = true
		return 0
	}
	v := binary.LittleEndian.Uint64(d.b)
	d.b = d.b[8:]
	return v
}
