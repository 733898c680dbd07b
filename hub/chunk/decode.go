package chunk

import (
	"encoding/binary"
	"fmt"
	"math"
)

// Header returns the value mode, decimal scale, point count and first
// timestamp without decoding the chunk.
func Header(chunk []byte) (mode, scale, n int, minTS int64, err error) {
	h, err := parseHeader(chunk)
	if err != nil {
		return 0, 0, 0, 0, err
	}
	u, m := binary.Uvarint(h.ts)
	if m <= 0 {
		return 0, 0, 0, 0, corrupt("first timestamp")
	}
	return h.mode, h.scale, h.n, unzigzag(u), nil
}

type header struct {
	mode, scale, n    int
	tsPacked, vPacked bool
	ts, vals          []byte
}

func corrupt(what string) error { return fmt.Errorf("%w: %s", ErrCorrupt, what) }

func parseHeader(c []byte) (header, error) {
	var h header
	if len(c) < 1 {
		return h, corrupt("empty")
	}
	h.mode, h.scale = int(c[0]>>4&3), int(c[0]&0x0f)
	h.tsPacked, h.vPacked = c[0]&flagTSPacked != 0, c[0]&flagValPacked != 0
	if h.mode > ModeGorilla || h.scale > MaxScale || (h.mode == ModeGorilla && (h.scale != 0 || h.vPacked)) {
		return h, corrupt("bad header byte")
	}
	c = c[1:]
	n, m := binary.Uvarint(c)
	if m <= 0 || n == 0 || n > MaxPoints {
		return h, corrupt("bad count")
	}
	c = c[m:]
	tl, m := binary.Uvarint(c)
	if m <= 0 || tl > uint64(len(c)-m) {
		return h, corrupt("bad timestamp length")
	}
	c = c[m:]
	h.n, h.ts, h.vals = int(n), c[:tl], c[tl:]
	return h, nil
}

// Decode returns the points of chunk.
func Decode(chunk []byte) ([]Point, error) { return DecodeAppend(nil, chunk) }

// DecodeAppend appends the points of chunk to dst.
func DecodeAppend(dst []Point, chunk []byte) ([]Point, error) {
	h, err := parseHeader(chunk)
	if err != nil {
		return dst, err
	}
	base := len(dst)
	dst = append(dst, make([]Point, h.n)...)
	out := dst[base:]
	// Values first: the integer streams use out[i].TS as scratch.
	switch h.mode {
	case ModeGorilla:
		err = decodeGorilla(out, h.vals)
	default:
		err = decodeInts(out, h.vals, h.mode == ModeDoD, h.vPacked, pow10[h.scale])
	}
	if err == nil {
		err = decodeTS(out, h.ts, h.tsPacked)
	}
	if err != nil {
		return dst[:base], err
	}
	return dst, nil
}

// rle reads a zero-run-length zigzag varint stream.
type rle struct {
	b     []byte
	zeros uint64
}

func (r *rle) next() (int64, bool) {
	if r.zeros > 0 {
		r.zeros--
		return 0, true
	}
	var u uint64
	if len(r.b) > 0 && r.b[0] < 0x80 {
		u, r.b = uint64(r.b[0]), r.b[1:]
	} else {
		v, m := binary.Uvarint(r.b)
		if m <= 0 {
			return 0, false
		}
		u, r.b = v, r.b[m:]
	}
	if u == 0 {
		var m int
		if len(r.b) > 0 && r.b[0] < 0x80 {
			r.zeros, r.b = uint64(r.b[0]), r.b[1:]
		} else if r.zeros, m = binary.Uvarint(r.b); m <= 0 {
			return 0, false
		} else {
			r.b = r.b[m:]
		}
	}
	return unzigzag(u), true
}

func decodeTS(out []Point, b []byte, packed bool) error {
	u, m := binary.Uvarint(b)
	if m <= 0 {
		return corrupt("first timestamp")
	}
	b = b[m:]
	ts := unzigzag(u)
	if len(out) == 1 {
		if len(b) != 0 {
			return corrupt("trailing timestamp bytes")
		}
		out[0].TS = ts
		return nil
	}
	d, m := binary.Uvarint(b)
	if m <= 0 || d == 0 || d > math.MaxInt64 {
		return corrupt("first delta")
	}
	if !readStream(out[2:], b[m:], packed) {
		return corrupt("timestamp stream")
	}
	delta := int64(d)
	out[0].TS = ts
	ts += delta
	if ts <= out[0].TS {
		return corrupt("non-increasing timestamp")
	}
	out[1].TS = ts
	for i := 2; i < len(out); i++ {
		delta += out[i].TS
		next := ts + delta
		if delta <= 0 || next <= ts {
			return corrupt("non-increasing timestamp")
		}
		ts = next
		out[i].TS = ts
	}
	return nil
}

