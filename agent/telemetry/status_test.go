package telemetry_test

import (
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/fleetwatch/fleetwatch/agent/telemetry"
)

func TestDecodeStatus(t *testing.T) {
	online := `"v":1,"state":"online","boot":"` + testBoot + `"`
	tests := []struct {
		name    string
		payload string
		want    telemetry.Status // checked when reason is ""
		reason  string
	}{
		{"OK/online minimal", `{` + online + `}`, telemetry.Status{V: 1, State: "online", Boot: testBoot}, ""},
		{"OK/online inventory", `{` + online + `,"hostname":"pi-kitchen","model":"Raspberry Pi Zero 2 W Rev 1.0","interval_ms":5000,"started":1,"host_boot":2}`,
			telemetry.Status{V: 1, State: "online", Boot: testBoot, Hostname: "pi-kitchen", Model: "Raspberry Pi Zero 2 W Rev 1.0", IntervalMS: 5000, Started: 1, HostBoot: 2}, ""},
		{"OK/offline lost", `{"v":1,"state":"offline","reason":"lost"}`, telemetry.Offline(telemetry.ReasonLost), ""},
		{"OK/offline shutdown", `{"v":1,"state":"offline","reason":"shutdown"}`, telemetry.Offline(telemetry.ReasonShutdown), ""},
		{"OK/offline timeout", `{"v":1,"state":"offline","reason":"timeout"}`, telemetry.Offline(telemetry.ReasonTimeout), ""},
		{"OK/offline with boot", `{"v":1,"state":"offline","reason":"shutdown","boot":"b-1"}`,
			telemetry.Status{V: 1, State: "offline", Reason: "shutdown", Boot: "b-1"}, ""},
		{"OK/unknown keys ignored", `{` + online + `,"battery":{"percent":80},"x":null}`, telemetry.Status{V: 1, State: "online", Boot: testBoot}, ""},
		{"OK/256-byte model", `{` + online + `,"model":"` + strings.Repeat("m", 256) + `"}`,
			telemetry.Status{V: 1, State: "online", Boot: testBoot, Model: strings.Repeat("m", 256)}, ""},
		{"OK/started at max ts", fmt.Sprintf(`{%s,"started":%d}`, online, int64(telemetry.MaxTimestamp)),
			telemetry.Status{V: 1, State: "online", Boot: testBoot, Started: telemetry.MaxTimestamp}, ""},

		{"not json", `online`, telemetry.Status{}, telemetry.ReasonBadJSON},
		{"truncated", `{"v":1,"state":"onl`, telemetry.Status{}, telemetry.ReasonBadJSON},
		{"state a number", `{"v":1,"state":1}`, telemetry.Status{}, telemetry.ReasonBadJSON},
		{"missing v", `{"state":"offline","reason":"lost"}`, telemetry.Status{}, telemetry.ReasonBadVersion},
		{"v=2", `{"v":2,"state":"offline","reason":"lost"}`, telemetry.Status{}, telemetry.ReasonBadVersion},
		{"null", `null`, telemetry.Status{}, telemetry.ReasonBadVersion},
		{"missing state", `{"v":1}`, telemetry.Status{}, telemetry.ReasonBadStatus},
		{"unknown state", `{"v":1,"state":"sleeping"}`, telemetry.Status{}, telemetry.ReasonBadStatus},
		{"online with reason", `{` + online + `,"reason":"lost"}`, telemetry.Status{}, telemetry.ReasonBadStatus},
		{"offline without reason", `{"v":1,"state":"offline"}`, telemetry.Status{}, telemetry.ReasonBadStatus},
		{"offline unknown reason", `{"v":1,"state":"offline","reason":"crashed"}`, telemetry.Status{}, telemetry.ReasonBadStatus},
		{"hostname control char", `{` + online + `,"hostname":"pi\u0007"}`, telemetry.Status{}, telemetry.ReasonBadStatus},
		{"os invalid UTF-8", `{` + online + `,"os":"lin` + "\xff" + `ux"}`, telemetry.Status{}, telemetry.ReasonBadStatus},
		{"257-byte model", `{` + online + `,"model":"` + strings.Repeat("m", 257) + `"}`, telemetry.Status{}, telemetry.ReasonBadStatus},
		{"negative interval", `{` + online + `,"interval_ms":-1}`, telemetry.Status{}, telemetry.ReasonBadStatus},
		{"negative started", `{` + online + `,"started":-1}`, telemetry.Status{}, telemetry.ReasonBadStatus},
		{"host_boot after year 9999", fmt.Sprintf(`{%s,"host_boot":%d}`, online, int64(telemetry.MaxTimestamp)+1), telemetry.Status{}, telemetry.ReasonBadStatus},
		{"online without boot", `{"v":1,"state":"online"}`, telemetry.Status{}, telemetry.ReasonBadBoot},
		{"online bad boot", `{"v":1,"state":"online","boot":"a b"}`, telemetry.Status{}, telemetry.ReasonBadBoot},
		{"offline bad boot", `{"v":1,"state":"offline","reason":"lost","boot":"a/b"}`, telemetry.Status{}, telemetry.ReasonBadBoot},
		{"over 16 KiB", `{"v":1,"state":"offline","reason":"lost"}` + strings.Repeat(" ", 16<<10), telemetry.Status{}, telemetry.ReasonTooLarge},
	}
	for _, tt := range tests {
		name := tt.name
		if tt.reason != "" {
			name = errName(tt.reason) + "/" + tt.name
		}
		t.Run(name, func(t *testing.T) {
			got, err := telemetry.DecodeStatus([]byte(tt.payload))
			if gotReason := reasonOf(t, err); gotReason != tt.reason {
				t.Fatalf("DecodeStatus(%.80q): Reason=%q, want %q (err: %v)", tt.payload, gotReason, tt.reason, err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("DecodeStatus(%.80q) = %+v, want %+v", tt.payload, got, tt.want)
			}
		})
	}
}

func TestStatus_Encode(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		s := telemetry.Status{V: 1, State: telemetry.StateOnline, Boot: testBoot, Hostname: "<pi> & co", IntervalMS: 5000}
		b, err := s.Encode()
		if err != nil {
			t.Fatal(err)
		}
		got, err := telemetry.DecodeStatus(b)
		if err != nil {
			t.Fatalf("decode %s: %v", b, err)
		}
		if got != s {
			t.Errorf("round trip = %+v, want %+v", got, s)
		}
	})
	for _, tt := range []struct {
		name   string
		s      telemetry.Status
		reason string
	}{
		{"zero", telemetry.Status{}, telemetry.ReasonBadVersion},
		{"online without boot", telemetry.Status{V: 1, State: telemetry.StateOnline}, telemetry.ReasonBadBoot},
		{"bad reason", telemetry.Offline("gone"), telemetry.ReasonBadStatus},
	} {
		t.Run(errName(tt.reason)+"/"+tt.name, func(t *testing.T) {
			b, err := tt.s.Encode()
			if got, want := reasonOf(t, err), tt.reason; got != want {
				t.Fatalf("Encode(%+v) = %s, %v; want reason %q", tt.s, b, err, want)
			}
		})
	}
}

