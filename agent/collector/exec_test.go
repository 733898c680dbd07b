package collector

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fleetwatch/fleetwatch/agent/telemetry"
)

func TestParseExecOutput(t *testing.T) {
	const p = "custom.ups."
	tests := []struct {
		name    string
		in      string
		limit   int
		want    telemetry.Metrics
		wantErr string // substring; "" for no error
	}{
		{"lines", "load 0.5\nbattery_percent 98\n", 0,
			telemetry.Metrics{p + "load": 0.5, p + "battery_percent": 98}, ""},
		{"comments blanks tabs CRLF", "# header\r\n\r\n  volts\t230.1\r\n#x 1\nneg -4e3\n", 0,
			telemetry.Metrics{p + "volts": 230.1, p + "neg": -4000}, ""},
		{"dotted names", "in.volts 230\nout.volts 229\n", 0,
			telemetry.Metrics{p + "in.volts": 230, p + "out.volts": 229}, ""},
		{"bad lines kept apart", "good 1\nBad 2\nthree fields 3\nnan NaN\ninf +Inf\nword hello\n", 0,
			telemetry.Metrics{p + "good": 1}, "line 2"},
		{"duplicate keeps first", "a 1\na 2\n", 0, telemetry.Metrics{p + "a": 1}, "printed twice"},
		{"limit", "a 1\nb 2\nc 3\n", 2, telemetry.Metrics{p + "a": 1, p + "b": 2}, "more than 2 metrics"},
		{"many bad lines summarized", "A 1\nB 1\nC 1\nD 1\nE 1\n", 0, telemetry.Metrics{}, "(and 2 more)"},
		{"only comments", "# nothing to report\n\n", 0, telemetry.Metrics{}, "printed no readings"},
		{"empty", "", 0, telemetry.Metrics{}, "printed no readings"},
		{"garbage", "Segmentation fault\n", 0, telemetry.Metrics{}, "must match"},
		{"garbage line", "temperature is 21 C\n", 0, telemetry.Metrics{}, "want `name value`"},
		{"name too long with prefix", strings.Repeat("x", 120) + " 1\n", 0, telemetry.Metrics{}, "at most 128 bytes"},
		{"json", `{"battery_percent": 98, "load": 0.5, "on_battery": 0}`, 0,
			telemetry.Metrics{p + "battery_percent": 98, p + "load": 0.5, p + "on_battery": 0}, ""},
		{"json after whitespace", "\n  {\"a\":1e3}\n", 0, telemetry.Metrics{p + "a": 1000}, ""},
		{"json limit keeps sorted first", `{"c":3,"a":1,"b":2}`, 2, telemetry.Metrics{p + "a": 1, p + "b": 2}, "more than 2"},
		{"json string value", `{"a":1,"b":"2"}`, 0, nil, "not a flat JSON object"},
		{"json null", `{"a":null}`, 0, nil, "not a flat JSON object"},
		{"json nested", `{"a":{"b":1}}`, 0, nil, "not a flat JSON object"},
		{"json duplicate", `{"a":1,"a":2}`, 0, nil, "appears twice"},
		{"json bad name", `{"Temp":1}`, 0, nil, "must match"},
		{"json syntax", `{"a":1,}`, 0, nil, "not a flat JSON object"},
		{"json trailing data", `{"a":1} {"b":2}`, 0, nil, "not a flat JSON object"},
		{"json empty object", `{}`, 0, telemetry.Metrics{}, "empty JSON object"},
		{"json huge number", `{"a":1e999}`, 0, nil, "not a flat JSON object"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			limit := tt.limit
			if limit == 0 {
				limit = DefaultExecMetrics
			}
			got, err := parseExecOutput([]byte(tt.in), p, limit)
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Errorf("error = %v, want one containing %q", err, tt.wantErr)
			}
			if tt.want != nil && fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("metrics = %v, want %v", got, tt.want)
			}
			if tt.want == nil && len(got) != 0 {
				t.Errorf("metrics = %v, want none (JSON is rejected whole)", got)
			}
		})
	}
}

