#!/bin/sh
# fleetwatch-agent preinst: the service user must exist before dpkg unpacks
# /etc/fleetwatch/agent.yaml (group fleetwatch) and before the unit runs.
set -e
case "$1" in
install | upgrade)
	if ! getent passwd fleetwatch >/dev/null; then
		useradd --system --user-group --no-create-home --home-dir /nonexistent \
			--shell /usr/sbin/nologin --comment "Fleetwatch agent" fleetwatch
	fi
	;;
esac
exit 0
