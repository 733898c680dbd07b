package main

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestConfig_ParseFlags(t *testing.T) {
	noEnv := func(string) string { return "" }

	t.Run("Defaults", func(t *testing.T) {
		c := DefaultConfig()
		if err := c.ParseFlags(nil, noEnv, io.Discard); err != nil {
			t.Fatal(err)
		}
		if got, want := c.Broker, "tcp://127.0.0.1:1883"; got != want {
			t.Fatalf("Broker=%q, want %q", got, want)
		}
		if got, want := c.Interval, 5*time.Second; got != want {
			t.Fatalf("Interval=%s, want %s", got, want)
		}
		if c.SpillInterval != 10*time.Second || c.OutboxMaxBytes != 64<<20 || c.OutboxMaxAge != 7*24*time.Hour || c.ReplayRate != 500 {
			t.Fatalf("outbox settings %s %s %s %d, want 10s 64MiB 168h0m0s 500",
				c.SpillInterval, c.OutboxMaxBytes, c.OutboxMaxAge, c.ReplayRate)
		}
	})

	t.Run("Outbox", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "agent.yaml")
		os.WriteFile(path, []byte("spill_interval: 2s\noutbox_max_bytes: 1GiB\noutbox_max_age: 24h\nreplay_rate: 50\n"), 0o600)
		c := DefaultConfig()
		if err := c.ParseFlags([]string{"--config", path, "--spill-interval=500ms", "--outbox-max-bytes=512KiB"}, noEnv, io.Discard); err != nil {
			t.Fatal(err)
		}
		if c.SpillInterval != 500*time.Millisecond || c.OutboxMaxBytes != 512<<10 || c.OutboxMaxAge != 24*time.Hour || c.ReplayRate != 50 {
			t.Fatalf("outbox settings %s %s %s %d, want 500ms 512KiB 24h0m0s 50 (flags over file)",
				c.SpillInterval, c.OutboxMaxBytes, c.OutboxMaxAge, c.ReplayRate)
		}
	})

	t.Run("ExampleFileIsValid", func(t *testing.T) {
		c := DefaultConfig()
		if err := c.ParseFlags([]string{"--config", "../../../configs/agent.example.yaml"}, noEnv, io.Discard); err != nil {
			t.Fatal(err)
		}
		if got, want := c.Tags["site"], "home"; got != want {
			t.Fatalf("Tags[site]=%q, want %q", got, want)
		}
	})

	t.Run("SecretFromEnv", func(t *testing.T) {
		c := DefaultConfig()
		env := map[string]string{"FLEETWATCH_MQTT_PASSWORD": "s3cret"}
		if err := c.ParseFlags([]string{"--interval=1s"}, func(k string) string { return env[k] }, io.Discard); err != nil {
			t.Fatal(err)
		}
		if got, want := c.Password, "s3cret"; got != want {
			t.Fatalf("Password=%q, want %q", got, want)
		}
	})

	t.Run("Once", func(t *testing.T) {
		c := DefaultConfig()
		if err := c.ParseFlags([]string{"--once"}, noEnv, io.Discard); err != nil {
			t.Fatal(err)
		}
		if !c.Once {
			t.Fatal("Once=false, want true")
		}
	})

	for name, tc := range map[string]struct {
		yaml, args, want string
	}{
		"ErrUnknownKey":        {yaml: "brokr: x\n", want: "field brokr not found"},
		"ErrBadDevice":         {args: "--device=pi/kitchen", want: "device"},
		"ErrBadInterval":       {args: "--interval=1ms", want: "interval"},
		"ErrBadBroker":         {args: "--broker=hub:1883", want: "want a URL"},
		"ErrBadTag":            {yaml: "tags:\n  Site: x\n", want: "tag key"},
		"ErrBadPrefix":         {args: "--topic-prefix=$SYS", want: "reserve"},
		"ErrCustomExecAndFile": {yaml: "custom:\n  - name: x\n    exec: [\"true\"]\n    file: /tmp/x\n", want: "not both"},
		"ErrCustomSlowExec":    {yaml: "interval: 1s\ncustom:\n  - name: x\n    exec: [\"true\"]\n    timeout: 2s\n", want: "below the interval"},
		"ErrCustomBadName":     {yaml: "custom:\n  - name: Bad\n    file: /tmp/x\n", want: "name"},
		"ErrBadSpill":          {args: "--spill-interval=1ms", want: "spill_interval"},
		"ErrSmallOutbox":       {yaml: "outbox_max_bytes: 1KiB\n", want: "outbox_max_bytes"},
		"ErrBadSize":           {yaml: "outbox_max_bytes: 64MB\n", want: "want bytes, or a number with KiB"},
		"ErrBadSizeFlag":       {args: "--outbox-max-bytes=-1", want: "want bytes"},
		"ErrBadMaxAge":         {args: "--outbox-max-age=1s", want: "outbox_max_age"},
		"ErrBadReplay":         {yaml: "replay_rate: 0\n", want: "replay_rate"},
	} {
		t.Run(name, func(t *testing.T) {
			var args []string
			if tc.yaml != "" {
				path := filepath.Join(t.TempDir(), "agent.yaml")
				os.WriteFile(path, []byte(tc.yaml), 0o600)
				args = append(args, "--config", path)
			}
			if tc.args != "" {
				args = append(args, tc.args)
			}
			c := DefaultConfig()
			err := c.ParseFlags(args, noEnv, io.Discard)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err=%v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestByteSize_Set(t *testing.T) {
	for in, want := range map[string]ByteSize{
		"0": 0, "65536": 65536, "65536B": 65536, "512KiB": 512 << 10, "64MiB": 64 << 20, "1GiB": 1 << 30, " 2 MiB ": 2 << 20,
	} {
		var got ByteSize
		if err := got.Set(in); err != nil || got != want {
			t.Errorf("Set(%q)=%d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "x", "1.5MiB", "64MB", "-1", "1KiBB", "9999999999GiB"} {
		var b ByteSize
		if err := b.Set(in); err == nil {
			t.Errorf("Set(%q)=%d, want an error", in, b)
		}
	}
	for b, want := range map[ByteSize]string{0: "0B", 1000: "1000B", 64 << 20: "64MiB", 1536 << 10: "1536KiB"} {
		if got := b.String(); got != want {
			t.Errorf("%d.String()=%q, want %q", int64(b), got, want)
		}
	}
}
