#!/bin/sh
# postinst of fleetwatch-agent and fleetwatch-hub (the unit is named after
# the package). As dh_installsystemd does, with one difference: a first
# install enables the service but does not start it, since the packaged
# config still needs the broker's address. Upgrades restart a running one.
set -e
unit="${DPKG_MAINTSCRIPT_PACKAGE:?run by dpkg}.service"
case "$1" in
configure | abort-upgrade | abort-deconfigure | abort-remove)
	if command -v deb-systemd-helper >/dev/null; then
		# Undo the mask set by postrm on remove.
		deb-systemd-helper unmask "$unit" >/dev/null || true
		# was-enabled is true on a first install; after that it keeps an
		# admin's `systemctl disable`.
		if deb-systemd-helper --quiet was-enabled "$unit"; then
			deb-systemd-helper enable "$unit" >/dev/null || true
		else
			deb-systemd-helper update-state "$unit" >/dev/null || true
		fi
	fi
	if [ -d /run/systemd/system ]; then
		systemctl --system daemon-reload >/dev/null || true
		if [ -n "$2" ]; then
			deb-systemd-invoke try-restart "$unit" >/dev/null || true
		fi
	fi
	if [ "$1" = configure ] && [ -z "$2" ]; then
		conf="/etc/fleetwatch/${DPKG_MAINTSCRIPT_PACKAGE#fleetwatch-}.yaml"
		echo "$DPKG_MAINTSCRIPT_PACKAGE: enabled, not started. Edit $conf, then: sudo systemctl start $unit"
	fi
	;;
esac
exit 0
