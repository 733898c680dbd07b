package agent

import (
	"bytes"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/fleetwatch/fleetwatch/agent/spool"
	"github.com/fleetwatch/fleetwatch/agent/telemetry"
)

const testBoot2 = "20251129T091500-0c0ffee00042"

func openSpool(t *testing.T, dir string, opts spool.Options) *spool.Spool {
	t.Helper()
	sp, err := spool.Open(dir, opts)
	if err != nil {
		t.Fatalf("open spool: %v", err)
	}
	t.Cleanup(func() { sp.Close() })
	return sp
}

func newSpoolAgent(t *testing.T, h *hub, dir, boot string) *Agent {
	t.Helper()
	a := newTestAgent(h.publisher())
	a.Boot = boot
	a.Spool = openSpool(t, dir, spool.Options{})
	a.SpillInterval = 10 * time.Second
	return a
}

// ackLikeTheHub makes h ack as the hub does: per boot, the contiguous
// watermark of what it holds, with "first" settling what lies below.
func ackLikeTheHub(h *hub, a *Agent) {
	var mu sync.Mutex
	got := map[string]map[uint64]bool{}
	mark := map[string]uint64{}
	h.onDeliver = func(e telemetry.Envelope) {
		mu.Lock()
		if got[e.Boot] == nil {
			got[e.Boot] = map[uint64]bool{}
		}
		if e.First != nil {
			mark[e.Boot] = max(mark[e.Boot], *e.First-1)
		}
		for _, r := range e.Readings {
			got[e.Boot][r.Seq] = true
		}
		for got[e.Boot][mark[e.Boot]+1] {
			mark[e.Boot]++
		}
		w := mark[e.Boot]
		mu.Unlock()
		if w > 0 {
			a.HandleAck(telemetry.Ack{V: 1, Boot: e.Boot, Seq: w})
		}
	}
}

// files returns the names in dir, none if it does not exist.
func files(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range es {
		out = append(out, e.Name())
	}
	return out
}

// copyDir copies the files of src to a new directory: what a SIGKILL or a
// power cut would leave of a running agent's spool, since every write to it
// is synced before the agent goes on.
func copyDir(t *testing.T, src string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "outbox")
	os.Mkdir(dst, 0o700)
	for _, name := range files(t, src) {
		b, err := os.ReadFile(filepath.Join(src, name))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dst, name), b, 0o600)
	}
	return dst
}

// deliveredOf returns the seqs of boot that h got, in delivery order.
func deliveredOf(h *hub, boot string) []uint64 {
	var out []uint64
	for _, e := range h.envelopes() {
		if e.Boot == boot {
			out = append(out, seqsOf(e.Readings)...)
		}
	}
	return out
}

