package notify

import (
	"errors"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strings"
	"time"
)

// Defaults used when the corresponding field is zero (or negative, for the
// Notifier's tuning fields).
const (
	DefaultTimeout     = 10 * time.Second
	DefaultRepeat      = 4 * time.Hour
	DefaultQueue       = 256
	DefaultAttempts    = 8
	DefaultMinBackoff  = time.Second
	DefaultMaxBackoff  = time.Minute
	DefaultRepeatCheck = time.Second
)

// Receiver formats.
const (
	FormatJSON  = "json"
	FormatNtfy  = "ntfy"
	FormatSlack = "slack"
)

// Receiver is one webhook that alerts are posted to.
type Receiver struct {
	Name    string            // unique, non-empty; used in logs and errors instead of the URL
	URL     string            // http or https with a host
	Format  string            // FormatJSON (default when empty), FormatNtfy or FormatSlack
	Headers map[string]string // extra request headers (e.g. Authorization); they override the format's
	Timeout time.Duration     // per request; 0 means DefaultTimeout
	// RepeatInterval is how often a still-firing alert is sent again;
	// 0 means DefaultRepeat, negative means never.
	RepeatInterval time.Duration
}

// Validate reports the first problem with r, naming the receiver and field.
// It never includes the URL or header values: they may hold secrets.
func (r Receiver) Validate() error {
	bad := func(field, format string, args ...any) error {
		return fmt.Errorf("receiver %q: %s: %s", r.Name, field, fmt.Sprintf(format, args...))
	}
	if r.Name == "" {
		return bad("name", "must not be empty")
	}
	if r.URL == "" {
		return bad("url", "must not be empty")
	}
	u, err := url.Parse(r.URL)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // url.Error repeats the URL
		}
		return bad("url", "invalid: %v", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return bad("url", "scheme must be http or https")
	}
	if u.Host == "" {
		return bad("url", "missing host")
	}
	switch r.Format {
	case "", FormatJSON, FormatNtfy, FormatSlack:
	default:
		return bad("format", "%q is not one of json, ntfy, slack", r.Format)
	}
	for _, k := range slices.Sorted(maps.Keys(r.Headers)) {
		if !validHeaderName(k) {
			return bad("headers", "invalid header name %q", k)
		}
		if !validHeaderValue(r.Headers[k]) {
			return bad("headers", "header %q: value contains control characters", k)
		}
	}
	if r.Timeout < 0 {
		return bad("timeout", "must not be negative")
	}
	return nil
}

// withDefaults returns r with zero fields replaced by their defaults.
func (r Receiver) withDefaults() Receiver {
	if r.Format == "" {
		r.Format = FormatJSON
	}
	if r.Timeout == 0 {
		r.Timeout = DefaultTimeout
	}
	if r.RepeatInterval == 0 {
		r.RepeatInterval = DefaultRepeat
	}
	return r
}

// validateAll validates each receiver and the uniqueness of their names,
// reporting every problem at once so a config can be fixed in one go.
func validateAll(rs []Receiver) error {
	var errs []error
	seen := make(map[string]bool, len(rs))
	for _, r := range rs {
		if err := r.Validate(); err != nil {
			errs = append(errs, err)
			continue
		}
		if seen[r.Name] {
			errs = append(errs, fmt.Errorf("receiver %q: name: duplicate", r.Name))
		}
		seen[r.Name] = true
	}
	return errors.Join(errs...)
}

// validHeaderName reports whether k is an RFC 9110 token.
func validHeaderName(k string) bool {
	if k == "" {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// validHeaderValue rejects control characters, which net/http refuses to
// send; caught here they are a config error instead of endless retries.
func validHeaderValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; (c < 0x20 && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}