func TestCapWriter(t *testing.T) {
	w := &capWriter{max: 5}
	if n, err := w.Write([]byte("abc")); n != 3 || err != nil {
		t.Fatalf("Write = %d, %v", n, err)
	}
	if _, err := w.Write([]byte("defg")); !errors.Is(err, errOutputTooLong) || !w.overflow || w.buf.String() != "abcde" {
		t.Fatalf("overflow: err %v, overflow %v, kept %q", err, w.overflow, w.buf.String())
	}
	d := &capWriter{max: 2, discard: true}
	if n, err := d.Write([]byte("xyz")); n != 3 || err != nil || d.buf.String() != "xy" {
		t.Fatalf("discard: %d, %v, %q", n, err, d.buf.String())
	}
}

func TestChildEnv(t *testing.T) {
	got := childEnv([]string{"PATH=/bin", "FLEETWATCH_MQTT_PASSWORD=s3cret", "HOME=/", "FLEETWATCH_BROKER=x"})
	if fmt.Sprint(got) != "[PATH=/bin HOME=/]" {
		t.Errorf("childEnv = %v", got)
	}
}

func TestCustom(t *testing.T) {
	t.Run("builds in order", func(t *testing.T) {
		cs, err := Custom([]CustomSpec{
			{Name: "room_temp", File: "/sys/bus/w1/devices/28-*/temperature", Scale: 0.001},
			{Name: "ups", Exec: []string{"/usr/local/bin/ups-status", "--json"}, Timeout: 3 * time.Second},
			{Name: "ups", Exec: []string{"true"}, Prefix: "power."},
		})
		if err != nil {
			t.Fatal(err)
		}
		f, ok := cs[0].(*File)
		if !ok || f.Name() != "custom.room_temp" || f.Metric != "custom.room_temp" || f.Scale != 0.001 {
			t.Errorf("cs[0] = %#v", cs[0])
		}
		e, ok := cs[1].(*Exec)
		if !ok || e.Name() != "custom.ups" || e.Prefix != "custom.ups." || e.Timeout != 3*time.Second || e.MaxMetrics != (MaxCustomMetrics-1)/2 {
			t.Errorf("cs[1] = %#v", cs[1])
		}
		if e := cs[2].(*Exec); e.Prefix != "power.ups." || e.Name() != "power.ups" {
			t.Errorf("cs[2] = %#v, Name %q", e, e.Name())
		}
	})
	t.Run("execs share the metric budget", func(t *testing.T) {
		specs := []CustomSpec{{Name: "f", File: "/x"}}
		for i := range MaxCustom - 1 {
			specs = append(specs, CustomSpec{Name: "e" + strconv.Itoa(i), Exec: []string{"true"}})
		}
		cs, err := Custom(specs)
		if err != nil {
			t.Fatal(err)
		}
		total := 1
		for _, c := range cs[1:] {
			total += c.(*Exec).MaxMetrics
		}
		if total > MaxCustomMetrics {
			t.Errorf("custom readings may add %d metrics, more than %d", total, MaxCustomMetrics)
		}
	})
	bad := []struct {
		name string
		spec CustomSpec
		want string
	}{
		{"neither", CustomSpec{Name: "a"}, "set exec (a command) or file"},
		{"both", CustomSpec{Name: "a", File: "/x", Exec: []string{"true"}}, "not both"},
		{"no name", CustomSpec{File: "/x"}, "name"},
		{"dotted name", CustomSpec{Name: "a.b", File: "/x"}, "name"},
		{"upper name", CustomSpec{Name: "Temp", File: "/x"}, "name"},
		{"long name", CustomSpec{Name: strings.Repeat("a", 65), File: "/x"}, "name"},
		{"empty command", CustomSpec{Name: "a", Exec: []string{""}}, "empty command"},
		{"negative timeout", CustomSpec{Name: "a", Exec: []string{"true"}, Timeout: -time.Second}, "timeout"},
		{"huge timeout", CustomSpec{Name: "a", Exec: []string{"true"}, Timeout: time.Hour}, "timeout"},
		{"timeout on file", CustomSpec{Name: "a", File: "/x", Timeout: time.Second}, "exec readings only"},
		{"scale on exec", CustomSpec{Name: "a", Exec: []string{"true"}, Scale: 2}, "file readings only"},
		{"nan scale", CustomSpec{Name: "a", File: "/x", Scale: math.NaN()}, "scale"},
		{"prefix without dot", CustomSpec{Name: "a", File: "/x", Prefix: "env"}, "prefix"},
		{"bad prefix", CustomSpec{Name: "a", File: "/x", Prefix: "Env."}, "prefix"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Custom([]CustomSpec{tt.spec}); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Custom(%+v) = %v, want an error containing %q", tt.spec, err, tt.want)
			}
		})
	}
	t.Run("duplicate name", func(t *testing.T) {
		_, err := Custom([]CustomSpec{{Name: "a", File: "/x"}, {Name: "a", Exec: []string{"true"}}})
		if err == nil || !strings.Contains(err.Error(), "used twice") {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("too many", func(t *testing.T) {
		specs := make([]CustomSpec, MaxCustom+1)
		for i := range specs {
			specs[i] = CustomSpec{Name: "f" + strconv.Itoa(i), File: "/x"}
		}
		if _, err := Custom(specs); err == nil {
			t.Error("no error")
		}
	})
}

func collectExec(t *testing.T, e *Exec) (telemetry.Metrics, error, time.Duration) {
	t.Helper()
	m := telemetry.Metrics{}
	start := time.Now()
	err := e.Collect(context.Background(), m)
	return m, err, time.Since(start)
}

func sh(script string) []string { return []string{"/bin/sh", "-c", script} }

// gone reports whether pid has exited (a zombie counts: it runs nothing),
// waiting up to 2 s for the kernel to finish the kill.
func gone(pid int) bool {
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil {
			return true
		}
		// "pid (comm) S ...": the state follows the last ')'.
		if s := string(b); strings.HasPrefix(strings.TrimSpace(s[strings.LastIndexByte(s, ')')+1:]), "Z") {
			return true
		}
	}
	return false
}

func readPID(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	return pid
}

func TestExec_Collect(t *testing.T) {
	t.Run("lines", func(t *testing.T) {
		m, err, _ := collectExec(t, &Exec{Key: "t", Command: sh("echo a 1; echo '# note'; echo b.c 2.5")})
		if err != nil || fmt.Sprint(m) != "map[custom.t.a:1 custom.t.b.c:2.5]" {
			t.Errorf("got %v, %v", m, err)
		}
	})
	t.Run("argv without a shell", func(t *testing.T) {
		// printf gets "%s 1\n" and "$HOME;x" verbatim: nothing expands.
		m, err, _ := collectExec(t, &Exec{Key: "t", Command: []string{"printf", `%s 7\n`, "$HOME;x"}})
		if err == nil || len(m) != 0 || !strings.Contains(err.Error(), `"$HOME;x"`) {
			t.Errorf("got %v, %v; want the literal name rejected", m, err)
		}
	})
	t.Run("json and custom prefix", func(t *testing.T) {
		m, err, _ := collectExec(t, &Exec{Key: "ups", Prefix: "power.", Command: sh(`printf '{"volts": 230.5, "load": 12}'`)})
		if err != nil || fmt.Sprint(m) != "map[power.load:12 power.volts:230.5]" {
			t.Errorf("got %v, %v", m, err)
		}
	})
	t.Run("garbage", func(t *testing.T) {
		m, err, _ := collectExec(t, &Exec{Key: "t", Command: sh("echo 'temperature is high!'")})
		if err == nil || len(m) != 0 {
			t.Errorf("got %v, %v; want an error and no metrics", m, err)
		}
	})
	t.Run("failure keeps what was printed", func(t *testing.T) {
		m, err, _ := collectExec(t, &Exec{Key: "t", Command: sh("echo a 1; echo 'sensor 2 missing' >&2; exit 3")})
		if err == nil || !strings.Contains(err.Error(), "exit status 3: sensor 2 missing") {
			t.Errorf("err = %v, want exit status and stderr", err)
		}
		if m["custom.t.a"] != 1 {
			t.Errorf("metrics = %v, want custom.t.a kept", m)
		}
	})
	t.Run("missing command", func(t *testing.T) {
		_, err, _ := collectExec(t, &Exec{Key: "t", Command: []string{"/nonexistent/fleetwatch-probe"}})
		if err == nil || !strings.Contains(err.Error(), "start /nonexistent/fleetwatch-probe") {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("timeout kills quickly", func(t *testing.T) {
		_, err, took := collectExec(t, &Exec{Key: "t", Command: []string{"sleep", "5"}, Timeout: 100 * time.Millisecond})
		if err == nil || !strings.Contains(err.Error(), "timed out after 100ms") {
			t.Errorf("err = %v, want a timeout", err)
		}
		if took > 2*time.Second {
			t.Errorf("Collect took %s, want about the 100ms timeout", took)
		}
	})
	t.Run("timeout kills the whole process group", func(t *testing.T) {
		pidFile := filepath.Join(t.TempDir(), "pid")
		// The child is what would linger: killing only sh would leave it.
		m, err, took := collectExec(t, &Exec{Key: "t", Timeout: 200 * time.Millisecond,
			Command: sh("echo early 1; sleep 30 & echo $! > " + pidFile + "; wait")})
		if err == nil || !strings.Contains(err.Error(), "timed out") || took > 2*time.Second {
			t.Errorf("err = %v after %s, want a timeout", err, took)
		}
		if m["custom.t.early"] != 1 {
			t.Errorf("metrics = %v, want the line printed before the timeout", m)
		}
		if pid := readPID(t, pidFile); !gone(pid) {
			syscall.Kill(pid, syscall.SIGKILL)
			t.Errorf("background child %d still running after the timeout", pid)
		}
	})
	t.Run("background child holding stdout", func(t *testing.T) {
		pidFile := filepath.Join(t.TempDir(), "pid")
		m, err, took := collectExec(t, &Exec{Key: "t", Timeout: 5 * time.Second,
			Command: sh("sleep 30 & echo $! > " + pidFile + "; echo a 1")})
		if took > 3*time.Second {
			t.Errorf("Collect took %s: waited for the background child", took)
		}
		if err == nil {
			t.Error("no error for a command that left a child holding stdout")
		}
		if m["custom.t.a"] != 1 {
			t.Errorf("metrics = %v", m)
		}
		if pid := readPID(t, pidFile); !gone(pid) {
			syscall.Kill(pid, syscall.SIGKILL)
			t.Errorf("background child %d still running", pid)
		}
	})
	t.Run("too much output", func(t *testing.T) {
		_, err, took := collectExec(t, &Exec{Key: "t", Timeout: 10 * time.Second, Command: []string{"yes", "a 1"}})
		if err == nil || !strings.Contains(err.Error(), "output longer than 65536 bytes") {
			t.Errorf("err = %v", err)
		}
		if took > 5*time.Second {
			t.Errorf("took %s: a runaway command should die of SIGPIPE, not run to its timeout", took)
		}
	})
	t.Run("secrets stay out of the environment", func(t *testing.T) {
		t.Setenv("FLEETWATCH_MQTT_PASSWORD", "42")
		m, err, _ := collectExec(t, &Exec{Key: "t", Command: sh(`echo seen ${FLEETWATCH_MQTT_PASSWORD:-0}`)})
		if err != nil || m["custom.t.seen"] != 0 {
			t.Errorf("got %v, %v; the command saw FLEETWATCH_MQTT_PASSWORD", m, err)
		}
	})
	t.Run("agent stopping", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(100*time.Millisecond, cancel)
		start := time.Now()
		err := (&Exec{Key: "t", Command: []string{"sleep", "5"}, Timeout: 10 * time.Second}).Collect(ctx, telemetry.Metrics{})
		if !errors.Is(err, context.Canceled) || time.Since(start) > 2*time.Second {
			t.Errorf("err = %v after %s, want context.Canceled promptly", err, time.Since(start))
		}
	})
}
