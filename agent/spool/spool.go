// Package spool keeps an agent's unacked readings on disk, so that a crash,
// a power cut or a restart loses only what was younger than the agent's
// spill interval.
//
// The agent's outbox lives in memory; only readings that stay unacked for a
// while (the broker or the hub is away) are appended here, a group at a
// time: one write and one fsync per spill. While acks flow nothing is
// written at all, not even the directory, because SD cards wear out.
//
// # Layout
//
// A spool is a directory of segment files and at most one state file:
//
//	seg-0000000000000001.log  records, appended and never rewritten
//	state.json                floors, and the boot to resume after a clean stop
//
// A segment starts with the magic "fwspool1" and holds framed records (see
// record.go): a length, a CRC-32C of the payload and a CRC-32C of those two,
// then the payload, one reading with its boot. A segment is deleted whole
// once every reading in it is acked or dropped.
//
// Open indexes the records it finds (Recovered) and Append says where it
// wrote each one; Read fetches a reading's metrics back by that index, so
// that the agent keeps in memory only the index of what is on disk.
//
// The floor of a boot is the seq up to which everything is acked or dropped;
// Open skips records at or below it. The state file is replaced atomically
// (temp file, fsync, rename, fsync of the directory) and only exists while
// segments do, or after a clean stop.
//
// # Recovery
//
// Open never refuses a damaged spool. A torn write can only be the last one
// of a segment: Open cuts it off. A damaged record with intact ones after it
// is skipped and counted. A damaged state file is ignored: readings already
// acked come back as duplicates, which the hub discards, and no boot is
// resumed.
//
// A Spool is not safe for concurrent use.
package spool

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
)

// Defaults for Options.
const (
	DefaultMaxBytes = 64 << 20
	minSegmentBytes = 64 << 10
	maxSegmentBytes = 4 << 20
)

const stateName = "state.json"

// Options tune a Spool.
type Options struct {
	// MaxBytes bounds the segment files together. Past it, Append drops
	// the oldest segments and reports what it dropped.
	MaxBytes int64
	// SegmentBytes is the size past which Append starts a new segment.
	// Default: MaxBytes/16 within [64 KiB, 4 MiB], so that the bound
	// drops a sixteenth at a time and acks free space in steps as small.
	SegmentBytes int64
	Logger       *slog.Logger
}

// Resume is what a clean stop leaves for the next run: the boot whose seqs
// it may continue, and the next seq of that boot.
type Resume struct {
	Device  string `json:"device"`
	Boot    string `json:"boot"`
	NextSeq uint64 `json:"next_seq"`
}

// Stats describes the spool.
type Stats struct {
	Bytes    int64 // size of the segment files
	Segments int
	// Damaged counts records that Open found damaged and skipped (a
	// damaged stretch between intact records counts once), and records
	// that Read could not read back intact.
	Damaged uint64
	// TornBytes is what Open cut off torn tails.
	TornBytes int64
	// Writes and WrittenBytes count writes since Open: group appends and
	// state file replacements.
	Writes       uint64
	WrittenBytes uint64
}

// state is the JSON of the state file.
type state struct {
	V      int               `json:"v"`
	Floors map[string]uint64 `json:"floors,omitempty"`
	Resume *Resume           `json:"resume,omitempty"`
}

// Spool is an open spool directory.
type Spool struct {
	dir  string
	opts Options
	log  *slog.Logger

	segs   []*segment // oldest first
	active *os.File   // the last segment, open for appending; nil: start a new one
	nextID uint64
	floors map[string]uint64 // of the boots with records in segs
	dirty  bool              // floors moved since the state file was written

	resume      *Resume // read by Open
	stateOnDisk bool
	diskResume  *Resume // what the state file on disk holds
	dirExists   bool

	recovered []Entry
	stats     Stats
	buf       []byte            // Append's encoding buffer
	rbuf      []byte            // Read's buffer
	intern    map[string]string // boots and metric names, shared by what Read returns
}

