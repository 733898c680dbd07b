package notify

import (
	"strings"
	"testing"
	"time"
)

func TestReceiver_Validate(t *testing.T) {
	ok := Receiver{Name: "ops", URL: "https://hooks.example.com/T0/B0/s3cret"}
	with := func(f func(*Receiver)) Receiver {
		r := ok
		f(&r)
		return r
	}
	tests := []struct {
		name string
		r    Receiver
		want string // substring of the error; "" means valid
	}{
		{"minimal", ok, ""},
		{"http ntfy with headers", with(func(r *Receiver) {
			r.URL, r.Format = "http://ntfy.local:8080/alerts", FormatNtfy
			r.Headers = map[string]string{"Authorization": "Bearer tk_1\tx"}
		}), ""},
		{"slack", with(func(r *Receiver) { r.Format = FormatSlack }), ""},
		{"json explicit", with(func(r *Receiver) { r.Format = FormatJSON }), ""},
		{"negative repeat means never", with(func(r *Receiver) { r.RepeatInterval = -1 }), ""},
		{"empty name", with(func(r *Receiver) { r.Name = "" }), `receiver "": name: must not be empty`},
		{"empty url", with(func(r *Receiver) { r.URL = "" }), `receiver "ops": url: must not be empty`},
		{"no scheme", with(func(r *Receiver) { r.URL = "hooks.example.com/x" }), `receiver "ops": url: scheme must be http or https`},
		{"ftp", with(func(r *Receiver) { r.URL = "ftp://example.com/x" }), `receiver "ops": url: scheme must be http or https`},
		{"no host", with(func(r *Receiver) { r.URL = "https:///path" }), `receiver "ops": url: missing host`},
		{"unparsable", with(func(r *Receiver) { r.URL = "http://[::1/s3cret" }), `receiver "ops": url: invalid`},
		{"unknown format", with(func(r *Receiver) { r.Format = "xml" }), `receiver "ops": format: "xml" is not one of json, ntfy, slack`},
		{"bad header name", with(func(r *Receiver) { r.Headers = map[string]string{"X Token": "v"} }), `receiver "ops": headers: invalid header name "X Token"`},
		{"bad header value", with(func(r *Receiver) { r.Headers = map[string]string{"X-Token": "s3cret\r\nEvil: 1"} }), `receiver "ops": headers: header "X-Token": value contains control characters`},
		{"negative timeout", with(func(r *Receiver) { r.Timeout = -time.Second }), `receiver "ops": timeout: must not be negative`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.r.Validate()
			if tt.want == "" {
				if err != nil {
					t.Fatalf("got %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("got nil, want error containing %q", tt.want)
			}
			if got := err.Error(); !strings.Contains(got, tt.want) {
				t.Errorf("got %q, want it to contain %q", got, tt.want)
			}
			if got := err.Error(); strings.Contains(got, "s3cret") {
				t.Errorf("got %q, want no secret from the URL or headers", got)
			}
		})
	}
}

func TestReceiver_withDefaults(t *testing.T) {
	got := Receiver{Name: "a", URL: "http://x"}.withDefaults()
	if got.Format != FormatJSON || got.Timeout != DefaultTimeout || got.RepeatInterval != DefaultRepeat {
		t.Errorf("got format %q timeout %v repeat %v, want %q %v %v",
			got.Format, got.Timeout, got.RepeatInterval, FormatJSON, DefaultTimeout, DefaultRepeat)
	}
	got = Receiver{Name: "a", URL: "http://x", Timeout: time.Second, RepeatInterval: -1}.withDefaults()
	if got.Timeout != time.Second || got.RepeatInterval != -1 {
		t.Errorf("got timeout %v repeat %v, want 1s and -1 kept", got.Timeout, got.RepeatInterval)
	}
}
