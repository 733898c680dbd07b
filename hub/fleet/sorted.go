package fleet

import "slices"

// sortedList is one metric's values over the devices, kept in order by
// (value, device id) as a two-level list: a slice of small sorted blocks.
// Finding a place costs two binary searches and moving at most maxBlock
// entries; a walk over the blocks (ranks, the total sum) costs about
// n/minBlock steps. Every block keeps its count and sum, so ranks and the
// average need no walk over the entries.
//
// Devices are held as indexes into the Aggregator's names, so blocks hold
// no pointers: moving entries is a plain memmove and the garbage collector
// has nothing to scan in them. Names are read only to break ties.
//
// Values are finite and a device has at most one entry; the Aggregator
// guarantees both.
type sortedList struct {
	blocks []block
	lasts  []float64 // the last value of each block, dense for find
	n      int
	names  *[]string // device ids by index, owned by the Aggregator
}

const (
	// maxBlock bounds the entries a change moves; a block that grows
	// past it splits in two.
	maxBlock = 128
	// minBlock keeps the block walk short: a block that shrinks below it
	// merges with a neighbour, so only a lone block can be smaller and
	// a list of n entries has at most n/minBlock+1 blocks.
	minBlock = 32
)

// item is one device's value of the metric, the device as an index.
type item struct {
	v  float64
	id uint32
}

// block is a sorted run of entries, values and devices in separate
// arrays: searches read the dense values (1 KiB a block) and look at
// devices only on ties.
//
// sum+comp is the sum of the values, kept as a compensated sum: each
// change adds ±v with its rounding error recovered exactly into comp, and
// every resumEvery changes the sum is recomputed from the values. Error
// cannot pile up over millions of updates, and a change stays O(1) instead
// of a pass over the block (which, measured, was 40% of a Set).
type block struct {
	vals      []float64
	ids       []uint32
	sum, comp float64
	changes   int // incremental changes since the last resum
}

// resumEvery bounds the incremental changes between two recomputations,
// so the amortized cost of recomputing is one value per change.
const resumEvery = maxBlock

func newBlock(vals []float64, ids []uint32) block {
	b := block{
		vals: append(make([]float64, 0, maxBlock+1), vals...),
		ids:  append(make([]uint32, 0, maxBlock+1), ids...),
	}
	b.resum()
	return b
}

// resum recomputes the sum from the values.
func (b *block) resum() {
	var s, c float64
	for _, v := range b.vals {
		s, c = twoSum(s, c, v)
	}
	b.sum, b.comp, b.changes = s, c, 0
}

// changed updates the sum after x was added to the values (or -x after x
// was removed).
func (b *block) changed(x float64) {
	if b.changes++; b.changes >= resumEvery {
		b.resum()
		return
	}
	b.sum, b.comp = twoSum(b.sum, b.comp, x)
}

// twoSum adds x to the compensated sum s+c. The rounding error of s+x is
// recovered exactly (Knuth's TwoSum, branch-free) and kept in c.
func twoSum(s, c, x float64) (float64, float64) {
	t := s + x
	z := t - s
	c += (s - (t - z)) + (x - z)
	return t, c
}

