package main_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/fleetwatch/fleetwatch/agent/mqttpub/mosquittotest"
	"github.com/fleetwatch/fleetwatch/agent/telemetry"
	"github.com/fleetwatch/fleetwatch/hub"
)

// The disk-fault tests run the real hub binary against a real mosquitto on
// a small file system mounted for the test, break the file system under the
// running hub, and check the promise of hub.Ingester.commit: a full or
// read-only disk stops acks (the broker and the agents keep the readings)
// but crashes nothing and loses nothing, /healthz says the hub is not ready
// while commits fail, and the hub catches up once the disk is usable again.
//
// They mount file systems, so they need root (CAP_SYS_ADMIN). Without it
// they fail saying how to run them, or skip loudly with
// FLEETWATCH_SKIP_PRIVILEGED=1.

const (
	// faultCommitInterval is the hub's --commit-interval in these tests.
	faultCommitInterval = 50 * time.Millisecond
	// faultPublishEvery paces the test device: 50 readings/s.
	faultPublishEvery = 20 * time.Millisecond
	// The fault is held, while the device keeps publishing and acks must
	// not move, for at least faultStallWindow (40 commit intervals) and
	// until the hub retried faultStallRetries more times and the device
	// published faultStallReadings more readings: a loaded machine only
	// makes the window longer, up to faultStallMax.
	faultStallWindow   = 2 * time.Second
	faultStallRetries  = 3
	faultStallReadings = 20
	faultStallMax      = 10 * time.Second
)

// TestHub_DiskFull fills the hub's file system (a 24 MiB tmpfs) while a
// device publishes, then frees the space again without touching the hub.
func TestHub_DiskFull(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	faultMount(t, dir, "-t", "tmpfs", "-o", "size=24m,mode=0700", "tmpfs", dir)
	r := faultStart(t, "fault-full", filepath.Join(dir, "data"))
	r.waitAcked(20)

	filler := filepath.Join(dir, "filler")
	faultFill(t, filler)
	st := r.expectStall("disk full", "no space left on device")

	if err := os.Remove(filler); err != nil {
		t.Fatalf("free the disk: %v", err)
	}
	r.expectRecovery(st, time.Now())
	r.finish()
}

// TestHub_ReadOnlyDisk turns the hub's file system read-only under the
// running hub the way the kernel does on a real disk error: an ext4 image
// on a loop device, mounted errors=remount-ro, and an error injected
// through /sys/fs/ext4/<dev>/trigger_fs_error. Every write to the hub's
// open store file then fails with EROFS.
//
// A plain `mount -o remount,ro` cannot stand in for this: Linux refuses it
// with EBUSY while any file on the mount is open for writing, and the hub
// keeps its store open read-write. And a file system the kernel forced
// read-only cannot be made writable again while a writer holds a file open
// (checked on Linux 6.18: remount,rw leaves emergency_ro set, remount,ro
// fails, so only an unmount clears it).
// So recovery is the operator's: stop the hub (it must stop cleanly,
// holding its acks), unmount, fsck, mount, start the hub; the broker
// redelivers what the hub never acked and nothing is lost or doubled.
func TestHub_ReadOnlyDisk(t *testing.T) {
	t.Parallel()
	for _, tool := range []string{"mkfs.ext4", "e2fsck"} {
		if _, err := exec.LookPath(tool); err != nil {
			faultNeedPrivilege(t, tool+" not found (install e2fsprogs)", err)
		}
	}
	img := filepath.Join(t.TempDir(), "data.ext4")
	if err := os.WriteFile(img, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, 32<<20); err != nil {
		t.Fatal(err)
	}
	if out, err := faultCmd("mkfs.ext4", "-q", "-F", img); err != nil {
		t.Fatalf("mkfs.ext4: %v\n%s", err, out)
	}
	dir := t.TempDir()
	mountArgs := []string{"-t", "ext4", "-o", "loop,errors=remount-ro", img, dir}
	faultMount(t, dir, mountArgs...)
	trigger := faultExt4Trigger(t, dir)

	data := filepath.Join(dir, "data")
	r := faultStart(t, "fault-ro", data)
	r.waitAcked(20)

	if err := os.WriteFile(trigger, []byte("fleetwatch TestHub_ReadOnlyDisk"), 0o200); err != nil {
		t.Fatalf("inject an ext4 error through %s: %v", trigger, err)
	}
	if err := faultProbeWrite(dir); !errors.Is(err, syscall.EROFS) {
		t.Fatalf("after the injected error a write to %s gives %v, want EROFS", dir, err)
	}
	st := r.expectStall("read-only disk", "read-only file system")

	// The operator's recovery. The hub must stop within its shutdown
	// budget although its last commit keeps failing.
	stopped := time.Now()
	if !r.hub.signal(syscall.SIGTERM) {
		t.Fatal("hub did not stop on SIGTERM within 10s while its disk was read-only")
	}
	r.checkNoCrash()
	t.Logf("hub stopped %v after SIGTERM, exit code %d", time.Since(stopped).Round(time.Millisecond), r.hub.cmd.ProcessState.ExitCode())
	if out, err := faultCmd("umount", dir); err != nil {
		t.Fatalf("umount %s after the hub stopped: %v\n%s", dir, err, out)
	}
	// e2fsck exits 1 when it fixed something (the recorded error).
	if out, err := faultCmd("e2fsck", "-fy", img); err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() > 1 {
			t.Fatalf("e2fsck: %v\n%s", err, out)
		}
	}
	if out, err := faultCmd("mount", mountArgs...); err != nil {
		t.Fatalf("mount %s again: %v\n%s", dir, err, out)
	}
	restored := time.Now()
	r.startHub()
	r.expectRecovery(st, restored)
	r.finish()
}

