// Package rollup computes and encodes the hub's downsampled history tiers
// (1-minute and 1-hour): per bucket of one series, the sample count, min,
// max, mean and last value. It is pure (no I/O; stdlib and hub/chunk only);
// the store decides tiers, chunk boundaries and keys.
//
// # Buckets
//
// A bucket is [TS, TS+width) with TS a multiple of width counted from the
// Unix epoch, using floor division so -1 ms falls in [-width, 0): every
// series and every tier then agree on the boundaries, which is what lets
// Coarsen build hours from minutes and lets a query merge tiers. The one
// bucket straddling an int64 limit is clamped to it rather than wrapping.
// Of turns raw samples into buckets; empty buckets produce nothing, so a
// gap in the data stays a gap.
//
// # Combining
//
// Coarsen combines finer rollups: Count sums, Min/Max are over the inputs,
// Last comes from the latest input and Avg is count-weighted, so hours
// coarsened from minutes equal hours computed from the raw samples (up to
// float summation order; TestOf_Coarsen). Input buckets are floor-aligned
// into output buckets even when the widths do not divide. Every Avg is
// clamped to [Min, Max]: float rounding of a mean can step outside (three
// samples of 0.1 average to 0.10000000000000002) and a chart should never
// draw the mean outside its band. A sum that overflows float64 falls back
// to summing pre-divided terms.
//
// Replace merges recomputed rollups into stored ones, the new point winning
// at an equal TS. That is the opposite of chunk.Merge on purpose: a raw
// sample is immutable, so a redelivery must not change it, while a rollup
// is a function of its samples and a late sample makes the stored one
// stale.
//
// # Format
//
//	rollup chunk = version:byte (1)  5 × (len:uvarint  section:[len]byte)
//	sections     = chunk.Encode of (TS, x) for x = Count, Min, Max,
//	               RoundAvg(Avg), Last, in that order
//
// Each column is its own chunk so it gets its own scaled-integer decimal
// scale and delta mode; the timestamps are repeated per section (≈ 0.08
// B/point each at a regular cadence) to reuse the chunk codec unchanged.
// Decode requires five sections with equal counts and identical
// timestamps, no trailing bytes, an integral Count in 1..2^53 (float64
// holds it exactly) and Min ≤ Last ≤ Max; anything else wraps
// chunk.ErrCorrupt. Decode never panics (FuzzDecode) and allocates at most
// chunk.MaxPoints points.
//
// # Avg rounding
//
// Count, Min, Max and Last are exact, but a mean of short decimals is not
// a short decimal (50.12345833…) and would push the Avg column to Gorilla
// XOR at ≈ 8 B/point. Encode stores RoundAvg(Avg), 6 significant digits —
// far finer than the spread of any bucket it summarizes — which is a
// scaled integer for |Avg| ≥ 0.1. Smaller nonzero means need more than
// chunk.MaxScale decimals, so a chunk holding one stores its Avg column as
// Gorilla. Decode clamps the stored Avg to [Min, Max], so a constant or
// single-sample bucket gets its exact value back: decoded Avg =
// clamp(RoundAvg(Avg), Min, Max).
//
// # Size
//
// On minute rollups of a 1 Hz random walk rounded to 0.01 (level 20–80,
// 240 points per chunk; TestBytesPerPoint) a rollup point costs ≈ 5.4 B:
// Min, Max and Last ≈ 1.1 B each, Avg ≈ 1.9 B, Count with its timestamps
// 0.1 B. Hour rollups cost ≈ 6.9 B, their columns being less correlated.
package rollup