func TestOffline(t *testing.T) {
	for _, reason := range []string{telemetry.ReasonLost, telemetry.ReasonShutdown, telemetry.ReasonTimeout} {
		s := telemetry.Offline(reason)
		if got, want := s, (telemetry.Status{V: telemetry.Version, State: telemetry.StateOffline, Reason: reason}); got != want {
			t.Errorf("Offline(%q) = %+v, want %+v", reason, got, want)
		}
		if err := s.Validate(); err != nil {
			t.Errorf("Offline(%q).Validate() = %v, want nil", reason, err)
		}
	}
}

func TestDecodeAck(t *testing.T) {
	tests := []struct {
		name    string
		payload string
		want    telemetry.Ack
		reason  string
	}{
		{"OK", `{"v":1,"boot":"` + testBoot + `","seq":41}`, telemetry.Ack{V: 1, Boot: testBoot, Seq: 41}, ""},
		{"OK/seq 0", `{"v":1,"boot":"b","seq":0}`, telemetry.Ack{V: 1, Boot: "b"}, ""},
		{"OK/max seq", `{"v":1,"boot":"b","seq":18446744073709551615}`, telemetry.Ack{V: 1, Boot: "b", Seq: 1<<64 - 1}, ""},
		{"OK/unknown keys ignored", `{"seq":2,"boot":"b","v":1,"committed_at":123}`, telemetry.Ack{V: 1, Boot: "b", Seq: 2}, ""},

		{"not json", `ack`, telemetry.Ack{}, telemetry.ReasonBadJSON},
		{"negative seq", `{"v":1,"boot":"b","seq":-1}`, telemetry.Ack{}, telemetry.ReasonBadJSON},
		{"seq a string", `{"v":1,"boot":"b","seq":"1"}`, telemetry.Ack{}, telemetry.ReasonBadJSON},
		{"seq a fraction", `{"v":1,"boot":"b","seq":1.5}`, telemetry.Ack{}, telemetry.ReasonBadJSON},
		{"missing v", `{"boot":"b","seq":1}`, telemetry.Ack{}, telemetry.ReasonBadVersion},
		{"v=2", `{"v":2,"boot":"b","seq":1}`, telemetry.Ack{}, telemetry.ReasonBadVersion},
		{"null", `null`, telemetry.Ack{}, telemetry.ReasonBadVersion},
		{"missing boot", `{"v":1,"seq":1}`, telemetry.Ack{}, telemetry.ReasonBadAck},
		{"missing seq", `{"v":1,"boot":"b"}`, telemetry.Ack{}, telemetry.ReasonBadAck},
		{"null seq", `{"v":1,"boot":"b","seq":null}`, telemetry.Ack{}, telemetry.ReasonBadAck},
		{"empty boot", `{"v":1,"boot":"","seq":1}`, telemetry.Ack{}, telemetry.ReasonBadBoot},
		{"bad boot", `{"v":1,"boot":"a+b","seq":1}`, telemetry.Ack{}, telemetry.ReasonBadBoot},
		{"over 1 KiB", `{"v":1,"boot":"b","seq":1}` + strings.Repeat(" ", 1024), telemetry.Ack{}, telemetry.ReasonTooLarge},
	}
	for _, tt := range tests {
		name := tt.name
		if tt.reason != "" {
			name = errName(tt.reason) + "/" + tt.name
		}
		t.Run(name, func(t *testing.T) {
			got, err := telemetry.DecodeAck([]byte(tt.payload))
			if gotReason := reasonOf(t, err); gotReason != tt.reason {
				t.Fatalf("DecodeAck(%.80q): Reason=%q, want %q (err: %v)", tt.payload, gotReason, tt.reason, err)
			}
			if got != tt.want {
				t.Errorf("DecodeAck(%.80q) = %+v, want %+v", tt.payload, got, tt.want)
			}
		})
	}
}