// faultRig is one hub with its data on the file system under test, a
// mosquitto, and a test device publishing seq 1, 2, ... of one boot.
type faultRig struct {
	t       *testing.T
	device  string
	boot    string
	tsBase  int64
	base    string
	data    string
	hubArgs []string
	hub     *proc
	obs     *observer

	published atomic.Uint64
	stop      chan struct{}
	pubDone   chan struct{}
	pubMu     sync.Mutex
	pubErr    error
}

func faultStart(t *testing.T, device, data string) *faultRig {
	t.Helper()
	broker := mosquittotest.Start(t)
	httpAddr := freeAddr(t)
	r := &faultRig{
		t: t, device: device, boot: "fault-boot-1",
		tsBase:  time.Now().Add(-10 * time.Minute).UnixMilli(),
		base:    "http://" + httpAddr,
		data:    data,
		hubArgs: []string{"--broker", broker.URL(), "--http", httpAddr, "--data", data, "--commit-interval", faultCommitInterval.String()},
		stop:    make(chan struct{}),
		pubDone: make(chan struct{}),
	}
	r.startHub()
	r.obs = observe(t, broker.URL(), "fleetwatch/"+device+"/ack")
	go r.publish()
	t.Cleanup(r.stopPublishing)
	return r
}

func (r *faultRig) startHub() {
	r.t.Helper()
	r.hub = startProc(r.t, "fleetwatch-hub", r.hubArgs...)
	waitHealthy(r.t, r.base)
}

func (r *faultRig) ts(seq uint64) int64 { return r.tsBase + int64(seq)*10 }

// publish sends one reading per faultPublishEvery at QoS 1 (mosquitto
// PUBACKs it whatever the hub does) until stopPublishing.
func (r *faultRig) publish() {
	defer close(r.pubDone)
	tick := time.NewTicker(faultPublishEvery)
	defer tick.Stop()
	topic := "fleetwatch/" + r.device + "/telemetry"
	for seq := uint64(1); ; seq++ {
		env := telemetry.Envelope{V: telemetry.Version, Device: r.device, Boot: r.boot, Readings: []telemetry.Reading{
			{Seq: seq, TS: r.ts(seq), Metrics: telemetry.Metrics{"fault.seq": float64(seq)}},
		}}
		b, err := env.Encode()
		if err == nil {
			tok := r.obs.client.Publish(topic, 1, false, b)
			if !tok.WaitTimeout(5 * time.Second) {
				err = fmt.Errorf("publish seq %d: no PUBACK within 5s", seq)
			} else {
				err = tok.Error()
			}
		}
		if err != nil {
			r.pubMu.Lock()
			r.pubErr = err
			r.pubMu.Unlock()
			return
		}
		r.published.Store(seq)
		select {
		case <-r.stop:
			return
		case <-tick.C:
		}
	}
}

// stopPublishing stops the device; r.published is then its last seq.
func (r *faultRig) stopPublishing() {
	select {
	case <-r.stop:
	default:
		close(r.stop)
	}
	<-r.pubDone
}

func (r *faultRig) checkPublishing() {
	r.t.Helper()
	r.pubMu.Lock()
	defer r.pubMu.Unlock()
	if r.pubErr != nil {
		r.t.Fatalf("test device: %v", r.pubErr)
	}
}

