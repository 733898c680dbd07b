package notify

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/fleetwatch/fleetwatch/hub"
)

// message is one queued notification: a copy of the alert as it was when
// queued, so later updates don't change what a retry sends.
type message struct {
	alert  hub.Alert
	repeat bool
}

// jsonVersion is bumped if the envelope of the json format ever changes
// incompatibly, so consumers can tell.
const jsonVersion = 1

// envelope is the body of the json format.
type envelope struct {
	Version int       `json:"version"`
	Status  string    `json:"status"`
	Repeat  bool      `json:"repeat"`
	Alert   hub.Alert `json:"alert"`
}

// encode renders m in format: the request body and the headers that
// belong to the format. It fails only on an unknown format.
func encode(format string, m message) ([]byte, http.Header, error) {
	a := m.alert
	h := http.Header{}
	switch format {
	case "", FormatJSON:
		b, err := json.Marshal(envelope{Version: jsonVersion, Status: a.State, Repeat: m.repeat, Alert: a})
		if err != nil {
			return nil, nil, fmt.Errorf("encode json: %w", err)
		}
		h.Set("Content-Type", "application/json")
		return b, h, nil
	case FormatNtfy:
		h.Set("Content-Type", "text/plain; charset=utf-8")
		h.Set("Title", headerSafe(fmt.Sprintf("[%s] %s on %s", strings.ToUpper(a.State), a.Rule, a.Device)))
		prio, tag := "3", "white_check_mark"
		switch {
		case !a.Firing():
		case a.Severity == hub.SeverityCritical:
			prio, tag = "5", "rotating_light"
		default:
			prio, tag = "4", "warning"
		}
		h.Set("Priority", prio)
		h.Set("Tags", tag)
		return []byte(summary(a)), h, nil
	case FormatSlack:
		emoji := ":white_check_mark:"
		switch {
		case !a.Firing():
		case a.Severity == hub.SeverityCritical:
			emoji = ":rotating_light:"
		default:
			emoji = ":warning:"
		}
		text := fmt.Sprintf("%s *%s* %s: %s", emoji, strings.ToUpper(a.State), a.Severity, slackEscape(summary(a)))
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false) // the text is already escaped the way Slack wants
		if err := enc.Encode(struct {
			Text string `json:"text"`
		}{text}); err != nil {
			return nil, nil, fmt.Errorf("encode slack: %w", err)
		}
		h.Set("Content-Type", "application/json")
		return buf.Bytes(), h, nil
	default:
		return nil, nil, fmt.Errorf("encode: unknown format %q", format)
	}
}

// summary is the alert's one line for people, made up from its fields when
// the rule did not provide one.
func summary(a hub.Alert) string {
	if a.Summary != "" {
		return a.Summary
	}
	metric := a.Metric
	if metric != "" {
		metric += " "
	}
	return fmt.Sprintf("%s on %s: %s%s (threshold %s)", a.Rule, a.Device, metric,
		strconv.FormatFloat(a.Value, 'g', -1, 64), strconv.FormatFloat(a.Threshold, 'g', -1, 64))
}

// slackEscape escapes the three characters Slack's mrkdwn treats as markup
// (https://api.slack.com/reference/surfaces/formatting#escaping).
var slackEscape = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace

// headerSafe replaces control characters, which net/http refuses in header
// values: a rule or device name with a newline must not make every attempt fail.
func headerSafe(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
}
