// Package installtest runs scripts/install-agent.sh for real, into temporary
// root filesystems, and checks the systemd units with systemd-analyze where
// it works.
package installtest

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

const (
	script = "../install-agent.sh"
	units  = "../../configs/systemd"
)

var agentBin struct {
	path string
	err  error
}

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "fleetwatch-installtest-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	agentBin.path = filepath.Join(dir, "fleetwatch-agent")
	cmd := exec.Command("go", "build", "-o", agentBin.path, "github.com/fleetwatch/fleetwatch/agent/cmd/fleetwatch-agent")
	cmd.Stderr = os.Stderr
	agentBin.err = cmd.Run()
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func binary(t *testing.T) string {
	t.Helper()
	if agentBin.err != nil {
		t.Fatalf("build fleetwatch-agent: %v", agentBin.err)
	}
	return agentBin.path
}

// newRoot returns an empty root filesystem with the account files that
// useradd --prefix edits.
func newRoot(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"passwd", "group", "shadow", "gshadow"} {
		if err := os.WriteFile(filepath.Join(root, "etc", f), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

type result struct {
	code           int
	stdout, stderr string
}

func run(t *testing.T, args ...string) result {
	t.Helper()
	cmd := exec.Command("bash", append([]string{script}, args...)...)
	// The script must not pick up a password from the test's environment.
	cmd.Env = append(os.Environ(), "FLEETWATCH_MQTT_PASSWORD=")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := result{stdout: out.String(), stderr: errb.String()}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	case err != nil:
		t.Fatalf("run %s: %v", script, err)
	}
	return r
}

func mustRun(t *testing.T, args ...string) result {
	t.Helper()
	r := run(t, args...)
	if r.code != 0 {
		t.Fatalf("install-agent.sh %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r
}

// snapshot describes every file under root: type, mode, owner, size,
// mtime and content hash (or link target), to prove a re-run touched
// nothing.
func snapshot(t *testing.T, root string) map[string]string {
	t.Helper()
	snap := map[string]string{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := os.Lstat(path)
		if err != nil {
			return err
		}
		st := fi.Sys().(*syscall.Stat_t)
		desc := fmt.Sprintf("%v %d:%d", fi.Mode(), st.Uid, st.Gid)
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(path)
			if err != nil {
				return err
			}
			desc += " -> " + target
		case fi.Mode().IsRegular():
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			sum := sha256.Sum256(b)
			desc += fmt.Sprintf(" %d %d %s", fi.Size(), fi.ModTime().UnixNano(), hex.EncodeToString(sum[:8]))
		}
		snap[strings.TrimPrefix(path, root)] = desc
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return snap
}

// wantFile checks mode, owner and (when content is not nil) content.
func wantFile(t *testing.T, path string, mode fs.FileMode, uid, gid int, content []byte) {
	t.Helper()
	fi, err := os.Lstat(path)
	if err != nil {
		t.Errorf("%v", err)
		return
	}
	st := fi.Sys().(*syscall.Stat_t)
	if fi.Mode().Perm() != mode || int(st.Uid) != uid || int(st.Gid) != gid {
		t.Errorf("%s: mode %v owner %d:%d, want %v %d:%d", path, fi.Mode().Perm(), st.Uid, st.Gid, mode, uid, gid)
	}
	if content != nil {
		if got, _ := os.ReadFile(path); !bytes.Equal(got, content) {
			t.Errorf("%s: content differs from its source", path)
		}
	}
}

func wantGone(t *testing.T, paths ...string) {
	t.Helper()
	for _, p := range paths {
		if _, err := os.Lstat(p); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s still exists (err %v)", p, err)
		}
	}
}

// account returns the passwd or group line of name in root, or "".
func account(t *testing.T, root, file, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, "etc", file))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, name+":") {
			return line
		}
	}
	return ""
}