func (r *faultRig) acked() uint64 { return lastAck(r.obs, r.device).Seq }

func (r *faultRig) waitAcked(seq uint64) {
	r.t.Helper()
	eventually(r.t, 10*time.Second, fmt.Sprintf("ack ≥ %d", seq), func() error {
		r.checkPublishing()
		if a := lastAck(r.obs, r.device); a.Seq < seq || a.Boot != r.boot {
			return fmt.Errorf("last ack %+v", a)
		}
		return nil
	})
}

// checkNoCrash fails if the hub's output shows a Go panic or fatal signal.
func (r *faultRig) checkNoCrash() {
	r.t.Helper()
	out := r.hub.output()
	for _, bad := range []string{"panic:", "fatal error:", "SIGBUS", "SIGSEGV", "goroutine 1 ["} {
		if strings.Contains(out, bad) {
			r.t.Fatalf("hub output contains %q: it crashed", bad)
		}
	}
}

// checkAlive fails if the hub exited or crashed.
func (r *faultRig) checkAlive() {
	r.t.Helper()
	select {
	case <-r.hub.done:
		r.t.Fatalf("hub exited (%v) during the disk fault", r.hub.cmd.ProcessState)
	default:
	}
	r.checkNoCrash()
}

// faultStall is what expectStall saw.
type faultStall struct {
	injected  time.Time // fault injected
	firstErr  time.Time // first commit error seen at /metrics
	ackFrozen uint64    // the ack that stopped advancing
}

// expectStall checks the hub while the fault lasts: commit errors are
// counted, /healthz answers 503, acks stop although the device keeps
// publishing, reads still work, and the process stays up.
func (r *faultRig) expectStall(what, errText string) faultStall {
	r.t.Helper()
	// The fault was injected just before: the errors counter only moves
	// with it.
	st := faultStall{injected: time.Now()}
	// bbolt reuses the pages freed by earlier commits, so on a full disk
	// it fails only once a commit writes where the file never had data
	// (about 0.2 s at this rate): allow some commits.
	eventually(r.t, 5*time.Second, what+": commit errors counted", func() error {
		r.checkAlive()
		n, err := faultMetric(r.base, "fleetwatch_commit_errors_total")
		if err != nil {
			return err
		}
		if n == 0 {
			return fmt.Errorf("fleetwatch_commit_errors_total is 0")
		}
		return nil
	})
	st.firstErr = time.Now()
	r.t.Logf("%s: first commit error %v after the fault", what, st.firstErr.Sub(st.injected).Round(time.Millisecond))
	eventually(r.t, 2*time.Second, what+": /healthz 503", func() error {
		if code, _, err := getJSON(r.base+"/healthz", nil); err != nil || code != http.StatusServiceUnavailable {
			return fmt.Errorf("healthz %d %v", code, err)
		}
		if v, err := faultMetric(r.base, "fleetwatch_commit_failing"); err != nil || v != 1 {
			return fmt.Errorf("fleetwatch_commit_failing %v %v", v, err)
		}
		return nil
	})
	// The acks of the last good commits may still be on their way: wait
	// until the test has every ack the hub sent (one device, so all of
	// them).
	eventually(r.t, 5*time.Second, what+": acks sent before the fault arrive", func() error {
		sent, err := faultMetric(r.base, "fleetwatch_acks_sent_total")
		if err != nil {
			return err
		}
		if got := len(r.obs.messages("fleetwatch/" + r.device + "/ack")); float64(got) < sent {
			return fmt.Errorf("%d of %v acks arrived", got, sent)
		}
		return nil
	})
	st.ackFrozen = r.acked()
	errs0, err := faultMetric(r.base, "fleetwatch_commit_errors_total")
	if err != nil {
		r.t.Fatal(err)
	}
	pub0 := r.published.Load()
	start := time.Now()
	var pub1 uint64
	var errs1 float64
	for {
		r.checkAlive()
		r.checkPublishing()
		if a := r.acked(); a != st.ackFrozen {
			r.t.Fatalf("%s: ack moved from %d to %d while commits fail", what, st.ackFrozen, a)
		}
		pub1 = r.published.Load()
		if errs1, err = faultMetric(r.base, "fleetwatch_commit_errors_total"); err != nil {
			r.t.Fatal(err)
		}
		held := time.Since(start)
		if held >= faultStallWindow && errs1-errs0 >= faultStallRetries && pub1-pub0 >= faultStallReadings {
			break
		}
		if held > faultStallMax {
			r.t.Fatalf("%s: in %v the hub retried %v times (want ≥ %d, one per %v) and the device published %d readings (want ≥ %d)",
				what, held, errs1-errs0, faultStallRetries, hub.DefaultRetry, pub1-pub0, faultStallReadings)
		}
		time.Sleep(50 * time.Millisecond)
	}
	held := time.Since(start)
	if code, _, err := getJSON(r.base+"/healthz", nil); err != nil || code != http.StatusServiceUnavailable {
		r.t.Fatalf("%s: /healthz %d %v at the end of the fault, want 503", what, code, err)
	}
	// Reads keep working: everything acked before the fault is there.
	if pts, err := r.history(); err != nil {
		r.t.Fatalf("%s: history during the fault: %v", what, err)
	} else if uint64(len(pts)) < st.ackFrozen {
		r.t.Fatalf("%s: history during the fault has %d points, want ≥ %d (every acked reading)", what, len(pts), st.ackFrozen)
	}
	// The hub says why in its log.
	if out := r.hub.output(); !strings.Contains(out, "commit failed") || !strings.Contains(out, errText) {
		r.t.Fatalf("%s: the hub's log does not report the failing commit with %q", what, errText)
	}
	r.t.Logf("%s: ack frozen at %d while the device published seq %d..%d; %v commit errors in %v (%v in all)",
		what, st.ackFrozen, pub0, pub1, errs1-errs0, held.Round(time.Millisecond), errs1)
	return st
}

