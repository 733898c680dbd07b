// Package buildinfo names the version of a fleetwatch binary, for logs and
// the agent's online status. Both binaries use it; it links nothing but the
// standard library.
package buildinfo

import "runtime/debug"

// Version returns stamped (set with -ldflags "-X main.Version=...") when
// given, else "dev-<revision>" from the VCS stamp of a `go build` in a
// checkout, else "dev".
func Version(stamped string) string {
	if stamped != "" {
		return stamped
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				return "dev-" + s.Value[:12]
			}
		}
	}
	return "dev"
}
