package boltstore

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/fleetwatch/fleetwatch/hub"
	"github.com/fleetwatch/fleetwatch/hub/chunk"
	"github.com/fleetwatch/fleetwatch/hub/watermark"
)

// Errors returned by Open.
var (
	// ErrLocked means another process holds the store file open.
	ErrLocked = errors.New("store is locked by another process (is another fleetwatch-hub running on this data dir?)")
	// ErrVersion means the file was written by a newer, unknown layout.
	ErrVersion = errors.New("store file has an unknown layout version")
)

// Defaults for Options.
const (
	DefaultLockTimeout     = time.Second
	DefaultRawRetention    = 7 * 24 * time.Hour
	DefaultMinuteRetention = 90 * 24 * time.Hour
	DefaultHourRetention   = 730 * 24 * time.Hour
	DefaultMaxChunkPoints  = 240
	DefaultMaxHeadAge      = 10 * time.Minute
	DefaultMaxFuture       = 24 * time.Hour
)

// Options configure a Store. Zero fields take the defaults.
type Options struct {
	// LockTimeout bounds how long Open waits for the file lock.
	LockTimeout time.Duration
	// RawRetention, MinuteRetention and HourRetention are how long each
	// tier keeps samples (raw, 1-minute and 1-hour rollups).
	RawRetention, MinuteRetention, HourRetention time.Duration
	// Partitions overrides each tier's partition length (raw, 1m, 1h) when
	// the file is created; zero means retention/8. An existing file keeps
	// the lengths it was created with.
	Partitions [3]time.Duration
	// MaxChunkPoints is the most samples in a sealed raw chunk.
	MaxChunkPoints int
	// MaxHeadAge seals an open chunk whose first sample arrived this long
	// ago, so quiet series do not pin the WAL.
	MaxHeadAge time.Duration
	// MaxFuture drops samples stamped further ahead of Now (a device clock
	// gone wrong) instead of opening partitions years ahead.
	MaxFuture time.Duration
	// Now is the hub clock used for retention; nil means time.Now.
	Now    func() time.Time
	Logger *slog.Logger
}

func (o *Options) setDefaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&o.LockTimeout, DefaultLockTimeout)
	def(&o.RawRetention, DefaultRawRetention)
	def(&o.MinuteRetention, DefaultMinuteRetention)
	def(&o.HourRetention, DefaultHourRetention)
	def(&o.MaxHeadAge, DefaultMaxHeadAge)
	def(&o.MaxFuture, DefaultMaxFuture)
	if o.MaxChunkPoints <= 0 {
		o.MaxChunkPoints = DefaultMaxChunkPoints
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
}

// Store is a bbolt-backed hub.Store.
type Store struct {
	db    *bolt.DB
	path  string
	opt   Options
	tiers [3]tier

	// mu guards the series index and every series' committed head state;
	// the writer holds it only to publish a commit's changes.
	mu    sync.RWMutex
	devs  map[string]*device
	bySID []*series // index sid-1

	// Writer-only state.
	marks      map[string]*watermark.Mark // by device+"\x00"+boot
	gen        uint64                     // commit generation, tags pending state
	nextWAL    uint64                     // key of the next WAL record
	walFloor   uint64                     // WAL records below this are no longer needed
	lastSweep  int64                      // hub ms of the last retention sweep
	lastLedger int64                      // hub ms of the last gap-ledger sweep
	lastAge    int64                      // hub ms of the last head-age sweep
}

var _ hub.Store = (*Store)(nil)

var (
	bucketMeta    = []byte("meta")
	bucketDevices = []byte("devices")
	bucketAcks    = []byte("acks")
	bucketSIDs    = []byte("sids")
	bucketWAL     = []byte("wal")
	bucketGaps    = []byte("gaps")
	bucketLegacy  = []byte("series") // walking-skeleton layout, migrated on open

	keyVersion = []byte("version")
	version    = []byte("2")
)

// Open opens (creating if needed) the store file at path and rebuilds the
// open chunks from the WAL.
func Open(path string, o Options) (*Store, error) {
	o.setDefaults()
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("open store %q: %w", path, err)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{
		Timeout: o.LockTimeout,
		// The hashmap freelist stays fast on a large, fragmented file, and
		// not writing it on every commit halves commit I/O; it is rebuilt
		// by a scan on open instead.
		FreelistType:   bolt.FreelistMapType,
		NoFreelistSync: true,
	})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, fmt.Errorf("open store %q: %w", path, ErrLocked)
	}
	if err != nil {
		return nil, fmt.Errorf("open store %q: %w", path, err)
	}
	s := &Store{
		db: db, path: path, opt: o,
		devs:  make(map[string]*device),
		marks: make(map[string]*watermark.Mark),
	}
	if err := s.init(); err != nil {
		db.Close()
		return nil, fmt.Errorf("open store %q: %w", path, err)
	}
	return s, nil
}

// init creates the buckets, reads the partition lengths, loads the series
// index, migrates a walking-skeleton file and replays the WAL.
func (s *Store) init() error {
	err := s.db.Update(func(tx *bolt.Tx) error {
		for _, name := range [][]byte{bucketMeta, bucketDevices, bucketAcks, bucketSIDs, bucketWAL, bucketGaps, bucketAlerts, bucketAlertTimes, bucketEvents} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return fmt.Errorf("create bucket %s: %w", name, err)
			}
		}
		meta := tx.Bucket(bucketMeta)
		switch v := meta.Get(keyVersion); {
		case v == nil:
			if err := meta.Put(keyVersion, version); err != nil {
				return err
			}
		case string(v) != string(version):
			return fmt.Errorf("%w: %q", ErrVersion, v)
		}
		return s.initTiers(tx)
	})
	if err != nil {
		return err
	}
	if err := s.loadSeries(); err != nil {
		return err
	}
	if err := s.migrateLegacy(); err != nil {
		return fmt.Errorf("migrate walking-skeleton history: %w", err)
	}
	return s.replayWAL()
}

