package telemetry_test

import (
	"strings"
	"testing"

	"github.com/fleetwatch/fleetwatch/agent/telemetry"
)

func TestValidatePrefix(t *testing.T) {
	tests := []struct {
		prefix string
		ok     bool
	}{
		{"fleetwatch", true},
		{"home/fleet", true},
		{"a", true},
		{"über/flotte", true},
		{strings.Repeat("p", 128), true},
		{strings.Repeat("p", 129), false},
		{"", false},
		{"fleet/+", false},
		{"fleet/#", false},
		{"fleet+x", false},
		{"fleet\x00", false},
		{"$SYS", false},
		{"$share/g", false},
		{"/fleet", false},
		{"fleet/", false},
		{"home//fleet", false},
	}
	for _, tt := range tests {
		err := telemetry.ValidatePrefix(tt.prefix)
		if got := err == nil; got != tt.ok {
			t.Errorf("ValidatePrefix(%q) = %v, want ok=%v", tt.prefix, err, tt.ok)
		}
	}
}

func TestNewTopics(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		for _, tt := range []struct{ prefix, want string }{
			{"", telemetry.DefaultPrefix},
			{"fleetwatch", "fleetwatch"},
			{"home/fleet", "home/fleet"},
		} {
			got, err := telemetry.NewTopics(tt.prefix)
			if err != nil {
				t.Fatalf("NewTopics(%q): %v", tt.prefix, err)
			}
			if got.Prefix != tt.want {
				t.Errorf("NewTopics(%q).Prefix=%q, want %q", tt.prefix, got.Prefix, tt.want)
			}
		}
	})
	t.Run("ErrBadPrefix", func(t *testing.T) {
		for _, prefix := range []string{"a/+", "$SYS", "a//b"} {
			if got, err := telemetry.NewTopics(prefix); err == nil {
				t.Errorf("NewTopics(%q) = %+v, want error", prefix, got)
			}
		}
	})
}

func TestTopics_Builders(t *testing.T) {
	tests := []struct {
		prefix                         string
		telemetry, status, ack, filter string
	}{
		{"fleetwatch", "fleetwatch/pi-kitchen/telemetry", "fleetwatch/pi-kitchen/status", "fleetwatch/pi-kitchen/ack", "fleetwatch/+/telemetry"},
		{"home/fleet", "home/fleet/pi-kitchen/telemetry", "home/fleet/pi-kitchen/status", "home/fleet/pi-kitchen/ack", "home/fleet/+/telemetry"},
	}
	for _, tt := range tests {
		tp := telemetry.Topics{Prefix: tt.prefix}
		for _, c := range []struct{ what, got, want string }{
			{"Telemetry", tp.Telemetry(testDevice), tt.telemetry},
			{"Status", tp.Status(testDevice), tt.status},
			{"Ack", tp.Ack(testDevice), tt.ack},
			{"Filter", tp.Filter(telemetry.KindTelemetry), tt.filter},
		} {
			if c.got != c.want {
				t.Errorf("%q %s=%q, want %q", tt.prefix, c.what, c.got, c.want)
			}
		}
		// What the builders make, Parse takes apart.
		for kind, topic := range map[string]string{
			telemetry.KindTelemetry: tp.Telemetry(testDevice),
			telemetry.KindStatus:    tp.Status(testDevice),
			telemetry.KindAck:       tp.Ack(testDevice),
		} {
			device, gotKind, err := tp.Parse(topic)
			if err != nil || device != testDevice || gotKind != kind {
				t.Errorf("Parse(%q) = %q, %q, %v; want %q, %q, nil", topic, device, gotKind, err, testDevice, kind)
			}
		}
	}
}

func TestTopics_Parse(t *testing.T) {
	tests := []struct {
		name, prefix, topic string
		device, kind        string
		reason              string
	}{
		{"OK", "fleetwatch", "fleetwatch/pi-kitchen/telemetry", "pi-kitchen", "telemetry", ""},
		{"OK/multi-level prefix", "home/fleet", "home/fleet/pi.2/status", "pi.2", "status", ""},
		{"OK/unknown kind returned as is", "fleetwatch", "fleetwatch/pi/logs", "pi", "logs", ""},
		{"OK/empty kind returned as is", "fleetwatch", "fleetwatch/pi/", "pi", "", ""},
		{"wrong prefix", "fleetwatch", "other/pi/telemetry", "", "", telemetry.ReasonBadTopic},
		{"prefix is a word prefix", "fleet", "fleetwatch/pi/telemetry", "", "", telemetry.ReasonBadTopic},
		{"prefix only", "fleetwatch", "fleetwatch", "", "", telemetry.ReasonBadTopic},
		{"no kind", "fleetwatch", "fleetwatch/pi", "", "", telemetry.ReasonBadTopic},
		{"extra level", "fleetwatch", "fleetwatch/pi/telemetry/x", "", "", telemetry.ReasonBadTopic},
		{"bad device id", "fleetwatch", "fleetwatch/-pi/telemetry", "", "", telemetry.ReasonBadDevice},
		{"empty device id", "fleetwatch", "fleetwatch//telemetry", "", "", telemetry.ReasonBadDevice},
		{"device id too long", "fleetwatch", "fleetwatch/" + strings.Repeat("d", 65) + "/telemetry", "", "", telemetry.ReasonBadDevice},
	}
	for _, tt := range tests {
		name := tt.name
		if tt.reason != "" {
			name = errName(tt.reason) + "/" + tt.name
		}
		t.Run(name, func(t *testing.T) {
			device, kind, err := telemetry.Topics{Prefix: tt.prefix}.Parse(tt.topic)
			if got, want := reasonOf(t, err), tt.reason; got != want {
				t.Fatalf("Parse(%q): Reason=%q, want %q (err: %v)", tt.topic, got, want, err)
			}
			if device != tt.device || kind != tt.kind {
				t.Errorf("Parse(%q) = %q, %q; want %q, %q", tt.topic, device, kind, tt.device, tt.kind)
			}
		})
	}
}
