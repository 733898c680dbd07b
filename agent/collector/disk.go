package collector

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/shirou/gopsutil/v3/disk"

	"github.com/fleetwatch/fleetwatch/agent/telemetry"
)

// skipFS reports whether a filesystem type has no disk space worth
// watching, or is one we must not statfs.
func skipFS(fstype string) bool {
	switch fstype {
	case "proc", "sysfs", "tmpfs", "devtmpfs", "devpts", "overlay", "squashfs",
		"autofs", "securityfs", "pstore", "debugfs", "tracefs", "configfs",
		"fusectl", "mqueue", "hugetlbfs", "binfmt_misc", "bpf", "nsfs",
		"rpc_pipefs", "ramfs", "efivarfs", "selinuxfs", "nfsd", "devfs",
		"fuse.lxcfs", "fuse.gvfsd-fuse", "fuse.portal", "fuse.snapfuse":
		return true
	case "nfs", "nfs4", "cifs", "smb3", "smbfs", "ceph", "glusterfs",
		"fuse.sshfs", "fuse.rclone", "afs":
		// statfs on a network filesystem whose server is gone blocks in
		// the kernel, and no context can cancel it: one dead NAS would
		// stall every reading.
		return true
	}
	return strings.HasPrefix(fstype, "cgroup")
}

// skipMountpoint reports whether a mount point belongs to the kernel or to
// a container runtime (whose bind and overlay mounts repeat the host disk).
// /var/lib/docker itself may be a dedicated disk; only what is below it is
// skipped.
func skipMountpoint(p string) bool {
	for _, dir := range []string{"/proc", "/sys", "/dev"} {
		if p == dir || strings.HasPrefix(p, dir+"/") {
			return true
		}
	}
	for _, dir := range []string{"/run/credentials/", "/var/lib/docker/", "/var/lib/containers/", "/var/lib/kubelet/", "/snap/"} {
		if strings.HasPrefix(p, dir) {
			return true
		}
	}
	return false
}

// mountKey names a mount point in metric names: "/" → "root",
// "/boot/firmware" → "boot_firmware".
func mountKey(mountpoint string) string {
	if mountpoint == "/" {
		return "root"
	}
	return Sanitize(mountpoint)
}

// mount is a mount point chosen for reporting.
type mount struct {
	key, path string
}

// selectMounts picks the real mounts to report, in mount-table order (so
// "/" comes first), at most MaxMounts. A device mounted twice (bind mounts,
// btrfs subvolumes) is reported once, under its first mount point: the
// numbers would be the same.
func selectMounts(parts []disk.PartitionStat) []mount {
	devices := make(map[string]bool, len(parts))
	keys := make(map[string]bool, len(parts))
	var out []mount
	for _, p := range parts {
		if len(out) == MaxMounts {
			break
		}
		if skipFS(p.Fstype) || skipMountpoint(p.Mountpoint) || devices[p.Device] {
			continue
		}
		key := mountKey(p.Mountpoint)
		if key == "" {
			continue
		}
		devices[p.Device] = true
		out = append(out, mount{key: uniqueKey(keys, key), path: p.Mountpoint})
	}
	return out
}

// DefaultMountRefresh is how often Disk re-reads the mount table: mounts
// change rarely, and parsing mountinfo was a quarter of a collection cycle.
const DefaultMountRefresh = time.Minute

// Disk reports space on real mounted filesystems.
type Disk struct {
	// Refresh is how often the mount list is re-read; default
	// DefaultMountRefresh.
	Refresh time.Duration
	// Now is the clock for Refresh; default time.Now.
	Now func() time.Time

	mu     sync.Mutex
	mounts []mount
	at     time.Time
}

// Name implements agent.Collector.
func (*Disk) Name() string { return "disk" }

// Collect implements agent.Collector. A mount that fails is reported in the
// error; the others are still collected.
func (d *Disk) Collect(ctx context.Context, m telemetry.Metrics) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	now := nowFunc(d.Now)()
	refresh := d.Refresh
	if refresh <= 0 {
		refresh = DefaultMountRefresh
	}
	if d.mounts == nil || now.Sub(d.at) >= refresh || now.Before(d.at) {
		parts, err := disk.PartitionsWithContext(ctx, false)
		if err != nil {
			return fmt.Errorf("list partitions: %w", err)
		}
		d.mounts, d.at = selectMounts(parts), now
		if d.mounts == nil {
			d.mounts = []mount{}
		}
	}
	var errs []error
	for _, mt := range d.mounts {
		if err := ctx.Err(); err != nil {
			errs = append(errs, fmt.Errorf("read disk usage: %w", err))
			break
		}
		u, err := disk.UsageWithContext(ctx, mt.path)
		if err != nil {
			errs = append(errs, fmt.Errorf("read disk usage of %s: %w", mt.path, err))
			continue
		}
		prefix := "disk." + mt.key
		put(m, prefix+".used_bytes", float64(u.Used))
		put(m, prefix+".free_bytes", float64(u.Free))
		// As df does: blocks reserved for root count as neither used nor
		// free, so a full disk reads 100%.
		put(m, prefix+".used_percent", percent(float64(u.Used), float64(u.Used)+float64(u.Free)))
	}
	return errors.Join(errs...)
}
