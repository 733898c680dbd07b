package buildinfo

import (
	"strings"
	"testing"
)

func TestVersion(t *testing.T) {
	if got, want := Version("v1.2.3"), "v1.2.3"; got != want {
		t.Fatalf("Version(%q)=%q, want %q", "v1.2.3", got, want)
	}
	// A test binary carries no VCS stamp: the fallback is "dev".
	if got := Version(""); !strings.HasPrefix(got, "dev") {
		t.Fatalf("Version(\"\")=%q, want dev or dev-<revision>", got)
	}
}
