#!/bin/sh
# postrm of fleetwatch-agent and fleetwatch-hub. remove keeps config and
# state (and masks the unit, as dh_installsystemd does); purge deletes the
# state directory, the secrets file and the service's enablement. The
# fleetwatch user stays, as Debian leaves system users: files may still
# belong to it.
set -e
pkg="${DPKG_MAINTSCRIPT_PACKAGE:?run by dpkg}"
unit="$pkg.service"
if [ "$1" = remove ] && [ -d /run/systemd/system ]; then
	systemctl --system daemon-reload >/dev/null || true
fi
if command -v deb-systemd-helper >/dev/null; then
	case "$1" in
	remove) deb-systemd-helper mask "$unit" >/dev/null || true ;;
	purge)
		deb-systemd-helper purge "$unit" >/dev/null || true
		deb-systemd-helper unmask "$unit" >/dev/null || true
		;;
	esac
fi
if [ "$1" = purge ]; then
	case "$pkg" in
	fleetwatch-agent) state=fleetwatch-agent env=agent.env ;;
	fleetwatch-hub) state=fleetwatch env=hub.env ;;
	*) exit 0 ;;
	esac
	rm -rf "/var/lib/$state" "/var/lib/private/$state"
	rm -f "/etc/fleetwatch/$env"
	rmdir /etc/fleetwatch 2>/dev/null || true
fi
exit 0