func TestInstallUpgradeUninstall(t *testing.T) {
	bin := binary(t)
	root := newRoot(t)
	pwFile := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pwFile, []byte("s3c$ret \"x\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	argsWith := func(interval string) []string {
		return []string{"--root", root, "--broker", "tcp://hub.local:1883", "--device", "pi-test",
			"--username", "agent", "--password-file", pwFile, "--interval", interval,
			"--tag", "site=lab", "--tag", "room=bench 2", "--binary", bin}
	}
	args := argsWith("2s")
	first := mustRun(t, args...)

	// Ownership: root with the service group when run as root (CI), the
	// caller otherwise (the script cannot create users or chown then).
	uid, gid, svcGID := 0, 0, 0
	if os.Geteuid() == 0 {
		line := account(t, root, "group", "fleetwatch")
		if line == "" {
			t.Fatalf("no fleetwatch group in %s/etc/group", root)
		}
		svcGID, _ = strconv.Atoi(strings.Split(line, ":")[2])
		pw := account(t, root, "passwd", "fleetwatch")
		if f := strings.Split(pw, ":"); len(f) != 7 || f[5] != "/nonexistent" || !strings.HasSuffix(f[6], "nologin") {
			t.Errorf("fleetwatch account %q: want no home and a nologin shell", pw)
		}
	} else {
		uid, gid = os.Getuid(), os.Getgid()
		svcGID = gid
	}

	etc := filepath.Join(root, "etc/fleetwatch")
	binData, _ := os.ReadFile(bin)
	unitData, err := os.ReadFile(filepath.Join(units, "fleetwatch-agent.service"))
	if err != nil {
		t.Fatal(err)
	}
	wantFile(t, etc, 0o755, uid, gid, nil)
	wantFile(t, filepath.Join(etc, "agent.yaml"), 0o640, uid, svcGID, nil)
	wantFile(t, filepath.Join(etc, "agent.env"), 0o600, uid, gid, []byte(
		"# Secrets for fleetwatch-agent.service, read by systemd as root.\nFLEETWATCH_MQTT_PASSWORD='s3c$ret \"x\"'\n"))
	wantFile(t, filepath.Join(root, "usr/local/bin/fleetwatch-agent"), 0o755, uid, gid, binData)
	wantFile(t, filepath.Join(root, "etc/systemd/system/fleetwatch-agent.service"), 0o644, uid, gid, unitData)
	wants := filepath.Join(root, "etc/systemd/system/multi-user.target.wants/fleetwatch-agent.service")
	if target, err := os.Readlink(wants); err != nil || target != "/etc/systemd/system/fleetwatch-agent.service" {
		t.Errorf("not enabled: %s -> %q (%v)", wants, target, err)
	}
	yml, _ := os.ReadFile(filepath.Join(etc, "agent.yaml"))
	for _, want := range []string{`broker: "tcp://hub.local:1883"`, `device: "pi-test"`, "interval: 2s",
		`username: "agent"`, "tags:\n  site: \"lab\"\n  room: \"bench 2\"\n"} {
		if !bytes.Contains(yml, []byte(want)) {
			t.Errorf("agent.yaml lacks %q:\n%s", want, yml)
		}
	}
	if bytes.Contains(yml, []byte("s3c")) {
		t.Error("agent.yaml holds the password; it belongs in agent.env only")
	}

	t.Run("the agent accepts the config", func(t *testing.T) {
		out, err := exec.Command(bin, "--config", filepath.Join(etc, "agent.yaml"), "--once").Output()
		if err != nil {
			t.Fatalf("fleetwatch-agent --config agent.yaml --once: %v", err)
		}
		var r struct {
			Device  string             `json:"device"`
			Metrics map[string]float64 `json:"metrics"`
		}
		if err := json.Unmarshal(out, &r); err != nil || r.Device != "pi-test" || len(r.Metrics) == 0 {
			t.Errorf("reading %s (%v): want device pi-test and metrics", out, err)
		}
	})

	t.Run("a second run changes nothing", func(t *testing.T) {
		before := snapshot(t, root)
		r := mustRun(t, args...)
		after := snapshot(t, root)
		for p, d := range before {
			if after[p] != d {
				t.Errorf("%s changed:\n  %s\n  %s", p, d, after[p])
			}
		}
		if len(after) != len(before) {
			t.Errorf("%d files before, %d after", len(before), len(after))
		}
		if strings.Contains(r.stdout, "installed /") {
			t.Errorf("second run reports changes:\n%s", r.stdout)
		}
		if !strings.Contains(first.stdout, "installed /etc/fleetwatch/agent.yaml") {
			t.Errorf("first run did not report its changes:\n%s", first.stdout)
		}
	})

	t.Run("a changed value rewrites the config and keeps the old one", func(t *testing.T) {
		mustRun(t, argsWith("3s")...)
		if y, _ := os.ReadFile(filepath.Join(etc, "agent.yaml")); !bytes.Contains(y, []byte("interval: 3s")) {
			t.Errorf("agent.yaml not rewritten:\n%s", y)
		}
		if bak, _ := os.ReadFile(filepath.Join(etc, "agent.yaml.bak")); !bytes.Equal(bak, yml) {
			t.Errorf("agent.yaml.bak = %q, want the previous config", bak)
		}
		wantFile(t, filepath.Join(etc, "agent.yaml.bak"), 0o640, uid, svcGID, nil)
	})

	t.Run("without --broker the config is kept", func(t *testing.T) {
		before, _ := os.ReadFile(filepath.Join(etc, "agent.yaml"))
		mustRun(t, "--root", root, "--binary", bin)
		if after, _ := os.ReadFile(filepath.Join(etc, "agent.yaml")); !bytes.Equal(before, after) {
			t.Error("agent.yaml changed on a binary-only run")
		}
		if r := run(t, "--root", root, "--device", "other"); r.code == 0 || !strings.Contains(r.stderr, "need --broker") {
			t.Errorf("--device without --broker: exit %d, %q", r.code, r.stderr)
		}
	})

	t.Run("uninstall keeps config and state", func(t *testing.T) {
		state := filepath.Join(root, "var/lib/fleetwatch-agent")
		if err := os.MkdirAll(state, 0o700); err != nil {
			t.Fatal(err)
		}
		mustRun(t, "--root", root, "--uninstall")
		wantGone(t, wants, filepath.Join(root, "etc/systemd/system/fleetwatch-agent.service"),
			filepath.Join(root, "usr/local/bin/fleetwatch-agent"))
		for _, p := range []string{filepath.Join(etc, "agent.yaml"), filepath.Join(etc, "agent.env"), state} {
			if _, err := os.Stat(p); err != nil {
				t.Errorf("uninstall removed %s: %v", p, err)
			}
		}
		mustRun(t, "--root", root, "--uninstall") // again: nothing left to do, still fine
	})

	t.Run("purge removes config, state and user", func(t *testing.T) {
		mustRun(t, "--root", root, "--uninstall", "--purge")
		wantGone(t, etc, filepath.Join(root, "var/lib/fleetwatch-agent"))
		if os.Geteuid() == 0 && account(t, root, "passwd", "fleetwatch") != "" {
			t.Error("user fleetwatch still in etc/passwd")
		}
	})
}

