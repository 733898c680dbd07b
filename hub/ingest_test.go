package hub_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fleetwatch/fleetwatch/agent/telemetry"
	"github.com/fleetwatch/fleetwatch/hub"
)

type fakeStore struct {
	CommitFunc       func(*hub.Batch) (hub.CommitResult, error)
	HistoryFunc      func(q hub.HistoryQuery) ([]hub.Series, error)
	CompletenessFunc func(device string, from, to int64) (hub.Completeness, error)
	DevicesFunc      func() ([]hub.DeviceRecord, error)
}

func (s *fakeStore) Commit(b *hub.Batch) (hub.CommitResult, error) { return s.CommitFunc(b) }
func (s *fakeStore) History(q hub.HistoryQuery) ([]hub.Series, error) {
	return s.HistoryFunc(q)
}

func (s *fakeStore) Completeness(device string, from, to int64) (hub.Completeness, error) {
	return s.CompletenessFunc(device, from, to)
}
func (s *fakeStore) Devices() ([]hub.DeviceRecord, error) { return s.DevicesFunc() }
func (s *fakeStore) Alerts(hub.AlertQuery) ([]hub.Alert, error) {
	return nil, errors.New("fakeStore: no alerts")
}
func (s *fakeStore) DeviceEvents(string, int64, int64, int) ([]hub.DeviceEvent, error) {
	return nil, errors.New("fakeStore: no events")
}

type fakeAcker struct {
	PublishAckFunc func(device string, ack telemetry.Ack)
}

func (a *fakeAcker) PublishAck(device string, ack telemetry.Ack) { a.PublishAckFunc(device, ack) }

// events records what happened, in order, across goroutines.
type events struct {
	mu  sync.Mutex
	log []string
}

func (e *events) add(format string, args ...any) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.log = append(e.log, fmt.Sprintf(format, args...))
}

func (e *events) get() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.log)
}

var topics = telemetry.Topics{Prefix: telemetry.DefaultPrefix}

func newIngester(store hub.Store, acker hub.Acker) *hub.Ingester {
	return &hub.Ingester{
		Topics:         topics,
		Store:          store,
		Acker:          acker,
		Registry:       hub.NewRegistry(nil),
		Feed:           hub.NewFeed(hub.FeedOptions{}),
		CommitInterval: 5 * time.Millisecond,
		Now:            func() time.Time { return time.UnixMilli(t0 + 60_000) },
	}
}

// run starts in.Run and stops it when the test ends.
func run(t *testing.T, in *hub.Ingester) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- in.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if !errors.Is(err, context.Canceled) {
				t.Errorf("Run() = %v, want context.Canceled", err)
			}
		case <-time.After(5 * time.Second):
			t.Error("Run did not return within 5s of cancel")
		}
	})
}

func payload(t *testing.T, e *telemetry.Envelope) []byte {
	t.Helper()
	b, err := e.Encode()
	if err != nil {
		t.Fatalf("encode test envelope: %v", err)
	}
	return b
}