func decodeInts(out []Point, b []byte, dod, packed bool, p float64) error {
	u, m := binary.Uvarint(b)
	if m <= 0 {
		return corrupt("first value")
	}
	b = b[m:]
	v := unzigzag(u)
	out[0].V = float64(v) / p
	if len(out) == 1 {
		if len(b) != 0 {
			return corrupt("trailing value bytes")
		}
		return nil
	}
	if !dod {
		if !readStream(out[1:], b, packed) {
			return corrupt("value stream")
		}
		for i := 1; i < len(out); i++ {
			v += out[i].TS
			out[i].V = float64(v) / p
		}
		return nil
	}
	du, m := binary.Uvarint(b)
	if m <= 0 {
		return corrupt("first value delta")
	}
	if !readStream(out[2:], b[m:], packed) {
		return corrupt("value stream")
	}
	delta := unzigzag(du)
	v += delta
	out[1].V = float64(v) / p
	for i := 2; i < len(out); i++ {
		delta += out[i].TS
		v += delta
		out[i].V = float64(v) / p
	}
	return nil
}

type bitReader struct {
	b   []byte
	pos uint // bit position
}

func (r *bitReader) read(n uint) (uint64, bool) {
	if n == 0 {
		return 0, true
	}
	if n > 56 {
		hi, ok1 := r.read(n - 32)
		lo, ok2 := r.read(32)
		return hi<<32 | lo, ok1 && ok2
	}
	if p, s := r.pos>>3, r.pos&7; p+8 <= uint(len(r.b)) {
		w := binary.BigEndian.Uint64(r.b[p:])
		r.pos += n
		return (w << s) >> (64 - n), true
	}
	if r.pos+n > uint(len(r.b))*8 {
		return 0, false
	}
	var v uint64
	for n > 0 {
		byteI, off := r.pos/8, r.pos%8
		take := min(n, 8-off)
		bitsv := uint64(r.b[byteI]>>(8-off-take)) & (1<<take - 1)
		v = v<<take | bitsv
		r.pos += take
		n -= take
	}
	return v, true
}

func decodeGorilla(out []Point, b []byte) error {
	r := bitReader{b: b}
	prev, ok := r.read(64)
	if !ok {
		return corrupt("first value")
	}
	out[0].V = math.Float64frombits(prev)
	var lead, trail uint
	haveWin := false
	for i := 1; i < len(out); i++ {
		c, ok := r.read(1)
		if !ok {
			return corrupt("value stream")
		}
		if c == 1 {
			c2, ok := r.read(1)
			if !ok {
				return corrupt("value stream")
			}
			if c2 == 1 {
				l, ok1 := r.read(5)
				s, ok2 := r.read(6)
				if !ok1 || !ok2 || l+s+1 > 64 {
					return corrupt("value window")
				}
				lead, trail, haveWin = uint(l), 64-uint(l)-uint(s+1), true
			} else if !haveWin {
				return corrupt("value window")
			}
			x, ok := r.read(64 - lead - trail)
			if !ok {
				return corrupt("value stream")
			}
			prev ^= x << trail
		}
		out[i].V = math.Float64frombits(prev)
	}
	if (uint(len(b))*8 - r.pos) >= 8 {
		return corrupt("trailing value bytes")
	}
	return nil
}

// Iterator walks a chunk's points. It decodes the whole chunk up front (a
// chunk is small, and the columnar layout decodes fastest in one pass).
type Iterator struct {
	pts []Point
	i   int
	err error
}

// NewIterator returns an Iterator over chunk. Errors are reported by Err
// after Next returns false.
func NewIterator(chunk []byte) *Iterator {
	pts, err := Decode(chunk)
	return &Iterator{pts: pts, i: -1, err: err}
}

// Next advances to the next point.
func (it *Iterator) Next() bool {
	if it.err != nil || it.i+1 >= len(it.pts) {
		return false
	}
	it.i++
	return true
}

// At returns the current point.
func (it *Iterator) At() Point { return it.pts[it.i] }

// Err returns the decode error, if any.
func (it *Iterator) Err() error { return it.err }
