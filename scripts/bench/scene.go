package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Scene owns every process the harness starts: each runs in its own
// process group with its output in a log file under Dir, and Close stops
// them all, newest first (SIGTERM to the group, SIGKILL after a grace).
type Scene struct {
	Dir string // temp root: configs, data, logs, summaries
	Bin string // fleetwatch binaries
	Log *slog.Logger

	mu    sync.Mutex
	procs []*Proc
}

// Proc is one started process.
type Proc struct {
	Name    string
	PID     int
	LogPath string
	cmd     *exec.Cmd
	exited  chan struct{}
	err     error
}

// Start runs bin with args in its own process group.
func (s *Scene) Start(name, bin string, args ...string) (*Proc, error) {
	logPath := filepath.Join(s.Dir, name+".log")
	f, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	defer f.Close()
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Dir = s.Dir
	// Own group: a signal reaches the whole child tree (strace and the
	// hub under it). Pdeathsig: even a SIGKILLed harness leaves nothing.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := spawn(cmd); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &Proc{Name: name, PID: cmd.Process.Pid, LogPath: logPath, cmd: cmd, exited: make(chan struct{})}
	go func() { p.err = cmd.Wait(); close(p.exited) }()
	s.mu.Lock()
	s.procs = append(s.procs, p)
	s.mu.Unlock()
	s.Log.Debug("started", "proc", name, "pid", p.PID, "args", strings.Join(args, " "))
	return p, nil
}

// Exited is closed when the process has ended.
func (p *Proc) Exited() <-chan struct{} { return p.exited }

// Alive reports whether the process still runs.
func (p *Proc) Alive() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// Stop sends SIGTERM to the process group and SIGKILL after grace.
func (p *Proc) Stop(grace time.Duration) error {
	if !p.Alive() {
		return p.err
	}
	syscall.Kill(-p.PID, syscall.SIGTERM) //nolint:errcheck // already gone is fine
	select {
	case <-p.exited:
		return p.err
	case <-time.After(grace):
	}
	syscall.Kill(-p.PID, syscall.SIGKILL) //nolint:errcheck
	<-p.exited
	return fmt.Errorf("stop %s: killed after %s", p.Name, grace)
}

// Wait waits for the process to exit by itself, up to d.
func (p *Proc) Wait(d time.Duration) error {
	select {
	case <-p.exited:
		return p.err
	case <-time.After(d):
		return fmt.Errorf("wait %s: still running after %s", p.Name, d)
	}
}

// Tail returns the last n bytes of the process log, for error messages.
func (p *Proc) Tail(n int) string {
	b, _ := os.ReadFile(p.LogPath)
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return strings.TrimSpace(string(b))
}

// Close stops every process, newest first.
func (s *Scene) Close() {
	s.mu.Lock()
	procs := s.procs
	s.procs = nil
	s.mu.Unlock()
	for i := len(procs) - 1; i >= 0; i-- {
		if err := procs[i].Stop(10 * time.Second); err != nil && procs[i].Alive() {
			s.Log.Warn("stop", "proc", procs[i].Name, "err", err)
		}
	}
}

// spawnReqs feeds the spawner thread.
var spawnReqs = make(chan spawnReq)

type spawnReq struct {
	cmd  *exec.Cmd
	done chan error
}

// spawn starts cmd from one OS thread that never exits. Pdeathsig fires
// when the thread that forked the child ends, not the process: a child
// started from a thread the Go runtime later retires would be killed mid
// run (strace, and with it the traced hub).
func spawn(cmd *exec.Cmd) error {
	spawnOnce.Do(func() {
		go func() {
			runtime.LockOSThread() // never unlocked: the thread lives as long as the harness
			for r := range spawnReqs {
				r.done <- r.cmd.Start()
			}
		}()
	})
	r := spawnReq{cmd: cmd, done: make(chan error, 1)}
	spawnReqs <- r
	return <-r.done
}

var spawnOnce sync.Once

// freePort returns a free TCP port on 127.0.0.1.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// waitTCP waits until addr accepts connections or p exits.
func waitTCP(ctx context.Context, p *Proc, addr string, d time.Duration) error {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if !p.Alive() {
			return fmt.Errorf("%s exited at start: %s", p.Name, p.Tail(800))
		}
		if c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond); err == nil {
			c.Close()
			return nil
		}
		if err := sleep(ctx, 20*time.Millisecond); err != nil {
			return err
		}
	}
	return fmt.Errorf("%s did not listen on %s within %s", p.Name, addr, d)
}