func waitFor(t *testing.T, what string, c <-chan struct{}) {
	t.Helper()
	select {
	case <-c:
	case <-time.After(5 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
	}
}

func TestIngester_Handle(t *testing.T) {
	var log events
	started, release := make(chan struct{}), make(chan struct{})
	var batches []*hub.Batch
	store := &fakeStore{CommitFunc: func(b *hub.Batch) (hub.CommitResult, error) {
		batches = append(batches, b)
		log.add("commit start")
		close(started)
		<-release
		log.add("commit end")
		return hub.CommitResult{Stored: 2, Acks: []hub.DeviceAck{
			{Device: "pi-a", Ack: telemetry.Ack{V: 1, Boot: "b1", Seq: 2}},
			{Device: "pi-b", Ack: telemetry.Ack{V: 1, Boot: "b9", Seq: 7}},
		}}, nil
	}}
	acksDone := make(chan struct{})
	var deviceAcks []hub.DeviceAck
	acker := &fakeAcker{PublishAckFunc: func(device string, ack telemetry.Ack) {
		log.add("device ack %s %d", device, ack.Seq)
		deviceAcks = append(deviceAcks, hub.DeviceAck{Device: device, Ack: ack})
		if len(deviceAcks) == 2 {
			close(acksDone)
		}
	}}
	in := newIngester(store, acker)
	sub := in.Feed.SubscribeAll(nil)
	run(t, in)

	e := env("pi-a", "b1", t0, 1, 2)
	acked := make(chan struct{})
	in.Handle(hub.Message{Topic: topics.Telemetry("pi-a"), Payload: payload(t, e), Ack: func() {
		log.add("mqtt ack")
		close(acked)
	}})

	// The live path does not wait for the disk.
	waitFor(t, "Commit to start", started)
	for _, wantSeq := range []uint64{1, 2} {
		ev := recv(t, sub)
		if ev.Type != hub.EventReading || ev.Channel != hub.DeviceChannel("pi-a") {
			t.Fatalf("live event %s on %s, want %s on %s", ev.Type, ev.Channel, hub.EventReading, hub.DeviceChannel("pi-a"))
		}
		var data struct {
			Device  string            `json:"device"`
			Seq     uint64            `json:"seq"`
			TS      int64             `json:"ts"`
			Metrics telemetry.Metrics `json:"metrics"`
		}
		if err := json.Unmarshal(ev.Data, &data); err != nil {
			t.Fatalf("reading event data %s: %v", ev.Data, err)
		}
		if data.Device != "pi-a" || data.Seq != wantSeq || data.TS != t0+int64(wantSeq)*1000 || data.Metrics["cpu.percent"] != float64(wantSeq) {
			t.Errorf("reading event = %+v, want device pi-a seq %d", data, wantSeq)
		}
	}
	if rec, ok := in.Registry.Device("pi-a"); !ok || rec.Seq != 2 {
		t.Errorf("registry while Commit is blocked = %+v, %v; want pi-a at seq 2", rec, ok)
	}
	select {
	case <-acked:
		t.Fatal("MQTT message acked while Commit was still running")
	case <-time.After(20 * time.Millisecond):
	}

	close(release)
	waitFor(t, "the MQTT ack", acked)
	waitFor(t, "device acks", acksDone)

	want := []string{"commit start", "commit end", "mqtt ack", "device ack pi-a 2", "device ack pi-b 7"}
	if got := log.get(); !slices.Equal(got, want) {
		t.Errorf("order of events = %q, want %q", got, want)
	}
	if len(batches) != 1 || len(batches[0].Envelopes) != 1 || len(batches[0].Devices) != 1 {
		t.Fatalf("batches = %+v, want one batch of one envelope and one device", batches)
	}
	if got := batches[0].Envelopes[0]; got.Boot != "b1" || !slices.Equal(seqsOf(got.Readings), []uint64{1, 2}) {
		t.Errorf("committed envelope = %+v, want boot b1 seqs 1, 2", got)
	}
	if got := batches[0].Devices[0]; got.ID != "pi-a" || got.Seq != 2 {
		t.Errorf("committed device record = %+v, want pi-a at seq 2", got)
	}
	if got, want := in.Stats.Readings.Load(), uint64(2); got != want {
		t.Errorf("Stats.Readings = %d, want %d", got, want)
	}
	if got, want := in.Stats.Commits.Load(), uint64(1); got != want {
		t.Errorf("Stats.Commits = %d, want %d", got, want)
	}
	if got := in.Stats.Queued.Load(); got != 0 {
		t.Errorf("Stats.Queued = %d after the commit, want 0", got)
	}
}

func TestIngester_HandleStatus(t *testing.T) {
	committed := make(chan *hub.Batch, 1)
	in := newIngester(&fakeStore{CommitFunc: func(b *hub.Batch) (hub.CommitResult, error) {
		committed <- b
		return hub.CommitResult{}, nil
	}}, nil)
	sub := in.Feed.SubscribeAll(nil)
	run(t, in)

	st := onlineStatus(10_000)
	body, _ := st.Encode()
	acked := make(chan struct{})
	in.Handle(hub.Message{Topic: topics.Status("pi-a"), Payload: body, Ack: func() { close(acked) }})

	ev := recv(t, sub)
	var data struct {
		Device string           `json:"device"`
		State  string           `json:"state"`
		TS     int64            `json:"ts"`
		Status telemetry.Status `json:"status"`
	}
	if err := json.Unmarshal(ev.Data, &data); err != nil {
		t.Fatalf("status event data %s: %v", ev.Data, err)
	}
	if ev.Type != hub.EventStatus || ev.Channel != hub.ChannelFleet || data.Device != "pi-a" || data.State != "online" ||
		data.TS != in.Now().UnixMilli() || data.Status != st {
		t.Errorf("status event %s on %s: %s; want pi-a online with the status it sent", ev.Type, ev.Channel, ev.Data)
	}
	waitFor(t, "the MQTT ack", acked)
	b := <-committed
	if len(b.Envelopes) != 0 || len(b.Devices) != 1 || b.Devices[0].Status != st {
		t.Errorf("committed batch = %+v, want only pi-a's record with its status", b)
	}

	// A cleared retained status is acked and otherwise ignored.
	cleared := make(chan struct{})
	in.Handle(hub.Message{Topic: topics.Status("pi-b"), Ack: func() { close(cleared) }})
	waitFor(t, "the ack of an empty status", cleared)
	if _, ok := in.Registry.Device("pi-b"); ok {
		t.Error("an empty status created a device")
	}
}

func TestIngester_HandleInvalid(t *testing.T) {
	valid := string(payload(t, env("pi-a", "b1", t0, 1)))
	tests := []struct {
		name, topic, payload, wantReason string
	}{
		{"bad JSON", topics.Telemetry("pi-a"), `{"v":1,"device":"pi-a","readings":[`, telemetry.ReasonBadJSON},
		{"bad simple JSON", topics.Telemetry("pi-a"), `{"cpu.percent":`, telemetry.ReasonBadJSON},
		{"device mismatch", topics.Telemetry("pi-b"), valid, telemetry.ReasonDeviceMismatch},
		{"topic outside the prefix", "other/pi-a/telemetry", valid, telemetry.ReasonBadTopic},
		{"topic too deep", "fleetwatch/pi-a/telemetry/x", valid, telemetry.ReasonBadTopic},
		{"unknown kind", topics.Ack("pi-a"), valid, telemetry.ReasonBadTopic},
		{"bad device in topic", "fleetwatch/-pi/telemetry", valid, telemetry.ReasonBadDevice},
		{"bad status JSON", topics.Status("pi-a"), `{"v":1,`, telemetry.ReasonBadJSON},
		{"bad status state", topics.Status("pi-a"), `{"v":1,"state":"sleeping"}`, telemetry.ReasonBadStatus},
		{"bad version", topics.Telemetry("pi-a"), `{"v":2,"device":"pi-a","boot":"b1","readings":[]}`, telemetry.ReasonBadVersion},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := newIngester(&fakeStore{CommitFunc: func(b *hub.Batch) (hub.CommitResult, error) {
				t.Errorf("an invalid message reached the store: %+v", b)
				return hub.CommitResult{}, nil
			}}, &fakeAcker{PublishAckFunc: func(device string, ack telemetry.Ack) {
				t.Errorf("device ack %s %+v for an invalid message", device, ack)
			}})
			sub := in.Feed.SubscribeAll(nil)
			run(t, in)

			var acks atomic.Int32
			in.Handle(hub.Message{Topic: tt.topic, Payload: []byte(tt.payload), Ack: func() { acks.Add(1) }})

			if got := acks.Load(); got != 1 {
				t.Errorf("acks when Handle returned = %d, want 1 (at once)", got)
			}
			if got := in.Stats.Rejected(tt.wantReason); got != 1 {
				t.Errorf("Stats.Rejected(%q) = %d, want 1", tt.wantReason, got)
			}
			if got := in.Stats.Messages.Load(); got != 1 {
				t.Errorf("Stats.Messages = %d, want 1", got)
			}
			if got := in.Stats.Queued.Load(); got != 0 {
				t.Errorf("Stats.Queued = %d, want 0", got)
			}
			if n := len(in.Registry.Snapshot(t0).Devices); n != 0 {
				t.Errorf("registry has %d devices after an invalid message, want 0", n)
			}
			time.Sleep(20 * time.Millisecond) // four commit intervals
			noEvent(t, sub)
		})
	}
}

