package collector

import (
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestReadModel(t *testing.T) {
	dir := t.TempDir()
	dt := filepath.Join(dir, "device-tree-model")
	empty := filepath.Join(dir, "empty")
	dmi := filepath.Join(dir, "product_name")
	writeFile(t, dt, "Raspberry Pi 4 Model B Rev 1.4\x00")
	writeFile(t, empty, "\x00\n")
	writeFile(t, dmi, "Standard PC (Q35 + ICH9, 2009)\n")
	missing := filepath.Join(dir, "missing")

	tests := []struct {
		name  string
		paths []string
		want  string
	}{
		{"device tree with NUL", []string{dt, dmi}, "Raspberry Pi 4 Model B Rev 1.4"},
		{"falls back past missing and empty", []string{missing, empty, dmi}, "Standard PC (Q35 + ICH9, 2009)"},
		{"none", []string{missing}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := readModel(tt.paths); got != tt.want {
				t.Errorf("readModel() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestCleanText(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"trailing NUL", "Pi 5\x00", "Pi 5"},
		{"control bytes", "a\tb\x01c\n", "a b c"},
		{"long", strings.Repeat("é", 200), strings.Repeat("é", 128)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := cleanText(tt.in); got != tt.want {
				t.Errorf("cleanText(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestReadInventory(t *testing.T) {
	inv, err := ReadInventory(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if inv.Hostname == "" || inv.OS == "" || inv.Arch == "" {
		t.Errorf("got %+v, want hostname, os and arch", inv)
	}
	if inv.HostBoot.IsZero() || inv.HostBoot.After(time.Now()) {
		t.Errorf("host boot = %v, want a time in the past", inv.HostBoot)
	}
	t.Logf("%+v", inv)
}
