package collector

import (
	"fmt"
	"testing"

	"github.com/shirou/gopsutil/v3/disk"
)

func TestSkipFS(t *testing.T) {
	tests := []struct {
		fstype string
		want   bool
	}{
		{"ext4", false},
		{"vfat", false},
		{"btrfs", false},
		{"xfs", false},
		{"zfs", false},
		{"fuseblk", false}, // ntfs-3g on a USB disk
		{"proc", true},
		{"sysfs", true},
		{"tmpfs", true},
		{"devtmpfs", true},
		{"overlay", true},
		{"squashfs", true},
		{"cgroup", true},
		{"cgroup2", true},
		{"autofs", true},
		{"fuse.lxcfs", true},
		{"nfs4", true},
		{"cifs", true},
	}
	for _, tt := range tests {
		t.Run(tt.fstype, func(t *testing.T) {
			if got := skipFS(tt.fstype); got != tt.want {
				t.Errorf("skipFS(%q) = %v, want %v", tt.fstype, got, tt.want)
			}
		})
	}
}

func TestSkipMountpoint(t *testing.T) {
	tests := []struct {
		path string
		want bool
	}{
		{"/", false},
		{"/boot/firmware", false},
		{"/var/lib/docker", false}, // a dedicated disk for docker is real
		{"/devices", false},
		{"/proc", true},
		{"/sys/fs/cgroup", true},
		{"/dev/shm", true},
		{"/var/lib/docker/overlay2/abc/merged", true},
		{"/var/lib/kubelet/pods/x/volumes", true},
		{"/snap/core/123", true},
		{"/run/credentials/systemd-journald.service", true},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			if got := skipMountpoint(tt.path); got != tt.want {
				t.Errorf("skipMountpoint(%q) = %v, want %v", tt.path, got, tt.want)
			}
		})
	}
}

func TestMountKey(t *testing.T) {
	tests := []struct{ in, want string }{
		{"/", "root"},
		{"/boot/firmware", "boot_firmware"},
		{"/mnt/usb-disk", "mnt_usb_disk"},
		{"/home", "home"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if got := mountKey(tt.in); got != tt.want {
				t.Errorf("mountKey(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestSelectMounts(t *testing.T) {
	t.Run("raspberry pi", func(t *testing.T) {
		parts := []disk.PartitionStat{
			{Device: "/dev/mmcblk0p2", Mountpoint: "/", Fstype: "ext4"},
			{Device: "proc", Mountpoint: "/proc", Fstype: "proc"},
			{Device: "/dev/mmcblk0p1", Mountpoint: "/boot/firmware", Fstype: "vfat"},
			{Device: "tmpfs", Mountpoint: "/run", Fstype: "tmpfs"},
			{Device: "/dev/loop0", Mountpoint: "/snap/core/1", Fstype: "squashfs"},
			{Device: "/dev/mmcblk0p2", Mountpoint: "/srv/bind", Fstype: "ext4"}, // bind mount of /
			{Device: "/dev/sda1", Mountpoint: "/root", Fstype: "ext4"},          // key collides with "/"
			{Device: "server:/export", Mountpoint: "/mnt/nas", Fstype: "nfs4"},
		}
		got := selectMounts(parts)
		want := []mount{
			{key: "root", path: "/"},
			{key: "boot_firmware", path: "/boot/firmware"},
			{key: "root_2", path: "/root"},
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("got %v, want %v", got, want)
		}
	})
	t.Run("capped", func(t *testing.T) {
		var parts []disk.PartitionStat
		for i := range MaxMounts + 5 {
			parts = append(parts, disk.PartitionStat{Device: fmt.Sprintf("/dev/sd%d", i), Mountpoint: fmt.Sprintf("/mnt/d%d", i), Fstype: "ext4"})
		}
		got := selectMounts(parts)
		if len(got) != MaxMounts {
			t.Fatalf("got %d mounts, want %d", len(got), MaxMounts)
		}
		if got, want := got[MaxMounts-1].key, fmt.Sprintf("mnt_d%d", MaxMounts-1); got != want {
			t.Errorf("last key = %q, want %q", got, want)
		}
	})
}
