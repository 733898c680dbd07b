package collector

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/fleetwatch/fleetwatch/agent"
	"github.com/fleetwatch/fleetwatch/agent/telemetry"
)

// Custom readings are declared in the agent's YAML (the `custom:` list) and
// built here: an Exec per `exec:` entry (exec.go), a File per `file:` entry
// (file.go).

// Limits of custom readings. A reading must stay under telemetry.MaxMetrics
// next to the built-in families (at most ~300), so custom readings share a
// budget of MaxCustomMetrics; each Exec gets an equal slice of what the
// File readings leave, at most DefaultExecMetrics.
const (
	MaxCustom          = 16
	MaxCustomMetrics   = 128
	DefaultExecMetrics = 64
	DefaultExecTimeout = 2 * time.Second
	// MaxExecTimeout bounds one command. Collectors run one after another,
	// so a command's timeout delays the whole reading: keep it well under
	// the agent's interval.
	MaxExecTimeout = time.Minute
	// DefaultMaxOutput caps what a command may print on stdout. Past it the
	// pipe is closed (the command gets SIGPIPE) and the collect fails.
	DefaultMaxOutput = 64 << 10
	// DefaultPrefix is prepended to custom reading names.
	DefaultPrefix = "custom."

	maxStderr    = 1 << 10 // kept for the error message
	maxErrorList = 3       // bad lines named in one error; the rest are counted
)

// CustomSpec is one entry of the agent config's `custom:` list: exactly one
// of Exec or File.
//
//	custom:
//	  - name: room_temp                        # → custom.room_temp
//	    file: /sys/bus/w1/devices/28-*/temperature
//	    scale: 0.001
//	  - name: ups                              # → custom.ups.<printed name>
//	    exec: ["/usr/local/bin/ups-status", "--json"]
//	    timeout: 2s
type CustomSpec struct {
	// Name is one metric name segment, [a-z0-9_]{1,64}.
	Name string `yaml:"name"`
	// Exec is the command and its arguments, run without a shell.
	Exec []string `yaml:"exec"`
	// File is read for one number; it may be a glob matching one file.
	File string `yaml:"file"`
	// Scale multiplies a File reading (0.001 for millidegrees); default 1.
	Scale float64 `yaml:"scale"`
	// Timeout bounds one run of Exec; default DefaultExecTimeout.
	Timeout time.Duration `yaml:"timeout"`
	// Prefix replaces DefaultPrefix ("custom."), e.g. "env.". It must be
	// metric name segments followed by a dot.
	Prefix string `yaml:"prefix"`
}

// Custom validates specs and returns their collectors, in spec order. The
// caller should also check that each Timeout is below its interval:
// collectors run in turn, so a slow command delays every reading.
func Custom(specs []CustomSpec) ([]agent.Collector, error) {
	if len(specs) > MaxCustom {
		return nil, fmt.Errorf("custom: %d entries, at most %d", len(specs), MaxCustom)
	}
	nExec := 0
	for _, s := range specs {
		if len(s.Exec) > 0 {
			nExec++
		}
	}
	perExec := DefaultExecMetrics
	if nExec > 0 {
		perExec = min(DefaultExecMetrics, (MaxCustomMetrics-(len(specs)-nExec))/nExec)
	}
	seen := make(map[string]bool, len(specs))
	out := make([]agent.Collector, 0, len(specs))
	for i, s := range specs {
		c, err := s.collector(perExec)
		if err != nil {
			if s.Name != "" {
				return nil, fmt.Errorf("custom[%d] %q: %w", i, s.Name, err)
			}
			return nil, fmt.Errorf("custom[%d]: %w", i, err)
		}
		root := s.prefix() + s.Name
		if seen[root] {
			return nil, fmt.Errorf("custom[%d]: name %q used twice", i, root)
		}
		seen[root] = true
		out = append(out, c)
	}
	return out, nil
}

func (s CustomSpec) prefix() string { return orDefault(s.Prefix, DefaultPrefix) }

