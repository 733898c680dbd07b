package notify

import (
	"context"
	"time"

	"github.com/fleetwatch/fleetwatch/hub"
)

// resolvedMemory is how many resolved IDs are remembered to drop repeated
// "resolved" notifications; bounded so a long-running hub doesn't grow.
const resolvedMemory = 4096

// tracked is a firing alert kept for repeats.
type tracked struct {
	alert hub.Alert   // latest version seen
	last  []time.Time // per receiver: when it was last queued
}

// repeatLoop re-queues firing alerts that are due, every repeatCheck.
func (s *state) repeatLoop(ctx context.Context) {
	t := time.NewTicker(s.repeatCheck)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.repeat()
		}
	}
}

// repeat queues every firing alert whose receiver's RepeatInterval has
// passed since it was last queued there. It scans only when something is
// due, so many firing alerts don't make each check hold s.mu for long.
func (s *state) repeat() {
	now := s.now()
	var drops []drop
	s.mu.Lock()
	if s.nextDue.IsZero() || now.Before(s.nextDue) {
		s.mu.Unlock()
		return
	}
	s.nextDue = time.Time{}
	for _, t := range s.firing {
		if t.alert.AckedAt != 0 {
			continue // someone is on it: no more reminders
		}
		for i, rx := range s.rx {
			every := rx.r.RepeatInterval
			if every < 0 {
				continue
			}
			if !now.Before(t.last[i].Add(every)) {
				t.last[i] = now
				drops = s.push(rx, message{alert: t.alert, repeat: true}, now, drops)
			}
			s.due(t.last[i].Add(every))
		}
	}
	s.mu.Unlock()
	s.logDrops(drops)
}

// due notes that a repeat falls due at t; s.mu must be held.
func (s *state) due(t time.Time) {
	if s.nextDue.IsZero() || t.Before(s.nextDue) {
		s.nextDue = t
	}
}

// recentIDs is a set holding at most the last cap IDs added.
type recentIDs struct {
	ring []string
	next int            // ring slot the next add overwrites
	slot map[string]int // ID -> its ring slot
}

func newRecentIDs(capacity int) *recentIDs {
	return &recentIDs{ring: make([]string, capacity), slot: make(map[string]int, capacity)}
}

func (r *recentIDs) has(id string) bool {
	_, ok := r.slot[id]
	return ok
}

func (r *recentIDs) add(id string) {
	if r.has(id) {
		return
	}
	// Evict the slot's old ID only if it still lives there: remove may have
	// dropped it, and it may since have been re-added to another slot.
	if old := r.ring[r.next]; old != "" {
		if s, ok := r.slot[old]; ok && s == r.next {
			delete(r.slot, old)
		}
	}
	r.ring[r.next] = id
	r.slot[id] = r.next
	r.next = (r.next + 1) % len(r.ring)
}

func (r *recentIDs) remove(id string) {
	delete(r.slot, id)
}
