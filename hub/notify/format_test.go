package notify

import (
	"encoding/json"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/fleetwatch/fleetwatch/hub"
)

func TestFormat(t *testing.T) {
	crit := firing("a1")
	warn := firing("a2")
	warn.Severity = hub.SeverityWarning
	warn.Summary = "pi-7 temp 71 > 70"
	bare := firing("a3")
	bare.Summary = ""
	markup := firing("a4")
	markup.Summary = "load <high> & rising > 5"

	// jsonOf renders v as the structure a receiver would decode.
	jsonOf := func(v any) any {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		var out any
		if err := json.Unmarshal(b, &out); err != nil {
			t.Fatal(err)
		}
		return out
	}
	tests := []struct {
		name        string
		format      string
		alert       hub.Alert
		contentType string
		headers     map[string]string // besides Content-Type, User-Agent and Authorization
		jsonBody    any               // compared structurally when set
		textBody    string            // compared exactly otherwise
	}{
		{name: "json firing", format: "", alert: crit, contentType: "application/json",
			jsonBody: map[string]any{"version": 1, "status": "firing", "repeat": false, "alert": crit}},
		{name: "json resolved", format: FormatJSON, alert: resolved(crit), contentType: "application/json",
			jsonBody: map[string]any{"version": 1, "status": "resolved", "repeat": false, "alert": resolved(crit)}},
		{name: "ntfy critical", format: FormatNtfy, alert: crit, contentType: "text/plain; charset=utf-8",
			headers:  map[string]string{"Title": "[FIRING] cpu-high on pi-7", "Priority": "5", "Tags": "rotating_light"},
			textBody: crit.Summary},
		{name: "ntfy warning", format: FormatNtfy, alert: warn, contentType: "text/plain; charset=utf-8",
			headers:  map[string]string{"Title": "[FIRING] cpu-high on pi-7", "Priority": "4", "Tags": "warning"},
			textBody: warn.Summary},
		{name: "ntfy resolved", format: FormatNtfy, alert: resolved(crit), contentType: "text/plain; charset=utf-8",
			headers:  map[string]string{"Title": "[RESOLVED] cpu-high on pi-7", "Priority": "3", "Tags": "white_check_mark"},
			textBody: crit.Summary},
		{name: "ntfy generated summary", format: FormatNtfy, alert: bare, contentType: "text/plain; charset=utf-8",
			headers:  map[string]string{"Title": "[FIRING] cpu-high on pi-7"},
			textBody: "cpu-high on pi-7: cpu.percent 97.2 (threshold 90)"},
		{name: "slack critical", format: FormatSlack, alert: crit, contentType: "application/json",
			jsonBody: map[string]any{"text": ":rotating_light: *FIRING* critical: pi-7 cpu.percent 97.2 &gt; 90 for 2m"}},
		{name: "slack warning", format: FormatSlack, alert: warn, contentType: "application/json",
			jsonBody: map[string]any{"text": ":warning: *FIRING* warning: pi-7 temp 71 &gt; 70"}},
		{name: "slack resolved", format: FormatSlack, alert: resolved(crit), contentType: "application/json",
			jsonBody: map[string]any{"text": ":white_check_mark: *RESOLVED* critical: pi-7 cpu.percent 97.2 &gt; 90 for 2m"}},
		{name: "slack escapes markup", format: FormatSlack, alert: markup, contentType: "application/json",
			jsonBody: map[string]any{"text": ":rotating_light: *FIRING* critical: load &lt;high&gt; &amp; rising &gt; 5"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newServer(t, nil)
			n := testNotifier(Receiver{Name: "r", URL: srv.URL + "/hook", Format: tt.format,
				Headers: map[string]string{"Authorization": "Bearer tk_1"}})
			start(t, n)
			n.Notify(tt.alert)
			waitFor(t, "one request", func() bool { return srv.count() == 1 })
			h := srv.received()[0]

			if h.Method != http.MethodPost {
				t.Errorf("method: got %s, want POST", h.Method)
			}
			want := map[string]string{"Content-Type": tt.contentType, "User-Agent": "fleetwatch-hub", "Authorization": "Bearer tk_1"}
			for k, v := range tt.headers {
				want[k] = v
			}
			for k, v := range want {
				if got := h.Header.Get(k); got != v {
					t.Errorf("header %s: got %q, want %q", k, got, v)
				}
			}
			if tt.jsonBody != nil {
				var got any
				if err := json.Unmarshal(h.Body, &got); err != nil {
					t.Fatalf("body %q: %v", h.Body, err)
				}
				if want := jsonOf(tt.jsonBody); !reflect.DeepEqual(got, want) {
					t.Errorf("body: got %v, want %v", got, want)
				}
			} else if got := string(h.Body); got != tt.textBody {
				t.Errorf("body: got %q, want %q", got, tt.textBody)
			}
		})
	}
}

func TestFormat_repeatFlag(t *testing.T) {
	b, _, err := encode(FormatJSON, message{alert: firing("a1"), repeat: true})
	if err != nil {
		t.Fatal(err)
	}
	var got struct{ Repeat bool }
	if err := json.Unmarshal(b, &got); err != nil || !got.Repeat {
		t.Errorf("got repeat %v (err %v), want true", got.Repeat, err)
	}
}

func TestFormat_unknown(t *testing.T) {
	_, _, err := encode("xml", message{alert: firing("a1")})
	if err == nil || !strings.Contains(err.Error(), `unknown format "xml"`) {
		t.Errorf("got %v, want an unknown format error", err)
	}
}

func TestFormat_controlCharsInTitle(t *testing.T) {
	a := firing("a1")
	a.Device = "pi\r\n7"
	_, h, err := encode(FormatNtfy, message{alert: a})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := h.Get("Title"), "[FIRING] cpu-high on pi  7"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}