func TestInstallRejects(t *testing.T) {
	bin := binary(t)
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no scheme", []string{"--broker", "hub.local:1883"}, "is not a broker URL"},
		{"http", []string{"--broker", "http://hub.local"}, "is not a broker URL"},
		{"credentials in URL", []string{"--broker", "tcp://agent:pw@hub:1883"}, "not in the URL"},
		{"port out of range", []string{"--broker", "tcp://hub:99999"}, "port 99999"},
		{"space in URL", []string{"--broker", "tcp://hub local:1883"}, "is not a broker URL"},
		{"no broker on first install", []string{"--device", "pi"}, "--broker is required"},
		{"bad device", []string{"--broker", "tcp://hub:1883", "--device", "-pi"}, "--device '-pi'"},
		{"device with space", []string{"--broker", "tcp://hub:1883", "--device", "pi kitchen"}, "--device"},
		{"long device", []string{"--broker", "tcp://hub:1883", "--device", strings.Repeat("a", 65)}, "--device"},
		{"bad interval", []string{"--broker", "tcp://hub:1883", "--interval", "5"}, "--interval '5'"},
		{"bad tag", []string{"--broker", "tcp://hub:1883", "--tag", "Site=home"}, "key must be"},
		{"tag without value", []string{"--broker", "tcp://hub:1883", "--tag", "site"}, "KEY=VALUE"},
		{"tag twice", []string{"--broker", "tcp://hub:1883", "--tag", "a=1", "--tag", "a=2"}, "given twice"},
		{"quote in password", []string{"--broker", "tcp://hub:1883", "--password", "it's"}, "single quote"},
		{"both passwords", []string{"--broker", "tcp://hub:1883", "--password", "a", "--password-file", "/dev/null"}, "not both"},
		{"purge alone", []string{"--broker", "tcp://hub:1883", "--purge"}, "--purge goes with --uninstall"},
		{"unknown flag", []string{"--brokr", "tcp://hub:1883"}, "unknown argument"},
		{"missing binary", []string{"--broker", "tcp://hub:1883", "--binary", "/nonexistent/fleetwatch-agent"}, "no such file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := newRoot(t)
			args := append([]string{"--root", root}, tt.args...)
			if !strings.Contains(strings.Join(tt.args, " "), "--binary") {
				args = append(args, "--binary", bin)
			}
			r := run(t, args...)
			if r.code == 0 || !strings.Contains(r.stderr, tt.want) {
				t.Errorf("exit %d, stderr %q; want a failure saying %q", r.code, r.stderr, tt.want)
			}
			if _, err := os.Stat(filepath.Join(root, "etc/fleetwatch")); err == nil {
				t.Error("a rejected install left /etc/fleetwatch behind")
			}
		})
	}
	t.Run("not root without --root", func(t *testing.T) {
		if os.Geteuid() == 0 {
			t.Skip("running as root")
		}
		if r := run(t, "--broker", "tcp://hub:1883"); r.code == 0 || !strings.Contains(r.stderr, "run as root") {
			t.Errorf("exit %d, %q", r.code, r.stderr)
		}
	})
}

