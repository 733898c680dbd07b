package notify

import "sync"

// queue is a bounded FIFO that never blocks the producer: when full, a push
// overwrites the oldest message, because for alerts the newest news matters
// most and Notify must not wait.
type queue struct {
	mu   sync.Mutex
	buf  []message // ring buffer
	head int       // index of the oldest message
	size int
	wake chan struct{} // signalled after each push; capacity 1 so it never blocks
}

func newQueue(capacity int) *queue {
	return &queue{buf: make([]message, capacity), wake: make(chan struct{}, 1)}
}

// push appends m, dropping and returning the oldest message if full.
func (q *queue) push(m message) (old message, dropped bool) {
	q.mu.Lock()
	if q.size == len(q.buf) {
		old, dropped = q.buf[q.head], true
		q.buf[q.head] = m
		q.head = (q.head + 1) % len(q.buf)
	} else {
		q.buf[(q.head+q.size)%len(q.buf)] = m
		q.size++
	}
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default: // a wake-up is already pending
	}
	return old, dropped
}

// pop removes and returns the oldest message, if any.
func (q *queue) pop() (message, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.size == 0 {
		return message{}, false
	}
	m := q.buf[q.head]
	q.buf[q.head] = message{}
	q.head = (q.head + 1) % len(q.buf)
	q.size--
	return m, true
}

func (q *queue) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.size
}
