#!/bin/sh
# prerm of fleetwatch-agent and fleetwatch-hub: stop the service on removal
# (an upgrade restarts it in postinst instead).
set -e
unit="${DPKG_MAINTSCRIPT_PACKAGE:?run by dpkg}.service"
if [ -d /run/systemd/system ] && [ "$1" = remove ]; then
	deb-systemd-invoke stop "$unit" >/dev/null || true
fi
exit 0