func (s CustomSpec) collector(maxMetrics int) (agent.Collector, error) {
	if !isSegment(s.Name) || len(s.Name) > maxKey {
		return nil, fmt.Errorf("name %q: want [a-z0-9_]{1,%d}", s.Name, maxKey)
	}
	p := s.prefix()
	if !strings.HasSuffix(p, ".") || !telemetry.ValidMetricName(strings.TrimSuffix(p, ".")) {
		return nil, fmt.Errorf("prefix %q: want metric name segments and a final dot, like %q", p, DefaultPrefix)
	}
	if !telemetry.ValidMetricName(p + s.Name) {
		return nil, fmt.Errorf("prefix and name %q: longer than %d bytes", p+s.Name, telemetry.MaxMetricName)
	}
	switch {
	case len(s.Exec) > 0 && s.File != "":
		return nil, errors.New("set exec or file, not both")
	case len(s.Exec) > 0:
		if s.Exec[0] == "" {
			return nil, errors.New("exec: empty command")
		}
		if s.Scale != 0 {
			return nil, errors.New("scale applies to file readings only")
		}
		if s.Timeout < 0 || s.Timeout > MaxExecTimeout {
			return nil, fmt.Errorf("timeout %s: want between 0 (default %s) and %s", s.Timeout, DefaultExecTimeout, MaxExecTimeout)
		}
		return &Exec{Key: s.Name, Command: slices.Clone(s.Exec), Timeout: s.Timeout, Prefix: p + s.Name + ".", MaxMetrics: maxMetrics}, nil
	case s.File != "":
		if s.Timeout != 0 {
			return nil, errors.New("timeout applies to exec readings only")
		}
		if math.IsNaN(s.Scale) || math.IsInf(s.Scale, 0) {
			return nil, fmt.Errorf("scale %v: want a finite number", s.Scale)
		}
		return &File{Key: s.Name, Path: s.File, Scale: s.Scale, Metric: p + s.Name}, nil
	default:
		return nil, errors.New("set exec (a command) or file (a path)")
	}
}

// isSegment reports whether s is one metric name segment, [a-z0-9_]+.
func isSegment(s string) bool {
	return s != "" && !strings.Contains(s, ".") && telemetry.ValidMetricName(s)
}

// parseExecOutput parses what a custom command printed: a flat JSON object
// of numbers when the first non-blank byte is '{' (the same strict rules as
// the hub's simple form), otherwise lines of `name value`, where blank
// lines and lines starting with '#' are skipped. Names get prefix and must
// then be valid metric names.
//
// Lines are independent: good ones are returned alongside an error naming
// the bad ones. A JSON object with a syntax error, a value that is not a
// finite number or a bad name is rejected whole. At most limit metrics are
// kept (the first lines; for JSON the first names in sorted order).
func parseExecOutput(out []byte, prefix string, limit int) (telemetry.Metrics, error) {
	if isJSONOutput(out) {
		return parseExecJSON(out, prefix, limit)
	}
	return parseExecLines(out, prefix, limit)
}

func isJSONOutput(out []byte) bool {
	t := bytes.TrimLeft(out, " \t\r\n")
	return len(t) > 0 && t[0] == '{'
}

func parseExecJSON(out []byte, prefix string, limit int) (telemetry.Metrics, error) {
	var raw telemetry.Metrics
	if err := json.Unmarshal(out, &raw); err != nil {
		return nil, fmt.Errorf("output is not a flat JSON object of numbers: %w", err)
	}
	names := make([]string, 0, len(raw))
	for name := range raw {
		names = append(names, name)
	}
	sort.Strings(names)
	m := make(telemetry.Metrics, min(len(names), limit))
	var bad []string
	for _, name := range names {
		full := prefix + name
		switch {
		case !telemetry.ValidMetricName(full):
			bad = append(bad, fmt.Sprintf("%q: longer than %d bytes with prefix %q", name, telemetry.MaxMetricName, prefix))
		case len(m) == limit:
			return m, errors.Join(listErrors(bad), fmt.Errorf("%d metrics, more than %d: kept the first %d by name", len(names), limit, limit))
		default:
			m[full] = raw[name]
		}
	}
	if len(m) == 0 && len(bad) == 0 {
		return m, errors.New("printed an empty JSON object")
	}
	return m, listErrors(bad)
}