// loadSeries reads the series index into memory with where each series'
// sealed history ends.
func (s *Store) loadSeries() error {
	return s.db.View(func(tx *bolt.Tx) error {
		err := tx.Bucket(bucketSIDs).ForEach(func(k, v []byte) error {
			device, metric, ok := splitSeriesKey(k)
			if !ok || len(v) != 4 || binary.BigEndian.Uint32(v) == 0 {
				return fmt.Errorf("corrupt series index entry %q", k)
			}
			s.addSeries(&series{sid: binary.BigEndian.Uint32(v), device: device, metric: metric, head: headState{sealed: noSealed}})
			return nil
		})
		if err != nil {
			return err
		}
		for _, sr := range s.bySID {
			if sr == nil {
				continue
			}
			if sr.head.sealed, err = s.lookupSealed(tx, sr.sid); err != nil {
				return fmt.Errorf("find end of series %d (%s %s): %w", sr.sid, sr.device, sr.metric, err)
			}
		}
		return nil
	})
}

// addSeries indexes sr; the caller holds mu or is still opening.
func (s *Store) addSeries(sr *series) {
	d := s.devs[sr.device]
	if d == nil {
		d = &device{metrics: make(map[string]*series)}
		s.devs[sr.device] = d
	}
	d.metrics[sr.metric] = sr
	for int(sr.sid) > len(s.bySID) {
		s.bySID = append(s.bySID, nil)
	}
	s.bySID[sr.sid-1] = sr
}

// Close closes the file. Open chunks stay in the WAL for the next Open.
func (s *Store) Close() error {
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("close store %q: %w", s.path, err)
	}
	return nil
}

// Path returns the file path.
func (s *Store) Path() string { return s.path }

// Check runs bbolt's consistency check and returns the first problem found.
func (s *Store) Check() error {
	return s.db.View(func(tx *bolt.Tx) error {
		var first error
		for err := range tx.Check() { // drain: the checker blocks until read
			if first == nil {
				first = fmt.Errorf("check store %q: %w", s.path, err)
			}
		}
		return first
	})
}

// Devices returns every stored device record.
func (s *Store) Devices() ([]hub.DeviceRecord, error) {
	var out []hub.DeviceRecord
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketDevices).ForEach(func(k, v []byte) error {
			var rec hub.DeviceRecord
			if err := json.Unmarshal(v, &rec); err != nil {
				return fmt.Errorf("decode device %q: %w", k, err)
			}
			out = append(out, rec)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("load devices: %w", err)
	}
	return out, nil
}

// Stats returns bbolt's counters; TxStats.Write counts page writes.
func (s *Store) Stats() bolt.Stats { return s.db.Stats() }

// Size reports the file's size and the bytes its live pages use (the file
// minus its free pages), so callers can watch the file stop growing.
func (s *Store) Size() (file, live int64, err error) {
	err = s.db.View(func(tx *bolt.Tx) error {
		file = tx.Size()
		return nil
	})
	if err != nil {
		return 0, 0, fmt.Errorf("size of store %q: %w", s.path, err)
	}
	st := s.db.Stats()
	free := int64(st.FreePageN+st.PendingPageN) * int64(s.db.Info().PageSize)
	return file, file - free, nil
}

// SeriesCount returns the number of series stored.
func (s *Store) SeriesCount() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	n := 0
	for _, sr := range s.bySID {
		if sr != nil {
			n++
		}
	}
	return n
}

// Usage returns bytes in use (leaf and branch pages, bbolt's
// Bucket.Stats) by each top-level bucket, and the samples' share of it.
func (s *Store) Usage() (map[string]int64, error) {
	out := map[string]int64{}
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.ForEach(func(name []byte, b *bolt.Bucket) error {
			st := b.Stats()
			out[string(name)] = int64(st.LeafAlloc + st.BranchAlloc)
			out[string(name)+".used"] = int64(st.LeafInuse + st.BranchInuse)
			out[string(name)+".keys"] = int64(st.KeyN)
			return nil
		})
	})
	return out, err
}

// RawSamples counts the samples the raw tier holds now (chunk headers, and
// the open chunks), leaving out the store's internal series: what a size
// per sample should divide by once retention has dropped older ones.
func (s *Store) RawSamples() (int64, error) {
	s.mu.RLock()
	internal := map[uint32]bool{}
	var n int64
	for _, sr := range s.bySID {
		if sr == nil {
			continue
		}
		if sr.metric == seqMetric {
			internal[sr.sid] = true
			continue
		}
		n += int64(len(sr.head.pts))
	}
	s.mu.RUnlock()
	err := s.db.View(func(tx *bolt.Tx) error {
		tb := tx.Bucket(s.tiers[tierRaw].name)
		return tb.ForEachBucket(func(pk []byte) error {
			pb := tb.Bucket(pk)
			return pb.ForEachBucket(func(name []byte) error {
				if len(name) != 4 || internal[binary.BigEndian.Uint32(name)] {
					return nil
				}
				return pb.Bucket(name).ForEach(func(k, v []byte) error {
					_, _, cnt, _, err := chunk.Header(v)
					n += int64(cnt)
					return err
				})
			})
		})
	})
	if err != nil {
		return 0, fmt.Errorf("count samples in %q: %w", s.path, err)
	}
	return n, nil
}
