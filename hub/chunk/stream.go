package chunk

import (
	"encoding/binary"
	"math/bits"
	"slices"
)

// An integer stream holds a known count of signed integers (timestamp
// delta-of-deltas, value deltas or delta-of-deltas) in one of two layouts;
// the encoder writes whichever is shorter and flags it in the header byte.
//
// RLE layout: each integer as a zigzag uvarint; a zero is followed by a
// uvarint count of further zeros. Best for long zero runs (constant series,
// exact cadences).
//
// Packed layout: groups of packGroup integers (the last may be short), each a
// width byte w (0–64) then the group's zigzag values in w bits each,
// LSB-first, padded to a byte. Best for small non-zero noise such as
// scheduler jitter in timestamps (|dod| ≤ 7 costs 4 bits, not 8).
const packGroup = 16

// appendStream appends xs in the shorter layout and reports whether it is
// packed.
func appendStream(dst []byte, xs []int64) ([]byte, bool) {
	start := len(dst)
	dst = appendRLE(dst, xs)
	rleLen := len(dst) - start
	if packedLen(xs) < rleLen {
		return appendPacked(dst[:start], xs), true
	}
	return dst, false
}

func groupWidth(g []int64) int {
	var or uint64
	for _, x := range g {
		or |= zigzag(x)
	}
	return 64 - bits.LeadingZeros64(or)
}

func packedLen(xs []int64) int {
	n := 0
	for g := range slices.Chunk(xs, packGroup) {
		n += 1 + (len(g)*groupWidth(g)+7)/8
	}
	return n
}

func appendPacked(dst []byte, xs []int64) []byte {
	for g := range slices.Chunk(xs, packGroup) {
		w := uint(groupWidth(g))
		dst = append(dst, byte(w))
		var acc uint64
		var nacc uint
		put := func(u uint64, w uint) { // w ≤ 32
			acc |= u << nacc
			nacc += w
			for nacc >= 8 {
				dst = append(dst, byte(acc))
				acc >>= 8
				nacc -= 8
			}
		}
		for _, x := range g {
			u := zigzag(x)
			if w > 32 {
				put(u&(1<<32-1), 32)
				put(u>>32, w-32)
			} else {
				put(u, w)
			}
		}
		if nacc > 0 {
			dst = append(dst, byte(acc))
		}
	}
	return dst
}

// readStream decodes cnt integers from b into out[i].TS (used as scratch)
// and reports whether b was consumed exactly.
func readStream(out []Point, b []byte, packed bool) bool {
	if packed {
		return readPacked(out, b)
	}
	r := rle{b: b}
	for i := range out {
		x, ok := r.next()
		if !ok {
			return false
		}
		out[i].TS = x
	}
	return r.zeros == 0 && len(r.b) == 0
}

func readPacked(out []Point, b []byte) bool {
	var buf [packGroup*8 + 16]byte
	for len(out) > 0 {
		cnt := min(len(out), packGroup)
		if len(b) == 0 || b[0] > 64 {
			return false
		}
		w := uint(b[0])
		nb := (uint(cnt)*w + 7) / 8
		if uint(len(b)-1) < nb {
			return false
		}
		copy(buf[:], b[1:1+nb])
		clear(buf[nb:])
		mask := uint64(1)<<w - 1 // w == 64: 1<<64 == 0, so mask is all ones
		o := uint(0)
		for i := range cnt {
			p, s := o>>3, o&7
			u := binary.LittleEndian.Uint64(buf[p:]) >> s
			if s != 0 {
				u |= uint64(buf[p+8]) << (64 - s)
			}
			out[i].TS = unzigzag(u & mask)
			o += w
		}
		out, b = out[cnt:], b[1+nb:]
	}
	return len(b) == 0
}
