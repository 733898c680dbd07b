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
		"ErrUnknownKey":  {yaml: "brokr: x\n", want: "field brokr not found"},
		"ErrBadDevice":   {args: "--device=pi/kitchen", want: "device"},
		"ErrBadInterval": {args: "--interval=1ms", want: "interval"},
		"ErrBadBroker":   {args: "--broker=hub:1883", want: "want a URL"},
		"ErrBadTag":      {yaml: "tags:\n  Site: x\n", want: "tag key"},
		"ErrBadPrefix":   {args: "--topic-prefix=$SYS", want: "reserve"},
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