func TestAgent_Spill(t *testing.T) {
	t.Run("NothingWrittenWhileAcked", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "outbox")
			h := newHub(t)
			a := newSpoolAgent(t, h, dir, testBoot)
			// A slow hub: each ack comes 4 s late, within half the spill
			// interval.
			h.onDeliver = func(e telemetry.Envelope) {
				go func() {
					time.Sleep(4 * time.Second)
					a.HandleAck(telemetry.Ack{V: 1, Boot: e.Boot, Seq: slices.Max(seqsOf(e.Readings))})
				}()
			}
			stop := start(t, a)
			time.Sleep(120500 * time.Millisecond)
			if _, err := os.Stat(dir); !os.IsNotExist(err) {
				t.Fatalf("Stat(spool dir) err=%v, want not exist: nothing may be written while acks flow", err)
			}
			checkStats(t, a, Stats{Pending: 4, Acked: 117, NextSeq: 122})
			stop()
			// A clean stop saves the 4 readings in flight and where to resume.
			if got, want := files(t, dir), []string{"seg-0000000000000001.log", "state.json"}; !slices.Equal(got, want) {
				t.Fatalf("files after stop %v, want %v", got, want)
			}
			if got, want := a.Spool.Stats().Writes, uint64(2); got != want {
				t.Errorf("spool writes %d, want %d: one group and the state", got, want)
			}
			time.Sleep(5 * time.Second) // the late acks
		})
	})

	t.Run("UnackedGoToDiskWithinTheInterval", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "outbox")
			h := newHub(t)
			h.setDown(true)
			a := newSpoolAgent(t, h, dir, testBoot)
			ackLikeTheHub(h, a)
			t0 := time.Now()
			stop := start(t, a)
			defer stop()
			time.Sleep(500 * time.Millisecond)
			// Reading n is taken at n-1 s. At every moment, all readings
			// older than the spill interval are on disk, and none younger
			// than half of it.
			for range 40 {
				time.Sleep(time.Second)
				age := time.Since(t0)
				st := a.Stats()
				atLeast, atMost := takenBy(age, 10*time.Second), takenBy(age, 5*time.Second)
				if st.Spilled < atLeast || st.Spilled > atMost {
					t.Fatalf("at %v: %d readings spilled, want %d to %d", age, st.Spilled, atLeast, atMost)
				}
			}
			// What a crash would leave: exactly the spilled readings, with
			// their original seqs and timestamps.
			spilled := a.Stats().Spilled
			crashed := openSpool(t, copyDir(t, dir), spool.Options{})
			entries := crashed.Recovered()
			var got []uint64
			for _, e := range entries {
				got = append(got, e.Seq)
				if want := t0.Add(time.Duration(e.Seq-1) * time.Second).UnixMilli(); e.Boot != testBoot || e.TS != want {
					t.Fatalf("seq %d: boot %s ts %d, want %s %d", e.Seq, e.Boot, e.TS, testBoot, want)
				}
			}
			if want := seqRange(1, spilled); !slices.Equal(got, want) {
				t.Fatalf("a crash now leaves %v, want %v", got, want)
			}

			// Back online: everything is delivered, acked and deleted.
			h.setDown(false)
			a.Reconnected()
			time.Sleep(5 * time.Second)
			if got := files(t, dir); len(got) != 0 {
				t.Fatalf("spool files %v after the backlog was acked, want none", got)
			}
			st := a.Stats()
			if st.Pending != 0 || st.SpoolBytes != 0 || st.Replayed != 40 {
				t.Fatalf("Stats=%+v, want nothing pending or on disk and 40 replayed", st)
			}
		})
	})

	t.Run("ErrWriteKeepsReadingsInMemory", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "outbox")
			h := newHub(t)
			h.setDown(true)
			a := newSpoolAgent(t, h, dir, testBoot)
			var log syncBuffer
			a.Logger = newTestLogger(&log)
			os.WriteFile(dir, nil, 0o600) // the spool cannot create its directory
			stop := start(t, a)
			defer stop()
			time.Sleep(30500 * time.Millisecond)
			if st := a.Stats(); st.Spilled != 0 || st.Pending != 31 {
				t.Fatalf("Stats=%+v, want 31 pending and none spilled", st)
			}
			if got := strings.Count(log.String(), "outbox spill failed"); got != 1 {
				t.Fatalf("logged the spill failure %d times in 30 s, want once:\n%s", got, log.String())
			}
			os.Remove(dir)
			time.Sleep(2500 * time.Millisecond) // the next check writes them all
			if got, want := a.Stats().Spilled, uint64(28); got != want {
				t.Fatalf("spilled %d once the disk is back, want %d", got, want)
			}
		})
	})

	t.Run("DiskBoundDropsOldestAndCounts", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "outbox")
			h := newHub(t)
			h.setDown(true)
			a := newTestAgent(h.publisher())
			a.Spool = openSpool(t, dir, spool.Options{MaxBytes: 4096, SegmentBytes: 1024})
			a.SpillInterval = 4 * time.Second
			ackLikeTheHub(h, a)
			stop := start(t, a)
			defer stop()
			time.Sleep(200500 * time.Millisecond)
			st := a.Stats()
			if st.Dropped == 0 || st.SpoolBytes > 4096 || st.Pending+st.Dropped != st.NextSeq-1 {
				t.Fatalf("Stats=%+v, want drops, at most 4096 bytes on disk, and every reading pending or dropped", st)
			}
			h.setDown(false)
			a.Reconnected()
			time.Sleep(3 * time.Second)
			envs := h.envelopes()
			if first := envs[0].First; first == nil || *first != st.Dropped+1 {
				t.Fatalf("first=%v, want %d: the hub must settle the dropped readings", first, st.Dropped+1)
			}
			if got := a.Stats(); got.Pending != 0 || got.Acked != got.NextSeq-1 {
				t.Fatalf("Stats=%+v after reconnect, want everything acked", got)
			}
		})
	})

	t.Run("MaxAgeDropsOldest", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			h := newHub(t)
			h.setDown(true)
			a := newTestAgent(h.publisher())
			a.MaxAge = 10 * time.Second
			stop := start(t, a)
			defer stop()
			time.Sleep(30500 * time.Millisecond)
			checkStats(t, a, Stats{Pending: 11, DroppedAge: 20, NextSeq: 32})
			h.setDown(false)
			a.Reconnected()
			synctest.Wait()
			for _, e := range h.envelopes() {
				if e.First == nil || *e.First != 21 {
					t.Fatalf("envelope %v: first=%v, want 21", seqsOf(e.Readings), e.First)
				}
			}
		})
	})
}

