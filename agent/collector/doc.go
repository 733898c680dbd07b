// Package collector holds the agent.Collectors of fleetwatch-agent: thin
// adapters over gopsutil, procfs and sysfs for Linux hosts and Raspberry Pis.
//
// Each file is one metric family. Reading (gopsutil calls, file reads) is
// kept apart from computing (rates, percentages, parsing), which are pure
// functions tested without the OS. Stateful collectors (CPU, DiskIO,
// Network) keep the previous sample and report deltas since the last
// Collect; rates need two samples, so they appear from the second Collect
// on. Missing optional hardware (sensors, cpufreq, Pi firmware) yields no
// metrics and no error.
//
// # Metrics
//
// <mount>, <dev>, <iface> and <sensor> are sanitized by [Sanitize]
// ("/" → root, "/boot/firmware" → boot_firmware, "br-1a2b" → br_1a2b); a
// name taken earlier in the same reading gets _2, _3…. Per-instance series
// are capped (64 cores, 16 mounts, devices, interfaces, sensors and zones),
// so one reading stays under ~300 metrics.
//
//	name                               unit   meaning
//	cpu.percent                        %      busy time of all CPUs since the previous collect (since boot on the first)
//	cpu.user                           %      user time, including nice and guest
//	cpu.system                         %      kernel time, including irq and softirq
//	cpu.iowait                         %      idle while waiting for I/O
//	cpu.steal                          %      time taken by the hypervisor
//	cpu.core.<n>.percent               %      busy time of core n (n < 64)
//	cpu.freq_mhz                       MHz    current clock of cpu0 (when cpufreq exists)
//	load.1                             -      1-minute load average
//	load.5                             -      5-minute load average
//	load.15                            -      15-minute load average
//	mem.total_bytes                    bytes  physical memory
//	mem.used_bytes                     bytes  total − available
//	mem.available_bytes                bytes  memory available without swapping (MemAvailable)
//	mem.used_percent                   %      used / total
//	swap.total_bytes                   bytes  swap space
//	swap.used_bytes                    bytes  swap in use
//	swap.used_percent                  %      used / total (0 without swap)
//	disk.<mount>.used_bytes            bytes  space in use on the filesystem
//	disk.<mount>.free_bytes            bytes  space available to unprivileged users
//	disk.<mount>.used_percent          %      used / (used + free), as df
//	diskio.<dev>.read_bytes_per_s      B/s    bytes read from the block device
//	diskio.<dev>.write_bytes_per_s     B/s    bytes written to the block device
//	net.<iface>.rx_bytes_per_s         B/s    bytes received
//	net.<iface>.tx_bytes_per_s         B/s    bytes sent
//	net.<iface>.rx_packets_per_s       1/s    packets received
//	net.<iface>.tx_packets_per_s       1/s    packets sent
//	net.<iface>.errors_per_s           1/s    receive + transmit errors
//	net.<iface>.drops_per_s            1/s    receive + transmit drops
//	temp.<sensor>                      °C     hwmon sensor (chip name + label)
//	temp.zone<n>                       °C     /sys/class/thermal/thermal_zone<n>
//	temp.soc                           °C     thermal_zone0, the SoC on a Raspberry Pi
//	host.uptime_s                      s      time since boot
//	host.procs                         -      number of processes
//	rpi.throttled                      -      raw get_throttled bitmask of the Pi firmware
//	rpi.under_voltage                  0/1    under-voltage now (bit 0)
//	rpi.throttling                     0/1    throttled now (bit 2)
//	rpi.under_voltage_occurred         0/1    under-voltage since boot (bit 16)
//	rpi.throttling_occurred            0/1    throttled since boot (bit 18)
//
// Skipped: pseudo, container and network filesystems (proc, sysfs, tmpfs,
// overlay, squashfs, cgroup*, nfs, cifs…), mounts below /proc, /sys, /dev
// and container runtime directories, a device's second mount point, loop
// and ram block devices, and the lo interface.
package collector
