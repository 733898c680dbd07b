package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// binaries are the fleetwatch programs the scene runs.
var binaries = []string{"fleetwatch-agent", "fleetwatch-hub", "fleetwatch-sim"}

// moduleRoot returns the directory of go.mod, where builds run.
func moduleRoot(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("find module root: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", fmt.Errorf("find module root: run from inside the fleetwatch module")
	}
	return filepath.Dir(mod), nil
}

// build compiles the fleetwatch binaries from the tree into dir, with the
// flags `make build` uses.
func build(ctx context.Context, root, dir string) error {
	args := []string{"build", "-trimpath", "-ldflags", "-s -w -X main.Version=bench", "-o", dir + "/"}
	args = append(args, "./agent/cmd/fleetwatch-agent", "./hub/cmd/fleetwatch-hub", "./agent/cmd/fleetwatch-sim")
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("build: %w: %s", err, tail(string(out), 800))
	}
	return nil
}

// armSize builds the agent as it ships to a 64-bit Pi (stripped) and
// returns its size in bytes.
func armSize(ctx context.Context, root, dir string) (int64, error) {
	out := filepath.Join(dir, "fleetwatch-agent-linux-arm64")
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags", "-s -w", "-o", out, "./agent/cmd/fleetwatch-agent")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=arm64")
	if b, err := cmd.CombinedOutput(); err != nil {
		return 0, fmt.Errorf("build arm64 agent: %w: %s", err, tail(string(b), 800))
	}
	st, err := os.Stat(out)
	if err != nil {
		return 0, fmt.Errorf("build arm64 agent: %w", err)
	}
	return st.Size(), nil
}

// mosquittoConf is sized like the tests' broker and configs/mosquitto.conf:
// an in-flight window for the hub's commit-then-ack, a deep queue.
// noDelay adds set_tcp_nodelay (mosquitto's default is off: Nagle on).
func mosquittoConf(port int, dir string, noDelay bool) string {
	extra := ""
	if noDelay {
		extra = "set_tcp_nodelay true\n"
	}
	return extra + fmt.Sprintf(`listener %d 127.0.0.1
allow_anonymous true
user root
persistence true
persistence_location %s/
autosave_interval 60
max_inflight_messages 10000
max_queued_messages 200000
max_queued_bytes 0
max_packet_size 524288
log_dest stderr
log_type error
log_type warning
`, port, dir)
}

// startMosquitto runs mosquitto on a free loopback port.
func (s *Scene) startMosquitto(ctx context.Context, bin string, noDelay bool) (*Proc, string, error) {
	port, err := freePort()
	if err != nil {
		return nil, "", err
	}
	dir := filepath.Join(s.Dir, "mosquitto")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, "", fmt.Errorf("start mosquitto: %w", err)
	}
	conf := filepath.Join(dir, "mosquitto.conf")
	if err := os.WriteFile(conf, []byte(mosquittoConf(port, dir, noDelay)), 0o644); err != nil {
		return nil, "", fmt.Errorf("start mosquitto: %w", err)
	}
	p, err := s.Start("mosquitto", bin, "-c", conf)
	if err != nil {
		return nil, "", err
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	if err := waitTCP(ctx, p, addr, 10*time.Second); err != nil {
		return nil, "", err
	}
	return p, "tcp://" + addr, nil
}

// mosquittoVersion asks the binary; it prints its version with -h.
func mosquittoVersion(bin string) string {
	out, _ := exec.Command(bin, "-h").CombinedOutput() // exits non-zero after the help
	for _, line := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(line, "mosquitto version") {
			return strings.TrimSpace(strings.TrimPrefix(line, "mosquitto version"))
		}
	}
	return "unknown"
}

// Hub is the running hub: its process, its pid (strace's child when
// traced), and where it serves.
type Hub struct {
	Proc      *Proc
	PID       int
	URL       string // http://127.0.0.1:port
	DB        string // fleetwatch.db path
	StraceLog string // "" when not traced
}

// straceUsable reports whether strace can trace only fsyncs cheaply here:
// --seccomp-bpf stops the hub on those calls alone, not on every syscall.
func straceUsable(ctx context.Context, dir string) string {
	bin := lookBin("strace")
	if bin == "" {
		return ""
	}
	cmd := exec.CommandContext(ctx, bin, "-f", "--seccomp-bpf", "-qq", "-e", "trace=fsync,fdatasync", "-o", filepath.Join(dir, "strace-probe.log"), "true")
	if err := cmd.Run(); err != nil {
		return ""
	}
	return bin
}

// startHub runs the hub built from the tree against broker, under strace
// when traceBin is set.
func (s *Scene) startHub(ctx context.Context, broker, traceBin string) (*Hub, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	data := filepath.Join(s.Dir, "hub-data")
	h := &Hub{URL: fmt.Sprintf("http://127.0.0.1:%d", port), DB: filepath.Join(data, "fleetwatch.db")}
	// Every client of the scene connects from 127.0.0.1: lift the per-address limit.
	args := []string{"--broker", broker, "--http", fmt.Sprintf("127.0.0.1:%d", port), "--data", data, "--log-level", "warn",
		"--max-connections", "100000", "--max-connections-per-ip", "100000"}
	bin := filepath.Join(s.Bin, "fleetwatch-hub")
	if traceBin != "" {
		h.StraceLog = filepath.Join(s.Dir, "hub-fsync.strace")
		self, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("start hub: %w", err)
		}
		args = append([]string{"-f", "--seccomp-bpf", "-qq", "-ttt", "-e", "trace=fsync,fdatasync", "-e", "signal=none", "-o", h.StraceLog,
			self, execDying, bin}, args...)
		bin = traceBin
	}
	h.Proc, err = s.Start("hub", bin, args...)
	if err != nil {
		return nil, err
	}
	h.PID = h.Proc.PID
	if traceBin != "" {
		if h.PID, err = childNamed(ctx, h.Proc.PID, "fleetwatch-hub", 10*time.Second); err != nil {
			return nil, fmt.Errorf("start hub under strace: %w", err)
		}
	}
	if err := waitHealthy(ctx, h.Proc, h.URL+"/healthz", 30*time.Second); err != nil {
		return nil, err
	}
	return h, nil
}

// Stop stops the hub gracefully. Under strace the hub is signalled alone
// first: a strace that left before it would turn its last fdatasyncs into
// ENOSYS (the seccomp filter stays), so strace is left to exit with it.
func (h *Hub) Stop() error {
	if h.PID != h.Proc.PID {
		syscall.Kill(h.PID, syscall.SIGTERM) //nolint:errcheck // gone is fine
		deadline := time.Now().Add(15 * time.Second)
		for pidAlive(h.PID) && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
	}
	return h.Proc.Stop(15 * time.Second)
}

// goVersion is the toolchain that built the scene.
func goVersion(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOVERSION").Output()
	if err != nil {
		return "", fmt.Errorf("go version: %w", err)
	}
	return strings.TrimSpace(string(out)), nil
}

// explain turns a failed look at the hub's /proc into why it is gone.
func (h *Hub) explain(err error) error {
	if pidAlive(h.PID) {
		return err
	}
	select {
	case <-h.Proc.Exited():
		return fmt.Errorf("the hub exited (%v): %s", h.Proc.err, h.Proc.Tail(500))
	default:
		return fmt.Errorf("the hub (pid %d) is gone while %s (pid %d) runs: %w", h.PID, h.Proc.Name, h.Proc.PID, err)
	}
}