func parseExecLines(out []byte, prefix string, limit int) (telemetry.Metrics, error) {
	m := make(telemetry.Metrics)
	var bad []string
	lines := 0
	for n, line := range strings.Split(string(out), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		lines++
		name, v, err := parseExecLine(line, prefix)
		switch {
		case err != nil:
			bad = append(bad, fmt.Sprintf("line %d: %v", n+1, err))
		case hasMetric(m, name):
			bad = append(bad, fmt.Sprintf("line %d: %q printed twice", n+1, strings.TrimPrefix(name, prefix)))
		case len(m) == limit:
			bad = append(bad, fmt.Sprintf("line %d: more than %d metrics", n+1, limit))
		default:
			m[name] = v
		}
	}
	if lines == 0 {
		return m, errors.New("printed no readings (want `name value` lines or a JSON object)")
	}
	return m, listErrors(bad)
}

func hasMetric(m telemetry.Metrics, name string) bool {
	_, ok := m[name]
	return ok
}

// parseExecLine parses one `name value` line into prefix+name and value.
func parseExecLine(line, prefix string) (string, float64, error) {
	f := strings.Fields(line)
	if len(f) != 2 {
		return "", 0, fmt.Errorf("want `name value`, got %q", truncate(line, 60))
	}
	full := prefix + f[0]
	if !telemetry.ValidMetricName(full) {
		return "", 0, fmt.Errorf("name %q must match [a-z0-9_]+(.[a-z0-9_]+)* and be at most %d bytes with prefix %q",
			truncate(f[0], 60), telemetry.MaxMetricName, prefix)
	}
	v, err := strconv.ParseFloat(f[1], 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return "", 0, fmt.Errorf("%s: value %q is not a finite number", f[0], truncate(f[1], 40))
	}
	return full, v, nil
}

