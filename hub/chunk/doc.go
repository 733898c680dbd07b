// Package chunk is the sample codec of the hub's history store: it packs one
// series' (timestamp, value) points, in time order, into a compact []byte
// chunk and decodes them back bit-exactly. It is pure (no I/O, stdlib only);
// the store decides chunk boundaries, keys and compaction.
//
// # API
//
// Encode writes a chunk from strictly time-ordered points; Appender buffers
// points (rejecting equal or earlier timestamps with ErrOrder, and ErrFull at
// its limit, DefaultMaxPoints = 120 by default) and encodes them on Bytes.
// Decode / DecodeAppend / Iterator read a chunk; Header reads its mode, scale,
// count and first timestamp without decoding. Merge folds backfilled or
// redelivered points into a chunk by decoding and re-encoding it; for an
// equal timestamp the existing value wins, so redelivery is idempotent.
// A corrupt or truncated chunk makes the decoders return an error wrapping
// ErrCorrupt; they never panic (FuzzDecode) and never allocate more than
// MaxPoints (65,536) points.
//
// # Format
//
//	chunk   = header:byte  n:uvarint  tsLen:uvarint  ts:[tsLen]byte  values:rest
//	header  = bit 7: ts stream packed (else RLE)
//	          bit 6: value stream packed (else RLE)
//	          bits 5–4: value mode  0 = scaled-int delta
//	                                1 = scaled-int delta-of-delta
//	                                2 = Gorilla XOR (bits 6 and 3–0 zero)
//	          bits 3–0: decimal scale k, 0–6 (values are ints / 10^k)
//	ts      = zz(t0):uvarint  [n>1: t1−t0:uvarint (> 0)  stream(n−2 dods)]
//	values, mode 0 = zz(i0):uvarint  stream(n−1 deltas of i)
//	values, mode 1 = zz(i0):uvarint  [n>1: zz(i1−i0):uvarint  stream(n−2 dods of i)]
//	values, mode 2 = v0 as 64 bits, then per value, of x = bits(v) XOR bits(prev):
//	                 '0' if x = 0; '10' + x's meaningful bits in the previous
//	                 window; '11' + 5 bits leading zeros (max 31) + 6 bits
//	                 (meaningful length − 1) + meaningful bits. MSB-first,
//	                 zero-padded to a byte (the Gorilla paper's scheme).
//
// zz is zigzag (0, −1, 1, −2 … → 0, 1, 2, 3 …). A stream of m signed
// integers (m is implied by n) has one of two layouts, whichever is shorter:
//
//	RLE:    zz(x):uvarint per integer; after a zero, uvarint count of
//	        further zeros that repeat it
//	packed: groups of 16 (last may be short): width w:byte (0–64), then the
//	        group's zz values in w bits each, LSB-first, padded to a byte
//
// A chunk is columnar (all timestamps, then all values) so each column
// decodes in one tight loop, and every section is self-delimiting: trailing
// bytes are corruption. Timestamps must be strictly increasing with every
// gap < 2^63; they are int64 Unix milliseconds by convention but any int64
// works.
//
// # Scaled integers
//
// Value v is stored as integer i at scale k when float64(i)/10^k is
// bit-identical to v and |i| ≤ 2^53. The encoder uses the smallest k (≤ 6)
// at which every value in the chunk qualifies, then keeps whichever of delta,
// delta-of-delta and Gorilla is shortest. Division by an exact power of ten is
// correctly rounded, so any value that came from a decimal with ≤ 6 fraction
// digits (12.5, 0.01, 2147483648) round-trips; −0, ±Inf, values above 2^53
// and full-precision ratios such as 9.547738693467336 = 100·19/199 make the
// whole chunk fall back to Gorilla. NaN is not supported (values are finite
// telemetry); the Gorilla mode happens to preserve its bits.
//
// # Why
//
// Measured on fleetwatch-sim-shaped telemetry (TestSizes; 120-point chunks,
// 1 Hz): random walks rounded to 0.1 or 0.01 cost 0.7–1.1 B/sample with an
// exact 1 s cadence and 1.2–1.6 B with 0–4 ms of scheduler jitter;
// constant values and linear counters ≈ 0.15 B (0.7 B with jitter); the
// sim's 8-metric mix 0.96 B (1.51 B with jitter), against the issue-5 goal of
// ≤ 2 B and stretch 1.37 B. Gorilla XOR on the same decimal data costs 4.8–8.6
// B/sample (notes/performance-baselines.md 6a), because a 0.1 step changes
// most mantissa bits; it is kept only for values that are not short
// decimals, where it costs ≈ 8–9 B/sample — agents should round at the
// source (cpu.percent to 0.1 saves ≈ 7 B/sample). Byte-aligned varints plus
// 16-value bit-packed groups decode at 130–180 M samples/s per core (Gorilla
// ≈ 80 M), above the ≥ 50 M target; a day of one series (86,400 points, 720
// chunks) decodes in ≈ 0.6 ms against the 5 ms query budget.
package chunk