// expectRecovery checks that acks resume and /healthz is 200 again once
// the disk is usable again (at restored).
func (r *faultRig) expectRecovery(st faultStall, restored time.Time) {
	r.t.Helper()
	eventually(r.t, 10*time.Second, "acks resume", func() error {
		r.checkAlive()
		r.checkPublishing()
		if a := r.acked(); a <= st.ackFrozen {
			return fmt.Errorf("ack still %d", a)
		}
		return nil
	})
	resumed := time.Now()
	eventually(r.t, 5*time.Second, "/healthz 200 again", func() error {
		if code, _, err := getJSON(r.base+"/healthz", nil); err != nil || code != http.StatusOK {
			return fmt.Errorf("healthz %d %v", code, err)
		}
		if v, err := faultMetric(r.base, "fleetwatch_commit_failing"); err != nil || v != 0 {
			return fmt.Errorf("fleetwatch_commit_failing %v %v", v, err)
		}
		return nil
	})
	r.t.Logf("recovery: acks resumed %v after the disk was usable again; acks were held for %v (first commit error → first new ack)",
		resumed.Sub(restored).Round(time.Millisecond), resumed.Sub(st.firstErr).Round(time.Millisecond))
}

// finish lets the device publish a little more, stops it, and checks that
// every seq it published is acked and stored exactly once.
func (r *faultRig) finish() {
	r.t.Helper()
	more := r.published.Load() + 10
	eventually(r.t, 5*time.Second, "a few more readings", func() error {
		r.checkPublishing()
		if p := r.published.Load(); p < more {
			return fmt.Errorf("published %d", p)
		}
		return nil
	})
	r.stopPublishing()
	r.checkPublishing()
	n := r.published.Load()
	eventually(r.t, 10*time.Second, fmt.Sprintf("ack covers all %d readings", n), func() error {
		r.checkAlive()
		if a := r.acked(); a != n {
			return fmt.Errorf("last ack %d", a)
		}
		return nil
	})
	pts, err := r.history()
	if err != nil {
		r.t.Fatal(err)
	}
	if len(pts) != int(n) {
		r.t.Fatalf("history has %d points, want %d (seq 1..%d once each)", len(pts), n, n)
	}
	for i, p := range pts {
		seq := uint64(i + 1)
		if int64(p[0]) != r.ts(seq) || p[1] != float64(seq) {
			r.t.Fatalf("point %d is %v, want [%d, %d] (seq %d)", i, p, r.ts(seq), seq, seq)
		}
	}
	dups, _ := faultMetric(r.base, "fleetwatch_readings_duplicate_total")
	errs, _ := faultMetric(r.base, "fleetwatch_commit_errors_total")
	r.checkAlive()
	r.t.Logf("%s: all %d readings acked and stored once (this hub process: %v commit errors, %v duplicates skipped)", r.device, n, errs, dups)

	// The failed commits left the file consistent.
	if !r.hub.signal(syscall.SIGTERM) {
		r.t.Fatal("hub did not stop on SIGTERM within 10s")
	}
	r.checkNoCrash()
	if err := checkBolt(filepath.Join(r.data, "fleetwatch.db")); err != nil {
		r.t.Fatal(err)
	}
}