// Open reads the spool in dir. A missing dir is an empty spool: it is
// created by the first write.
func Open(dir string, opts Options) (*Spool, error) {
	if opts.MaxBytes <= 0 {
		opts.MaxBytes = DefaultMaxBytes
	}
	if opts.SegmentBytes <= 0 {
		opts.SegmentBytes = min(max(opts.MaxBytes/16, minSegmentBytes), maxSegmentBytes)
	}
	opts.SegmentBytes = min(opts.SegmentBytes, 1<<30) // a Loc's offset is 32 bits
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Spool{dir: dir, opts: opts, log: opts.Logger, nextID: 1, floors: map[string]uint64{}, intern: map[string]string{}}
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return nil, fmt.Errorf("open spool: %w", err)
	}
	s.dirExists = true
	var ids []uint64
	for _, e := range entries {
		if id, ok := parseSegName(e.Name()); ok && e.Type().IsRegular() {
			ids = append(ids, id)
			s.nextID = max(s.nextID, id+1)
		}
	}
	os.Remove(filepath.Join(dir, stateName+".tmp")) //nolint:errcheck // a crash mid-replace leaves it; absent is fine
	floors := s.readState()
	slices.Sort(ids)
	removed, err := s.recover(ids, floors)
	if err != nil {
		return nil, err
	}
	if len(s.segs) == 0 && s.stateOnDisk && s.diskResume == nil {
		removed = true // floors of nothing
		if err := os.Remove(filepath.Join(dir, stateName)); err != nil {
			return nil, fmt.Errorf("open spool: %w", err)
		}
		s.stateOnDisk = false
	}
	if removed {
		if err := syncDir(dir); err != nil {
			return nil, fmt.Errorf("open spool: %w", err)
		}
	}
	return s, nil
}

// readState loads the state file and returns its floors.
func (s *Spool) readState() map[string]uint64 {
	b, err := os.ReadFile(filepath.Join(s.dir, stateName))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	s.stateOnDisk = true
	var st state
	if err == nil {
		err = json.Unmarshal(b, &st)
	}
	if err == nil && st.V != 1 {
		err = fmt.Errorf("version %d", st.V)
	}
	if err != nil {
		s.log.Warn("spool state unreadable; acked readings may be sent again and no boot is resumed",
			"dir", s.dir, "err", err)
		return nil
	}
	if st.Resume != nil && st.Resume.Boot != "" && st.Resume.NextSeq > 0 {
		s.resume, s.diskResume = st.Resume, st.Resume
	}
	return st.Floors
}

// Resume returns what the last clean stop left, as Open read it.
func (s *Spool) Resume() (Resume, bool) {
	if s.resume == nil {
		return Resume{}, false
	}
	return *s.resume, true
}

// ClearResume removes the resume point from disk. A run that continues a
// boot must call it before it takes a seq: should it crash, the next run
// must not take the same seqs again.
func (s *Spool) ClearResume() error {
	if s.diskResume == nil {
		return nil
	}
	var err error
	if len(s.segs) == 0 {
		err = s.removeState()
	} else {
		err = s.putState(nil)
	}
	if err != nil {
		return fmt.Errorf("clear spool resume: %w", err)
	}
	return nil
}

// Save records floors and, for the next run, r. Call it last, after the
// final Append: r must be beyond every seq the run took.
func (s *Spool) Save(floors map[string]uint64, r Resume) error {
	if err := s.trim(floors); err != nil {
		return fmt.Errorf("save spool: %w", err)
	}
	if err := s.putState(&r); err != nil {
		return fmt.Errorf("save spool: %w", err)
	}
	return nil
}

// Trim raises the floors, deletes every segment they cover and, with
// checkpoint, writes the floors to the state file if they moved and
// segments remain. Once no segment remains the state file goes too.
func (s *Spool) Trim(floors map[string]uint64, checkpoint bool) error {
	if err := s.trim(floors); err != nil {
		return fmt.Errorf("trim spool: %w", err)
	}
	var err error
	switch {
	case len(s.segs) == 0 && s.stateOnDisk && s.diskResume == nil:
		err = s.removeState()
	case len(s.segs) > 0 && checkpoint && s.dirty:
		err = s.putState(s.diskResume)
	}
	if err != nil {
		return fmt.Errorf("trim spool: %w", err)
	}
	return nil
}