func TestAck_Encode(t *testing.T) {
	for _, a := range []telemetry.Ack{{V: 1, Boot: testBoot, Seq: 41}, {V: 1, Boot: "b"}, {V: 1, Boot: "b", Seq: 1<<64 - 1}} {
		b := a.Encode()
		got, err := telemetry.DecodeAck(b)
		if err != nil {
			t.Fatalf("DecodeAck(%s): %v", b, err)
		}
		if got != a {
			t.Errorf("DecodeAck(%s) = %+v, want %+v", b, got, a)
		}
	}
}

func TestValidateDeviceID(t *testing.T) {
	tests := []struct {
		id string
		ok bool
	}{
		{"pi-kitchen", true},
		{"Pi_Kitchen.2", true},
		{"0", true},
		{"a", true},
		{"a" + strings.Repeat("-", 63), true},
		{strings.Repeat("x", 64), true},
		{strings.Repeat("x", 65), false},
		{"", false},
		{"-pi", false},
		{"_pi", false},
		{".pi", false},
		{"pi kitchen", false},
		{"pi/kitchen", false},
		{"pi+", false},
		{"pi#", false},
		{"pi:1", false},
		{"küche", false},
		{"pi\x00", false},
	}
	for _, tt := range tests {
		err := telemetry.ValidateDeviceID(tt.id)
		if got := err == nil; got != tt.ok {
			t.Errorf("ValidateDeviceID(%q) = %v, want ok=%v", tt.id, err, tt.ok)
			continue
		}
		if !tt.ok {
			if got, want := reasonOf(t, err), telemetry.ReasonBadDevice; got != want {
				t.Errorf("ValidateDeviceID(%q): Reason=%q, want %q", tt.id, got, want)
			}
		}
	}
}

func TestValidateBootID(t *testing.T) {
	tests := []struct {
		id string
		ok bool
	}{
		{testBoot, true},
		{"0", true},
		{"-", true},
		{"2025-11-28T22:20:00.123Z", true},
		{"_a.b:c-d", true},
		{strings.Repeat("b", 64), true},
		{strings.Repeat("b", 65), false},
		{"", false},
		{"a b", false},
		{"a/b", false},
		{"a+b", false},
		{"a#", false},
		{"é", false},
		{"a\n", false},
	}
	for _, tt := range tests {
		err := telemetry.ValidateBootID(tt.id)
		if got := err == nil; got != tt.ok {
			t.Errorf("ValidateBootID(%q) = %v, want ok=%v", tt.id, err, tt.ok)
			continue
		}
		if !tt.ok {
			if got, want := reasonOf(t, err), telemetry.ReasonBadBoot; got != want {
				t.Errorf("ValidateBootID(%q): Reason=%q, want %q", tt.id, got, want)
			}
		}
	}
}

func TestSanitizeDeviceID(t *testing.T) {
	tests := []struct {
		name, in, want string
		err            bool
	}{
		{"valid unchanged", "pi-kitchen", "pi-kitchen", false},
		{"space and bang", "Pi Kitchen!", "Pi-Kitchen-", false},
		{"leading underscore", "_x", "x", false},
		{"leading junk", "-._x", "x", false},
		{"surrounding space", "  raspberrypi \n", "raspberrypi", false},
		{"fqdn", "pi.home.lan", "pi.home.lan", false},
		{"non-ascii bytes", "küche", "k--che", false},
		{"leading non-ascii", "über", "ber", false},
		{"cut at 64", strings.Repeat("ab", 40), strings.Repeat("ab", 32), false},
		{"cut after trim", "__" + strings.Repeat("c", 70), strings.Repeat("c", 64), false},
		{"empty", "", "", true},
		{"only space", "   ", "", true},
		{"only junk", "!!!", "", true},
		{"only non-ascii", "ü", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := telemetry.SanitizeDeviceID(tt.in)
			if (err != nil) != tt.err {
				t.Fatalf("SanitizeDeviceID(%q) = %q, %v; want error %v", tt.in, got, err, tt.err)
			}
			if got != tt.want {
				t.Errorf("SanitizeDeviceID(%q) = %q, want %q", tt.in, got, tt.want)
			}
			if err == nil {
				if verr := telemetry.ValidateDeviceID(got); verr != nil {
					t.Errorf("SanitizeDeviceID(%q) = %q, which is invalid: %v", tt.in, got, verr)
				}
			}
		})
	}
}