func TestIngester_commitRetry(t *testing.T) {
	var calls atomic.Int32
	var committed []*hub.Batch
	store := &fakeStore{CommitFunc: func(b *hub.Batch) (hub.CommitResult, error) {
		committed = append(committed, b)
		if calls.Add(1) <= 2 {
			return hub.CommitResult{}, errors.New("disk full")
		}
		return hub.CommitResult{Stored: 1, Acks: []hub.DeviceAck{{Device: "pi-a", Ack: telemetry.Ack{V: 1, Boot: "b1", Seq: 1}}}}, nil
	}}
	deviceAcked := make(chan int32, 1)
	acked := make(chan int32, 1)
	in := newIngester(store, &fakeAcker{PublishAckFunc: func(string, telemetry.Ack) { deviceAcked <- calls.Load() }})
	run(t, in)

	in.Handle(hub.Message{Topic: topics.Telemetry("pi-a"), Payload: payload(t, env("pi-a", "b1", t0, 1)), Ack: func() { acked <- calls.Load() }})

	select {
	case n := <-acked:
		if n != 3 {
			t.Errorf("MQTT ack after %d commit attempts, want 3 (after the first success)", n)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no MQTT ack within 5s")
	}
	select {
	case n := <-deviceAcked:
		if n != 3 {
			t.Errorf("device ack after %d commit attempts, want 3", n)
		}
	case <-time.After(time.Second):
		t.Fatal("no device ack")
	}
	if got, want := in.Stats.CommitErrs.Load(), uint64(2); got != want {
		t.Errorf("Stats.CommitErrs = %d, want %d", got, want)
	}
	if got, want := in.Stats.Commits.Load(), uint64(1); got != want {
		t.Errorf("Stats.Commits = %d, want %d", got, want)
	}
	if len(committed) != 3 || committed[0] != committed[2] {
		t.Errorf("got %d commit calls, want 3 retries of the same batch", len(committed))
	}
}

func TestIngester_Run(t *testing.T) {
	t.Run("drains the queue on cancel", func(t *testing.T) {
		var batches [][]uint64 // seqs per commit
		var devices [][]hub.DeviceRecord
		in := newIngester(&fakeStore{CommitFunc: func(b *hub.Batch) (hub.CommitResult, error) {
			var seqs []uint64
			for _, e := range b.Envelopes {
				seqs = append(seqs, seqsOf(e.Readings)...)
			}
			batches = append(batches, seqs)
			devices = append(devices, b.Devices)
			return hub.CommitResult{}, nil
		}}, nil)
		in.CommitInterval = time.Hour // only the shutdown drain commits
		var acks atomic.Int32
		for _, m := range []struct {
			dev string
			seq uint64
		}{{"pi-a", 1}, {"pi-a", 2}, {"pi-b", 3}} {
			in.Handle(hub.Message{Topic: topics.Telemetry(m.dev), Payload: payload(t, env(m.dev, "b1", t0, m.seq)), Ack: func() { acks.Add(1) }})
		}
		if got := acks.Load(); got != 0 {
			t.Fatalf("%d acks before any commit, want 0", got)
		}
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if err := in.Run(ctx); !errors.Is(err, context.Canceled) {
			t.Errorf("Run() = %v, want context.Canceled", err)
		}
		if want := [][]uint64{{1, 2, 3}}; !slices.EqualFunc(batches, want, slices.Equal) {
			t.Errorf("committed seqs = %v, want %v", batches, want)
		}
		if got, want := acks.Load(), int32(3); got != want {
			t.Errorf("acks after Run returned = %d, want %d", got, want)
		}
		if len(devices) == 1 {
			if got := devices[0]; len(got) != 2 || got[0].ID != "pi-a" || got[0].Seq != 2 || got[1].ID != "pi-b" {
				t.Errorf("committed devices = %+v, want pi-a (latest, seq 2) then pi-b", got)
			}
		}
		if got := in.Stats.Queued.Load(); got != 0 {
			t.Errorf("Stats.Queued = %d, want 0", got)
		}
	})
	t.Run("MaxBatch splits commits", func(t *testing.T) {
		var sizes []int
		in := newIngester(&fakeStore{CommitFunc: func(b *hub.Batch) (hub.CommitResult, error) {
			sizes = append(sizes, len(b.Envelopes))
			return hub.CommitResult{}, nil
		}}, nil)
		in.CommitInterval = time.Hour
		in.MaxBatch = 2
		for seq := uint64(1); seq <= 5; seq++ {
			in.Handle(hub.Message{Topic: topics.Telemetry("pi-a"), Payload: payload(t, env("pi-a", "b1", t0, seq))})
		}
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		in.Run(ctx) //nolint:errcheck // checked in the test above
		if want := []int{2, 2, 1}; !slices.Equal(sizes, want) {
			t.Errorf("batch sizes = %v, want %v", sizes, want)
		}
	})
	t.Run("commits within CommitInterval", func(t *testing.T) {
		committed := make(chan struct{}, 1)
		in := newIngester(&fakeStore{CommitFunc: func(b *hub.Batch) (hub.CommitResult, error) {
			committed <- struct{}{}
			return hub.CommitResult{}, nil
		}}, nil)
		run(t, in)
		start := time.Now()
		in.Handle(hub.Message{Topic: topics.Telemetry("pi-a"), Payload: payload(t, env("pi-a", "b1", t0, 1))})
		waitFor(t, "a commit", committed)
		if got := time.Since(start); got > time.Second {
			t.Errorf("commit after %v, want about CommitInterval (%v)", got, in.CommitInterval)
		}
	})
}

func TestIngester_CommitErr(t *testing.T) {
	errFull := errors.New("write fleetwatch.db: no space left on device")
	var failing atomic.Bool
	failing.Store(true)
	store := &fakeStore{CommitFunc: func(b *hub.Batch) (hub.CommitResult, error) {
		if failing.Load() {
			return hub.CommitResult{}, errFull
		}
		return hub.CommitResult{Stored: len(b.Envelopes)}, nil
	}}
	in := newIngester(store, nil)
	if err := in.CommitErr(); err != nil {
		t.Fatalf("CommitErr() before any commit = %v, want nil", err)
	}
	run(t, in)

	// Readers poll concurrently with the writer (run with -race).
	stop := make(chan struct{})
	var readers sync.WaitGroup
	for range 4 {
		readers.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
					_ = in.CommitErr()
				}
			}
		})
	}
	defer func() { close(stop); readers.Wait() }()

	acked := make(chan struct{})
	in.Handle(hub.Message{Topic: topics.Telemetry("pi-a"), Payload: payload(t, env("pi-a", "b1", t0, 1)), Ack: func() { close(acked) }})
	deadline := time.Now().Add(5 * time.Second)
	for in.CommitErr() == nil {
		if time.Now().After(deadline) {
			t.Fatal("CommitErr() still nil 5s after a failing commit")
		}
		time.Sleep(time.Millisecond)
	}
	if err := in.CommitErr(); !errors.Is(err, errFull) {
		t.Fatalf("CommitErr() = %v, want %v", err, errFull)
	}
	select {
	case <-acked:
		t.Fatal("message acked while its commit fails")
	default:
	}

	failing.Store(false)
	waitFor(t, "the MQTT ack after the retry succeeds", acked)
	if err := in.CommitErr(); err != nil {
		t.Errorf("CommitErr() after a successful commit = %v, want nil", err)
	}
	if in.Stats.CommitErrs.Load() == 0 {
		t.Error("Stats.CommitErrs = 0, want the failed attempts counted")
	}
}

