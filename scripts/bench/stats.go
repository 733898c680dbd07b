package main

import (
	"math"
	"slices"
	"sync"
	"sync/atomic"
)

// Dist summarizes a set of samples (milliseconds unless said otherwise).
type Dist struct {
	N   int     `json:"n"`
	P50 float64 `json:"p50"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
}

// percentile returns the nearest-rank p-th percentile (0 < p ≤ 100) of
// sorted: the smallest sample with at least p% of samples at or below it.
func percentile(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return math.NaN()
	}
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	return sorted[min(max(rank, 1), len(sorted))-1]
}

func distOf(samples []float64) Dist {
	s := slices.Clone(samples)
	slices.Sort(s)
	if len(s) == 0 {
		return Dist{P50: math.NaN(), P99: math.NaN(), Max: math.NaN()}
	}
	return Dist{N: len(s), P50: percentile(s, 50), P99: percentile(s, 99), Max: s[len(s)-1]}
}

// Recorder collects samples while it is on, from many goroutines.
type Recorder struct {
	on atomic.Bool
	mu sync.Mutex
	v  []float64
}

// Add keeps v if the recorder is on.
func (r *Recorder) Add(v float64) {
	if !r.on.Load() {
		return
	}
	r.mu.Lock()
	r.v = append(r.v, v)
	r.mu.Unlock()
}

// Start clears and turns on; Stop turns off and returns the samples.
func (r *Recorder) Start() {
	r.mu.Lock()
	r.v = r.v[:0]
	r.mu.Unlock()
	r.on.Store(true)
}

func (r *Recorder) Stop() []float64 {
	r.on.Store(false)
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.v)
}