func (s *Spool) trim(floors map[string]uint64) error {
	for boot, f := range floors {
		if _, ok := s.floors[boot]; ok || s.holds(boot) {
			if f > s.floors[boot] {
				s.floors[boot] = f
				s.dirty = true
			}
		}
	}
	keep := s.segs[:0]
	var removed bool
	for _, seg := range s.segs {
		if !s.covered(seg) {
			keep = append(keep, seg)
			continue
		}
		if err := s.removeSeg(seg); err != nil {
			return err
		}
		removed = true
	}
	clear(s.segs[len(keep):])
	s.segs = keep
	for boot := range s.floors {
		if !s.holds(boot) {
			delete(s.floors, boot)
		}
	}
	if !removed {
		return nil
	}
	if len(s.segs) == 0 {
		s.log.Info("outbox drained from disk", "dir", s.dir)
	}
	return syncDir(s.dir)
}

func (s *Spool) covered(seg *segment) bool {
	for boot, seq := range seg.live {
		if seq > s.floors[boot] {
			return false
		}
	}
	return true
}

func (s *Spool) holds(boot string) bool {
	for _, seg := range s.segs {
		if _, ok := seg.live[boot]; ok {
			return true
		}
	}
	return false
}

func (s *Spool) removeSeg(seg *segment) error {
	if s.active != nil && seg == s.segs[len(s.segs)-1] {
		s.active.Close() //nolint:errcheck // read-only from here on: it is being deleted
		s.active = nil
	}
	if err := os.Remove(filepath.Join(s.dir, segName(seg.id))); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	s.stats.Bytes -= seg.size
	return nil
}

// putState replaces the state file with the floors and r.
func (s *Spool) putState(r *Resume) error {
	if err := s.mkdir(); err != nil {
		return err
	}
	b, err := json.Marshal(state{V: 1, Floors: maps.Clone(s.floors), Resume: r})
	if err != nil {
		return err
	}
	path := filepath.Join(s.dir, stateName)
	if err := writeFileSync(path+".tmp", b); err != nil {
		return err
	}
	if err := os.Rename(path+".tmp", path); err != nil {
		return err
	}
	if err := syncDir(s.dir); err != nil {
		return err
	}
	s.stateOnDisk, s.diskResume, s.dirty = true, r, false
	s.stats.Writes++
	s.stats.WrittenBytes += uint64(len(b))
	return nil
}

func (s *Spool) removeState() error {
	if err := os.Remove(filepath.Join(s.dir, stateName)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	s.stateOnDisk, s.diskResume = false, nil
	return syncDir(s.dir)
}

// Stats returns the spool's figures.
func (s *Spool) Stats() Stats {
	st := s.stats
	st.Segments = len(s.segs)
	return st
}

// Dir returns the spool's directory.
func (s *Spool) Dir() string { return s.dir }

// Close closes the segment being appended to. It writes nothing.
func (s *Spool) Close() error {
	if s.active == nil {
		return nil
	}
	err := s.active.Close()
	s.active = nil
	if err != nil {
		return fmt.Errorf("close spool: %w", err)
	}
	return nil
}

// mkdir creates the spool directory on first use and makes its entry
// durable.
func (s *Spool) mkdir() error {
	if s.dirExists {
		return nil
	}
	if err := os.MkdirAll(s.dir, 0o700); err != nil {
		return err
	}
	if err := syncDir(filepath.Dir(s.dir)); err != nil {
		return err
	}
	s.dirExists = true
	return nil
}

func writeFileSync(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

func truncate(path string, size int64) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	err = f.Truncate(size)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// syncDir makes the creation, rename or removal of entries in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