// valueBound returns the index of the first of vals not below v.
func valueBound(vals []float64, v float64) int {
	lo, hi := 0, len(vals)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if vals[m] < v {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo
}

// tieBound continues valueBound: given lo, the first of vals not below
// it.v, it skips the entries equal to it.v whose device (devAt gives the
// index) sorts before it.id's. Most values are unique: checked first.
func (l *sortedList) tieBound(vals []float64, lo int, it item, devAt func(int) uint32) int {
	if lo == len(vals) || vals[lo] != it.v {
		return lo
	}
	names := *l.names
	name := names[it.id]
	if lo+1 == len(vals) || vals[lo+1] != it.v {
		if names[devAt(lo)] < name {
			lo++
		}
		return lo
	}
	hi := len(vals)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if vals[m] == it.v && names[devAt(m)] < name {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo
}

// find returns the first block whose last entry is not less than it, or
// len(blocks) when it is past every entry.
func (l *sortedList) find(it item) int {
	return l.tieBound(l.lasts, valueBound(l.lasts, it.v), it, func(i int) uint32 {
		ids := l.blocks[i].ids
		return ids[len(ids)-1]
	})
}

// search returns the index of the first entry of block bi not less than it.
func (l *sortedList) search(bi int, it item) int {
	b := &l.blocks[bi]
	return l.tieBound(b.vals, valueBound(b.vals, it.v), it, func(i int) uint32 { return b.ids[i] })
}

// setLast records block bi's last value after it changed.
func (l *sortedList) setLast(bi int) {
	vals := l.blocks[bi].vals
	l.lasts[bi] = vals[len(vals)-1]
}

// insert adds it, which must not be in the list.
func (l *sortedList) insert(it item) {
	l.n++
	if len(l.blocks) == 0 {
		l.blocks = append(l.blocks, newBlock([]float64{it.v}, []uint32{it.id}))
		l.lasts = append(l.lasts, it.v)
		return
	}
	bi := min(l.find(it), len(l.blocks)-1)
	j := l.search(bi, it)
	b := &l.blocks[bi]
	b.vals = slices.Insert(b.vals, j, it.v)
	b.ids = slices.Insert(b.ids, j, it.id)
	l.setLast(bi)
	if len(b.vals) > maxBlock {
		l.split(bi)
		return
	}
	b.changed(it.v)
}

// split cuts block bi in two halves.
func (l *sortedList) split(bi int) {
	b := &l.blocks[bi]
	h := len(b.vals) / 2
	nb := newBlock(b.vals[h:], b.ids[h:])
	b.vals, b.ids = b.vals[:h], b.ids[:h]
	b.resum()
	l.blocks = slices.Insert(l.blocks, bi+1, nb)
	l.lasts = slices.Insert(l.lasts, bi+1, 0)
	l.setLast(bi)
	l.setLast(bi + 1)
}

// remove deletes it and reports whether it was there.
func (l *sortedList) remove(it item) bool {
	bi := l.find(it)
	if bi == len(l.blocks) {
		return false
	}
	j := l.search(bi, it)
	b := &l.blocks[bi]
	if j == len(b.vals) || b.ids[j] != it.id {
		return false
	}
	l.n--
	b.vals = slices.Delete(b.vals, j, j+1)
	b.ids = slices.Delete(b.ids, j, j+1)
	switch {
	case len(b.vals) == 0:
		l.blocks = slices.Delete(l.blocks, bi, bi+1)
		l.lasts = slices.Delete(l.lasts, bi, bi+1)
	case len(b.vals) < minBlock && len(l.blocks) > 1:
		if bi == len(l.blocks)-1 {
			bi--
		}
		l.merge(bi)
	default:
		l.setLast(bi)
		b.changed(-it.v)
	}
	return true
}

// merge joins blocks bi and bi+1, one of which is below minBlock. When
// both do not fit in one block it moves entries across the border instead,
// so both end up with half, well above minBlock. The order is kept since
// every entry of a sorts before every entry of b.
func (l *sortedList) merge(bi int) {
	a, b := &l.blocks[bi], &l.blocks[bi+1]
	total := len(a.vals) + len(b.vals)
	if total <= maxBlock {
		a.vals = append(a.vals, b.vals...)
		a.ids = append(a.ids, b.ids...)
		a.resum()
		l.blocks = slices.Delete(l.blocks, bi+1, bi+2)
		l.lasts = slices.Delete(l.lasts, bi+1, bi+2)
		l.setLast(bi)
		return
	}
	h := total / 2
	if k := h - len(a.vals); k > 0 {
		moveLeft(&a.vals, &b.vals, k)
		moveLeft(&a.ids, &b.ids, k)
	} else {
		moveRight(&a.vals, &b.vals, -k)
		moveRight(&a.ids, &b.ids, -k)
	}
	a.resum()
	b.resum()
	l.setLast(bi)
}

// moveLeft moves the first k elements of *b to the end of *a.
func moveLeft[T any](a, b *[]T, k int) {
	*a = append(*a, (*b)[:k]...)
	*b = slices.Delete(*b, 0, k)
}

// moveRight moves the last k elements of *a to the front of *b.
func moveRight[T any](a, b *[]T, k int) {
	h := len(*a) - k
	*b = slices.Insert(*b, 0, (*a)[h:]...)
	*a = (*a)[:h]
}

// pos is a place in the list: entry j of block bi. Places are kept
// normalized (j < len of the block), so the end is {len(blocks), 0}.
type pos struct{ bi, j int }

func (l *sortedList) at(p pos) item {
	b := &l.blocks[p.bi]
	return item{b.vals[p.j], b.ids[p.j]}
}

func (l *sortedList) next(p pos) pos {
	if p.j+1 < len(l.blocks[p.bi].vals) {
		return pos{p.bi, p.j + 1}
	}
	return pos{p.bi + 1, 0}
}

func (l *sortedList) prev(p pos) pos {
	if p.j > 0 {
		return pos{p.bi, p.j - 1}
	}
	return pos{p.bi - 1, len(l.blocks[p.bi-1].vals) - 1}
}

// lowerBound returns the first place whose value is not below v; v must
// be a value present in the list, so the place is never the end.
func (l *sortedList) lowerBound(v float64) pos {
	bi := valueBound(l.lasts, v)
	return pos{bi, valueBound(l.blocks[bi].vals, v)}
}
