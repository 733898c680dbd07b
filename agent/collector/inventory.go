package collector

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/shirou/gopsutil/v3/host"
)

// Inventory describes the host for the agent's online status.
type Inventory struct {
	Hostname string
	OS       string // runtime.GOOS, e.g. "linux"
	Platform string // distribution, e.g. "raspbian", "debian"
	Arch     string // kernel arch, e.g. "armv6l", "aarch64", "x86_64"
	Model    string // e.g. "Raspberry Pi 4 Model B Rev 1.4"; "" if unknown
	HostBoot time.Time
}

// modelFiles are where the board or machine model may be found, best
// first: the device tree on ARM boards, DMI on PCs and VMs.
func modelFiles() []string {
	return []string{
		"/proc/device-tree/model",
		"/sys/firmware/devicetree/base/model",
		"/sys/class/dmi/id/product_name",
	}
}

// readModel returns the first non-empty model among paths, "" if none.
func readModel(paths []string) string {
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		if s := cleanText(string(b)); s != "" {
			return s
		}
	}
	return ""
}

// cleanText trims the NUL that ends device-tree strings and whitespace,
// turns control bytes into spaces and cuts to 256 bytes, which is what the
// status message accepts.
func cleanText(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, strings.TrimRight(s, "\x00"))
	s = strings.TrimSpace(s)
	if len(s) > 256 {
		s = strings.ToValidUTF8(s[:256], "")
	}
	return s
}

// ReadInventory describes this host. host.InfoWithContext takes tens of
// milliseconds, so call this once at start, not per reading. On error the
// Inventory still holds what could be found.
func ReadInventory(ctx context.Context) (Inventory, error) {
	inv := Inventory{OS: runtime.GOOS, Arch: runtime.GOARCH, Model: readModel(modelFiles())}
	info, err := host.InfoWithContext(ctx)
	if err != nil {
		inv.Hostname, _ = os.Hostname()
		inv.Hostname = cleanText(inv.Hostname)
		return inv, fmt.Errorf("read host info: %w", err)
	}
	inv.Hostname = cleanText(info.Hostname)
	inv.OS = orDefault(cleanText(info.OS), inv.OS)
	inv.Platform = cleanText(info.Platform)
	inv.Arch = orDefault(cleanText(info.KernelArch), inv.Arch)
	if info.BootTime > 0 {
		inv.HostBoot = time.Unix(int64(info.BootTime), 0)
	}
	return inv, nil
}