// analyzeRoot returns a root holding the host's systemd units, which
// `systemd-analyze verify --root` needs to resolve sysinit.target,
// network-online.target and the rest; it skips when that cannot work here.
func analyzeRoot(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		t.Skip("systemd-analyze not installed (Debian package systemd)")
	}
	var sys string
	for _, d := range []string{"/usr/lib/systemd/system", "/lib/systemd/system"} {
		if _, err := os.Stat(filepath.Join(d, "sysinit.target")); err == nil {
			sys = d
			break
		}
	}
	if sys == "" {
		t.Skip("no systemd unit directory with sysinit.target on this host")
	}
	root := newRoot(t)
	dst := filepath.Join(root, "usr/lib/systemd")
	if err := os.MkdirAll(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("cp", "-a", sys, dst+"/").CombinedOutput(); err != nil {
		t.Fatalf("copy %s: %v\n%s", sys, err, out)
	}
	return root
}

// verify runs systemd-analyze verify on unit inside root and returns what
// it said about fleetwatch units. Its exit code only covers hard errors
// (a missing binary); bad or unknown settings are warnings on stderr.
func verify(t *testing.T, root, unit string) (ok bool, complaints string) {
	t.Helper()
	cmd := exec.Command("systemd-analyze", "verify", "--root="+root, "--man=no", unit)
	out, err := cmd.CombinedOutput()
	var lines []string
	for _, l := range strings.Split(string(out), "\n") {
		if strings.Contains(l, "fleetwatch") {
			lines = append(lines, l)
		}
	}
	return err == nil && len(lines) == 0, strings.Join(lines, "\n") + fmt.Sprintf(" (err %v)", err)
}

var exposureRE = regexp.MustCompile(`Overall exposure level for \S+: ([0-9.]+)`)