// listErrors joins the first few messages into one error: a command that
// prints garbage every interval should cost one readable log line.
func listErrors(msgs []string) error {
	switch {
	case len(msgs) == 0:
		return nil
	case len(msgs) > maxErrorList:
		return fmt.Errorf("%s (and %d more)", strings.Join(msgs[:maxErrorList], "; "), len(msgs)-maxErrorList)
	default:
		return errors.New(strings.Join(msgs, "; "))
	}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// capWriter keeps the first max bytes written to it. Past that it either
// fails the write, which makes os/exec close the pipe so that a runaway
// command dies of SIGPIPE instead of running to its timeout, or (discard)
// drops the rest quietly.
type capWriter struct {
	buf      bytes.Buffer
	max      int
	discard  bool
	overflow bool
}

var errOutputTooLong = errors.New("output too long")

func (w *capWriter) Write(p []byte) (int, error) {
	room := w.max - w.buf.Len()
	if len(p) <= room {
		return w.buf.Write(p)
	}
	w.buf.Write(p[:max(room, 0)])
	w.overflow = true
	if w.discard {
		return len(p), nil
	}
	return 0, errOutputTooLong
}

// childEnv is the agent's environment without FLEETWATCH_* variables: a
// custom command has no business seeing the MQTT password.
func childEnv(env []string) []string {
	out := make([]string, 0, len(env))
	for _, kv := range env {
		if !strings.HasPrefix(kv, "FLEETWATCH_") {
			out = append(out, kv)
		}
	}
	return out
}

// Exec runs a command on every Collect and reports the numbers it prints
// on stdout (see parseExecOutput) as <Prefix><name>. The command runs
// directly, without a shell, in its own process group with stdin from
// /dev/null; on timeout the whole group is killed, so a shell script's
// children go too.
type Exec struct {
	// Key is the custom reading's name from the config.
	Key string
	// Command is the program and its arguments; a program without a slash
	// is looked up in PATH.
	Command []string
	// Timeout bounds one run; default DefaultExecTimeout.
	Timeout time.Duration
	// Prefix is prepended to every printed name; default "custom.<Key>.".
	Prefix string
	// MaxMetrics caps the metrics kept from one run; default
	// DefaultExecMetrics.
	MaxMetrics int
	// MaxOutput caps stdout in bytes; default DefaultMaxOutput.
	MaxOutput int
}

// Name implements agent.Collector: the prefix without its dot, so that
// errors are counted per custom reading.
func (e *Exec) Name() string { return strings.TrimSuffix(e.prefix(), ".") }

func (e *Exec) prefix() string { return orDefault(e.Prefix, "custom."+e.Key+".") }

// Collect implements agent.Collector. Metrics parsed before a failure (a
// timeout, a non-zero exit, bad lines) are kept and the failure returned.
func (e *Exec) Collect(ctx context.Context, m telemetry.Metrics) error {
	if len(e.Command) == 0 || e.Command[0] == "" {
		return errors.New("no command")
	}
	out, runErr := e.run(ctx)
	if ctx.Err() != nil {
		return ctx.Err() // the agent is stopping: nothing to report
	}
	if runErr != nil && len(bytes.TrimSpace(out)) == 0 {
		return runErr // "printed nothing" would only repeat it
	}
	if runErr != nil {
		// Only whole lines: the last one may have been cut off mid-number.
		if i := bytes.LastIndexByte(out, '\n'); i >= 0 && !isJSONOutput(out) {
			out = out[:i+1]
		}
	}
	got, parseErr := parseExecOutput(out, e.prefix(), positiveOr(e.MaxMetrics, DefaultExecMetrics))
	for name, v := range got {
		put(m, name, v)
	}
	if parseErr != nil {
		parseErr = fmt.Errorf("%s: %w", e.Command[0], parseErr)
	}
	return errors.Join(runErr, parseErr)
}

// run runs the command and returns its (capped) stdout. The error says
// why the run failed; stdout is returned in every case.
func (e *Exec) run(ctx context.Context) ([]byte, error) {
	timeout := e.Timeout
	if timeout <= 0 {
		timeout = DefaultExecTimeout
	}
	rctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(rctx, e.Command[0], e.Command[1:]...)
	cmd.Env = childEnv(os.Environ())
	// Its own process group, so that a timeout kills what a script started
	// too, not only the script.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	// A child that left the group could keep stdout open for ever; stop
	// waiting for it shortly after the kill.
	cmd.WaitDelay = 500 * time.Millisecond
	stdout := &capWriter{max: positiveOr(e.MaxOutput, DefaultMaxOutput)}
	stderr := &capWriter{max: maxStderr, discard: true}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", e.Command[0], err)
	}
	err := cmd.Wait()
	// The group outlives the command when it left background children
	// behind; kill them too. This cannot hit an unrelated process: a pid is
	// not reused while a process group of that id has members, and with no
	// members left the kill fails with ESRCH.
	syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) //nolint:errcheck // ESRCH is the usual answer
	out := stdout.buf.Bytes()
	switch {
	case ctx.Err() != nil:
		return out, ctx.Err()
	case stdout.overflow:
		return out, fmt.Errorf("%s: output longer than %d bytes", e.Command[0], stdout.max)
	case errors.Is(rctx.Err(), context.DeadlineExceeded):
		return out, fmt.Errorf("%s: timed out after %s", e.Command[0], timeout)
	case errors.Is(err, exec.ErrWaitDelay):
		return out, fmt.Errorf("%s: exited but left a background process holding its output open (killed)", e.Command[0])
	case err != nil:
		if msg := firstLine(stderr.buf.String()); msg != "" {
			return out, fmt.Errorf("%s: %w: %s", e.Command[0], err, msg)
		}
		return out, fmt.Errorf("%s: %w", e.Command[0], err)
	}
	return out, nil
}

// firstLine is the first non-blank line of s, shortened for a log line.
func firstLine(s string) string {
	for _, line := range strings.Split(s, "\n") {
		if line = strings.TrimSpace(line); line != "" {
			return truncate(line, 200)
		}
	}
	return ""
}

// positiveOr returns n, or def when n is not positive.
func positiveOr(n, def int) int {
	if n > 0 {
		return n
	}
	return def
}