func TestAgent_Run_Restart(t *testing.T) {
	t.Run("CleanStopResumesTheBoot", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "outbox")
			h := newHub(t)
			h.setDown(true)
			a := newSpoolAgent(t, h, dir, testBoot)
			stop := start(t, a)
			time.Sleep(5500 * time.Millisecond)
			stop()
			a.Spool.Close()

			sp := openSpool(t, dir, spool.Options{})
			if r, ok := sp.Resume(); !ok || r.Boot != testBoot || r.NextSeq != 7 || r.Device != testDevice {
				t.Fatalf("Resume=%+v %v, want %s next seq 7", r, ok, testBoot)
			}
			h.setDown(false)
			a2 := newTestAgent(h.publisher())
			a2.Spool, a2.SpillInterval = sp, 10*time.Second
			ackLikeTheHub(h, a2)
			stop2 := start(t, a2)
			defer stop2()
			time.Sleep(2200 * time.Millisecond) // ticks fire on whole seconds: end between two
			if got, want := deliveredOf(h, testBoot), []uint64{7, 1, 2, 3, 4, 5, 6, 8, 9}; !slices.Equal(got, want) {
				t.Fatalf("delivered %v, want %v: the same boot, nothing lost", got, want)
			}
			for _, e := range h.envelopes() {
				if e.First != nil {
					t.Fatalf("envelope %v has first=%d, want none: nothing was lost", seqsOf(e.Readings), *e.First)
				}
				for _, r := range e.Readings { // 1..6 read back from disk
					if want := (telemetry.Metrics{"test.value": 1, "agent.collector_errors": 0}); !sameMetrics(r.Metrics, want) {
						t.Fatalf("seq %d: metrics %v, want %v", r.Seq, r.Metrics, want)
					}
				}
			}
			// A spill check after the acks; ending half-way between two
			// ticks (they fire on whole seconds) so the count is exact.
			time.Sleep(9500 * time.Millisecond)
			if got := files(t, dir); len(got) != 0 {
				t.Fatalf("spool files %v, want none: the resume point is used and the backlog acked", got)
			}
			checkStats(t, a2, Stats{Acked: 19, NextSeq: 20, Recovered: 6, Replayed: 6})
		})
	})

	t.Run("CrashStartsANewBootAndReplaysTheOld", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "outbox")
			h := newHub(t)
			a := newSpoolAgent(t, h, dir, testBoot)
			ackLikeTheHub(h, a)
			t0 := time.Now()
			stop := start(t, a)
			time.Sleep(3500 * time.Millisecond) // 1..4 acked
			h.setDown(true)
			time.Sleep(20 * time.Second)
			crashed := copyDir(t, dir) // SIGKILL at 23.5 s
			kill := time.Now()
			stop()

			sp := openSpool(t, crashed, spool.Options{})
			if _, ok := sp.Resume(); ok {
				t.Fatal("a crashed run left a resume point")
			}
			h.setDown(false)
			a2 := newTestAgent(h.publisher())
			a2.Boot, a2.Spool, a2.SpillInterval = testBoot2, sp, 10*time.Second
			ackLikeTheHub(h, a2)
			stop2 := start(t, a2)
			defer stop2()
			time.Sleep(10200 * time.Millisecond) // ticks fire on whole seconds: end between two

			// Everything taken more than the spill interval before the
			// crash arrives, once, with its own boot, ts and "first".
			old := deliveredOf(h, testBoot)
			lastOld := slices.Max(old)
			if got, want := old, seqRange(1, lastOld); !slices.Equal(got, want) {
				t.Fatalf("old boot delivered %v, want %v", got, want)
			}
			if taken := t0.Add(time.Duration(lastOld) * time.Second); !taken.After(kill.Add(-10 * time.Second)) {
				t.Fatalf("old boot ends at seq %d; seq %d was taken at %v, more than 10 s before the crash at %v",
					lastOld, lastOld+1, taken.Sub(t0), kill.Sub(t0))
			}
			for _, e := range h.envelopes() {
				if e.Boot != testBoot || e.Readings[0].Seq <= 4 {
					continue
				}
				if e.First == nil || *e.First != 5 {
					t.Fatalf("replayed envelope %v: first=%v, want 5", seqsOf(e.Readings), e.First)
				}
				for _, r := range e.Readings {
					if want := t0.Add(time.Duration(r.Seq-1) * time.Second).UnixMilli(); r.TS != want {
						t.Fatalf("replayed seq %d: ts %d, want the original %d", r.Seq, r.TS, want)
					}
				}
			}
			if got, want := deliveredOf(h, testBoot2), seqRange(1, 11); !slices.Equal(got, want) {
				t.Fatalf("new boot delivered %v, want %v", got, want)
			}
			if got := files(t, crashed); len(got) != 0 {
				t.Fatalf("spool files %v, want none once the old boot is acked", got)
			}
		})
	})
}