func (r *faultRig) history() ([][2]float64, error) {
	var h struct {
		Points [][2]float64 `json:"points"`
	}
	url := fmt.Sprintf("%s/api/v1/devices/%s/history?metric=fault.seq&from=%d&to=%d&points=100000",
		r.base, r.device, r.tsBase, time.Now().UnixMilli())
	code, _, err := getJSON(url, &h)
	if err != nil {
		return nil, err
	}
	if code != http.StatusOK {
		return nil, fmt.Errorf("GET %s: status %d", url, code)
	}
	return h.Points, nil
}

// faultMetric reads one unlabelled value from /metrics.
func faultMetric(base, name string) (float64, error) {
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			return strconv.ParseFloat(v, 64)
		}
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("/metrics has no %s", name)
}

// faultCmd runs a system tool with a deadline.
func faultCmd(name string, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return exec.CommandContext(ctx, name, args...).CombinedOutput()
}

// faultMount runs mount(8) with args and lazily unmounts dir at cleanup
// (after the processes using it, which were started later, are killed).
func faultMount(t *testing.T, dir string, args ...string) {
	t.Helper()
	if out, err := faultCmd("mount", args...); err != nil {
		faultNeedPrivilege(t, fmt.Sprintf("mount %s: %s", strings.Join(args, " "), strings.TrimSpace(string(out))), err)
	}
	t.Cleanup(func() {
		if out, err := faultCmd("umount", "-l", dir); err != nil && !strings.Contains(string(out), "not mounted") {
			t.Errorf("umount -l %s: %v\n%s", dir, err, out)
		}
	})
}

// faultNeedPrivilege fails (or, with FLEETWATCH_SKIP_PRIVILEGED=1, skips
// loudly) a test that cannot set up its file system.
func faultNeedPrivilege(t *testing.T, what string, err error) {
	t.Helper()
	msg := fmt.Sprintf("%s: %v\n%s mounts a small file system for the hub's data and needs root "+
		"(CAP_SYS_ADMIN, loop devices, util-linux mount, e2fsprogs). Run it as root, e.g.\n"+
		"\tsudo -E env PATH=$PATH go test -run 'TestHub_DiskFull|TestHub_ReadOnlyDisk' ./hub/cmd/fleetwatch-hub\n"+
		"or set FLEETWATCH_SKIP_PRIVILEGED=1 to skip it.", what, err, t.Name())
	if os.Getenv("FLEETWATCH_SKIP_PRIVILEGED") == "1" {
		t.Skip("!!! SKIPPED (FLEETWATCH_SKIP_PRIVILEGED=1): disk-full/read-only behaviour of the hub is NOT tested !!!\n" + msg)
	}
	t.Fatal(msg)
}

// faultExt4Trigger returns the trigger_fs_error file of the ext4 mounted
// at dir.
func faultExt4Trigger(t *testing.T, dir string) string {
	t.Helper()
	out, err := faultCmd("findmnt", "-n", "-o", "SOURCE", "--mountpoint", dir)
	if err != nil {
		t.Fatalf("findmnt %s: %v\n%s", dir, err, out)
	}
	p := filepath.Join("/sys/fs/ext4", filepath.Base(strings.TrimSpace(string(out))), "trigger_fs_error")
	if _, err := os.Stat(p); err != nil {
		faultNeedPrivilege(t, "this kernel's ext4 has no trigger_fs_error", err)
	}
	return p
}

// faultProbeWrite creates, writes and syncs a small file in dir.
func faultProbeWrite(dir string) error {
	f, err := os.CreateTemp(dir, "probe-")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	if _, err := f.Write([]byte("probe")); err != nil {
		return err
	}
	return f.Sync()
}

// faultFill writes path until the file system is full.
func faultFill(t *testing.T, path string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var n int64
	for _, size := range []int{1 << 20, 4096, 1} {
		buf := make([]byte, size)
		for {
			w, err := f.Write(buf)
			n += int64(w)
			if errors.Is(err, syscall.ENOSPC) {
				break
			}
			if err != nil {
				t.Fatalf("fill %s: %v", path, err)
			}
		}
	}
	var fs syscall.Statfs_t
	if err := syscall.Statfs(filepath.Dir(path), &fs); err != nil {
		t.Fatal(err)
	}
	if fs.Bavail != 0 {
		t.Fatalf("after %d bytes of filler the file system still has %d free blocks", n, fs.Bavail)
	}
	t.Logf("disk full: %d MiB of filler", n>>20)
}