func TestUnitsVerify(t *testing.T) {
	bin := binary(t)
	root := analyzeRoot(t)
	mustRun(t, "--root", root, "--broker", "tcp://hub.local:1883", "--binary", bin)
	// The hub unit, installed by hand as its README section says.
	hubUnit, err := os.ReadFile(filepath.Join(units, "fleetwatch-hub.service"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "etc/systemd/system/fleetwatch-hub.service"), hubUnit, 0o644); err != nil {
		t.Fatal(err)
	}
	// verify checks that ExecStart is executable, not what it is.
	if err := os.WriteFile(filepath.Join(root, "usr/local/bin/fleetwatch-hub"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}

	for _, unit := range []string{"fleetwatch-agent.service", "fleetwatch-hub.service"} {
		t.Run(unit, func(t *testing.T) {
			if ok, said := verify(t, root, unit); !ok {
				t.Errorf("systemd-analyze verify %s:\n%s", unit, said)
			}
			// Offline security review (systemd ≥ 250): keep the sandbox
			// from eroding unnoticed. 1.5 (agent) and 1.4 (hub) today.
			out, err := exec.Command("systemd-analyze", "security", "--offline=true", "--root="+root, unit).CombinedOutput()
			m := exposureRE.FindSubmatch(out)
			if err != nil || m == nil {
				t.Logf("no offline security review here: %v", err)
				return
			}
			if score, _ := strconv.ParseFloat(string(m[1]), 64); score > 2.0 {
				t.Errorf("%s exposure %.1f, want ≤ 2.0:\n%s", unit, score, out)
			}
		})
	}

	// The check must be able to fail here, or a pass means nothing.
	t.Run("verify catches a broken unit", func(t *testing.T) {
		path := filepath.Join(root, "etc/systemd/system/fleetwatch-agent.service")
		good, _ := os.ReadFile(path)
		defer os.WriteFile(path, good, 0o644)
		broken := bytes.Replace(good, []byte("\nProtectSystem=strict\n"), []byte("\nProtectSystem=strictly\n"), 1)
		if bytes.Equal(broken, good) {
			t.Fatal("no ProtectSystem=strict line to break")
		}
		if err := os.WriteFile(path, broken, 0o644); err != nil {
			t.Fatal(err)
		}
		if ok, _ := verify(t, root, "fleetwatch-agent.service"); ok {
			t.Error("a bad ProtectSystem= value passed")
		}
		if err := os.WriteFile(path, good, 0o644); err != nil {
			t.Fatal(err)
		}
		os.Rename(filepath.Join(root, "usr/local/bin/fleetwatch-agent"), filepath.Join(root, "agent.moved"))
		defer os.Rename(filepath.Join(root, "agent.moved"), filepath.Join(root, "usr/local/bin/fleetwatch-agent"))
		if ok, _ := verify(t, root, "fleetwatch-agent.service"); ok {
			t.Error("a missing ExecStart binary passed")
		}
	})
}

// TestAgentUnitKeepsProcReadable guards what the agent reads: /proc/stat,
// /proc/meminfo, /proc/net/dev, the pid entries it counts, and sysfs.
func TestAgentUnitKeepsProcReadable(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(units, "fleetwatch-agent.service"))
	if err != nil {
		t.Fatal(err)
	}
	set := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok && !strings.HasPrefix(line, "#") {
			set[k] = v
		}
	}
	for k, forbidden := range map[string]string{"ProtectProc": "invisible", "ProcSubset": "pid", "ProtectKernelTunables": "no"} {
		if set[k] == forbidden {
			t.Errorf("%s=%s would hide what the agent reads", k, forbidden)
		}
	}
	for k, want := range map[string]string{
		"User": "fleetwatch", "NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes",
		"PrivateTmp": "yes", "StateDirectory": "fleetwatch-agent", "CapabilityBoundingSet": "",
		"MemoryDenyWriteExecute": "yes", "UMask": "0077",
	} {
		if v, ok := set[k]; !ok || v != want {
			t.Errorf("%s=%q, want %q", k, v, want)
		}
	}
}

func TestShellcheck(t *testing.T) {
	if _, err := exec.LookPath("shellcheck"); err != nil {
		t.Skip("shellcheck not installed (Debian package shellcheck)")
	}
	files := []string{script, "../dist.sh"}
	sh, _ := filepath.Glob("../../configs/nfpm/*.sh") // dpkg maintainer scripts: POSIX sh
	if out, err := exec.Command("shellcheck", append(files, sh...)...).CombinedOutput(); err != nil {
		t.Errorf("shellcheck: %v\n%s", err, out)
	}
}