// A backlog stamped long ago is stored but not published live: it is
// history, and a day of it must not flood every dashboard.
func TestIngester_HandleBacklogIsNotLive(t *testing.T) {
	committed := make(chan *hub.Batch, 2)
	in := newIngester(&fakeStore{CommitFunc: func(b *hub.Batch) (hub.CommitResult, error) {
		committed <- b
		return hub.CommitResult{Stored: len(b.Envelopes)}, nil
	}}, nil)
	sub := in.Feed.SubscribeAll(nil)
	run(t, in)
	// The clock is t0+60 s; the live window 2 min: seq 1 is an hour old.
	old := env("pi-a", "b1", t0-3_600_000, 1)
	fresh := env("pi-a", "b1", t0, 2)
	for _, e := range []*telemetry.Envelope{old, fresh} {
		acked := make(chan struct{})
		in.Handle(hub.Message{Topic: topics.Telemetry("pi-a"), Payload: payload(t, e), Ack: func() { close(acked) }})
		waitFor(t, "ack", acked)
		<-committed
	}
	ev := recv(t, sub)
	var data struct {
		Seq uint64 `json:"seq"`
	}
	if err := json.Unmarshal(ev.Data, &data); err != nil || data.Seq != 2 {
		t.Fatalf("live event %s, want only seq 2", ev.Data)
	}
	noEvent(t, sub)
}