func TestAgent_Replay(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHub(t)
		h.setDown(true)
		a := newTestAgent(h.publisher())
		a.ReplayRate, a.Batch = 50, 20
		ackLikeTheHub(h, a)
		stop := start(t, a)
		defer stop()
		time.Sleep(599500 * time.Millisecond) // 600 readings
		h.setDown(false)
		a.Reconnected()
		back := time.Now()
		synctest.Wait()
		for s := range 6 {
			rs := seqsOf(h.readings())
			if got, want := rs[0], uint64(600); got != want {
				t.Fatalf("first delivered seq %d, want %d: the newest goes first", got, want)
			}
			var backlog []uint64
			for _, seq := range rs[1:] {
				if seq < 600 {
					backlog = append(backlog, seq)
				}
			}
			if got, want := backlog, seqRange(1, uint64(len(backlog))); !slices.Equal(got, want) {
				t.Fatalf("backlog delivered %v, want oldest first", got)
			}
			if n, lo, hi := len(backlog), 50*s, 50*s+50; n < lo || n > hi {
				t.Fatalf("%v after reconnect: %d backlog readings delivered, want %d to %d", time.Since(back), n, lo, hi)
			}
			for seq := uint64(601); seq <= uint64(600+s); seq++ {
				if !slices.Contains(rs, seq) {
					t.Fatalf("%v after reconnect: live seq %d not delivered at its tick", time.Since(back), seq)
				}
			}
			time.Sleep(time.Second)
		}
		time.Sleep(7 * time.Second)
		if st := a.Stats(); st.Pending != 0 || st.Replayed != 599 {
			t.Fatalf("Stats=%+v, want all 599 backlog readings replayed and acked", st)
		}
	})
}

func TestAgent_OutboxMetrics(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHub(t)
		h.setDown(true)
		a := newTestAgent(h.publisher())
		a.Collectors = append(a.Collectors, a.OutboxMetrics())
		a.MaxPending = 3
		stop := start(t, a)
		defer stop()
		time.Sleep(4500 * time.Millisecond)
		h.setDown(false)
		a.Reconnected()
		synctest.Wait()
		for _, r := range h.readings() {
			want := telemetry.Metrics{"test.value": 1, "agent.collector_errors": 0,
				"agent.outbox_pending": float64(min(r.Seq-1, 3)), "agent.outbox_dropped": float64(max(int(r.Seq)-4, 0)),
				"agent.outbox_spool_bytes": 0}
			if !sameMetrics(r.Metrics, want) {
				t.Errorf("seq %d: metrics %v, want %v", r.Seq, r.Metrics, want)
			}
		}
	})
}

// syncBuffer is a bytes.Buffer for a logger and a test goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (w *syncBuffer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *syncBuffer) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

func newTestLogger(w io.Writer) *slog.Logger { return slog.New(slog.NewTextHandler(w, nil)) }

// takenBy counts the readings taken, one a second from 0, at or before
// elapsed-d.
func takenBy(elapsed, d time.Duration) uint64 {
	if elapsed < d {
		return 0
	}
	return uint64((elapsed-d)/time.Second) + 1
}
