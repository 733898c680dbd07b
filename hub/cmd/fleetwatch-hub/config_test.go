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
		if got, want := c.HTTP, ":8080"; got != want {
			t.Fatalf("HTTP=%q, want %q", got, want)
		}
		if got, want := c.Broker, ""; got != want {
			t.Fatalf("Broker=%q, want %q (embedded)", got, want)
		}
	})

	t.Run("ExampleFileIsValid", func(t *testing.T) {
		c := DefaultConfig()
		if err := c.ParseFlags([]string{"--config", "../../../configs/hub.example.yaml"}, noEnv, io.Discard); err != nil {
			t.Fatal(err)
		}
		if got, want := c.CommitInterval, 500*time.Millisecond; got != want {
			t.Fatalf("CommitInterval=%s, want %s", got, want)
		}
		rules, err := c.Alerts.rules()
		if err != nil {
			t.Fatal(err)
		}
		// The four built-ins, then cpu_hot and disk_almost_full.
		if len(rules) != 6 || rules[4].Name != "cpu_hot" || *rules[4].Clear != 75 || *rules[4].Overrides["pi-build"].Warn != 98 {
			t.Errorf("rules = %+v, want the built-ins then cpu_hot (clear 75, pi-build warn 98) and disk_almost_full", rules)
		}
	})

	t.Run("PrecedenceFileEnvFlag", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "hub.yaml")
		os.WriteFile(path, []byte("http: \":1\"\ndata: /from/file\ntopic_prefix: file\n"), 0o600)
		env := map[string]string{"FLEETWATCH_DATA": "/from/env", "FLEETWATCH_TOPIC_PREFIX": "env"}
		c := DefaultConfig()
		err := c.ParseFlags([]string{"--config", path, "--topic-prefix", "flag"}, func(k string) string { return env[k] }, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := c.HTTP, ":1"; got != want {
			t.Fatalf("HTTP=%q, want %q (file)", got, want)
		}
		if got, want := c.Data, "/from/env"; got != want {
			t.Fatalf("Data=%q, want %q (env over file)", got, want)
		}
		if got, want := c.TopicPrefix, "flag"; got != want {
			t.Fatalf("TopicPrefix=%q, want %q (flag over env)", got, want)
		}
	})

	for name, tc := range map[string]struct {
		yaml, args, want string
	}{
		"ErrUnknownKey":       {yaml: "htp: \":1\"\n", want: "field htp not found"},
		"ErrBadPrefix":        {args: "--topic-prefix=a/+/b", want: "wildcard"},
		"ErrBadBroker":        {args: "--broker=localhost:1883", want: "want a URL"},
		"ErrBadLogLevel":      {args: "--log-level=loud", want: "log_level"},
		"ErrBadCommit":        {args: "--commit-interval=0s", want: "commit_interval"},
		"ErrExtraArgs":        {args: "extra", want: "unexpected arguments"},
		"ErrBadYAMLTypes":     {yaml: "commit_interval: fast\n", want: "time.Duration"},
		"ErrAlertUnknownKey":  {yaml: "alerts:\n  rules:\n    - {name: hot, metric: cpu.percent, op: \">\", warn: 80, level: 3}\n", want: "field level not found"},
		"ErrAlertBadBuiltin":  {yaml: "alerts:\n  builtin:\n    cpu_offline: {for: 1m}\n", want: "no such built-in rule"},
		"ErrAlertBuiltinName": {yaml: "alerts:\n  rules:\n    - {name: device_stale, metric: cpu.percent, op: \">\", warn: 1}\n", want: "taken by a built-in"},
		"ErrAlertNoLevel":     {yaml: "alerts:\n  rules:\n    - {name: hot, metric: cpu.percent, op: \">\"}\n", want: "needs warn or crit"},
		"ErrAlertBadClear":    {yaml: "alerts:\n  rules:\n    - {name: hot, metric: cpu.percent, op: \">\", warn: 80, clear: 90}\n", want: "clear 90 would still be firing"},
		"ErrWebhookURL":       {yaml: "alerts:\n  webhooks:\n    - {name: x, url: \"ftp://example.com\"}\n", want: "webhooks[0]"},
		"ErrWebhookFormat":    {yaml: "alerts:\n  webhooks:\n    - {name: x, url: \"http://127.0.0.1:9/\", format: teams}\n", want: "webhooks[0]"},
	} {
		t.Run(name, func(t *testing.T) {
			var args []string
			if tc.yaml != "" {
				path := filepath.Join(t.TempDir(), "hub.yaml")
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