// waitHealthy waits until GET url answers 200.
func waitHealthy(ctx context.Context, p *Proc, url string, d time.Duration) error {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if !p.Alive() {
			return fmt.Errorf("%s exited at start: %s", p.Name, p.Tail(800))
		}
		if resp, err := http.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if err := sleep(ctx, 50*time.Millisecond); err != nil {
			return err
		}
	}
	return fmt.Errorf("%s not healthy at %s within %s: %s", p.Name, url, d, p.Tail(800))
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// lookBin finds a program on PATH or in the sbin directories that a
// non-root PATH lacks.
func lookBin(name string) string {
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, dir := range []string{"/usr/sbin", "/usr/local/sbin", "/sbin", "/usr/bin"} {
		p := filepath.Join(dir, name)
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p
		}
	}
	return ""
}

// ensurePackage returns the path of bin, installing the Debian package pkg
// when it is missing, we are root, apt-get exists and install is allowed.
func ensurePackage(ctx context.Context, log *slog.Logger, bin, pkg string, install bool) (string, error) {
	if p := lookBin(bin); p != "" {
		return p, nil
	}
	switch {
	case !install:
		return "", fmt.Errorf("%s is not installed (install: apt-get install -y %s)", bin, pkg)
	case os.Geteuid() != 0 || lookBin("apt-get") == "":
		return "", fmt.Errorf("%s is not installed and this is not root with apt-get: run `sudo apt-get install -y %s`", bin, pkg)
	}
	log.Info("installing with apt-get", "package", pkg)
	apt := func(args ...string) error {
		cmd := exec.CommandContext(ctx, "apt-get", args...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("apt-get %s: %w: %s", strings.Join(args, " "), err, tail(string(out), 400))
		}
		return nil
	}
	if err := apt("install", "-y", "-qq", "--no-install-recommends", pkg); err != nil {
		// A stale or missing package list is the usual cause.
		if err := apt("update", "-qq"); err != nil {
			return "", err
		}
		if err := apt("install", "-y", "-qq", "--no-install-recommends", pkg); err != nil {
			return "", err
		}
	}
	if p := lookBin(bin); p != "" {
		return p, nil
	}
	return "", fmt.Errorf("%s still missing after installing %s", bin, pkg)
}

func tail(s string, n int) string {
	s = strings.TrimSpace(s)
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// childNamed returns the child of pid running a program called name:
// the hub under strace. strace forks probes of its own first, and the
// tracee is strace until it execs, so the name is what tells.
func childNamed(ctx context.Context, pid int, name string, d time.Duration) (int, error) {
	path := fmt.Sprintf("/proc/%d/task/%d/children", pid, pid)
	comm := name[:min(len(name), 15)] // the kernel keeps 15 bytes
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		b, err := os.ReadFile(path)
		if err != nil {
			return 0, fmt.Errorf("child of %d: %w", pid, err)
		}
		for _, f := range strings.Fields(string(b)) {
			c, err := os.ReadFile("/proc/" + f + "/comm")
			if err == nil && strings.TrimSpace(string(c)) == comm {
				return strconv.Atoi(f)
			}
		}
		if err := sleep(ctx, 10*time.Millisecond); err != nil {
			return 0, err
		}
	}
	return 0, errors.New("no " + name + " under pid " + strconv.Itoa(pid))
}

// execDying is the hidden first argument that makes this program a shim:
// the hub runs under strace, so it is strace's child, and a SIGKILLed
// harness takes strace down by Pdeathsig but would leave the hub running.
// The shim sets Pdeathsig on itself (it survives exec) and execs the hub.
const execDying = "__exec-dying-with-parent"

func execDyingWithParent(argv []string) {
	if _, _, errno := syscall.RawSyscall(syscall.SYS_PRCTL, syscall.PR_SET_PDEATHSIG, uintptr(syscall.SIGKILL), 0); errno != 0 {
		fmt.Fprintln(os.Stderr, "fleetwatch-bench: prctl:", errno)
		os.Exit(1)
	}
	err := syscall.Exec(argv[0], argv, os.Environ())
	fmt.Fprintln(os.Stderr, "fleetwatch-bench: exec:", err)
	os.Exit(1)
}
