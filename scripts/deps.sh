#!/usr/bin/env bash
# deps.sh installs what `make test` and `make run` need beyond Go: the
# mosquitto broker (tests spawn a real one), nginx (a test runs one in
# front of the hub with configs/nginx.conf), Node.js and npm (the
# dashboard's unit tests and its pinned npm dependencies) and Chromium
# (the dashboard's browser tests). As root with apt-get it installs what is missing; otherwise it
# fails with the command to run.
set -euo pipefail

# With "npm" as its argument it sees only to Node.js and npm, which
# building the dashboard needs (make build, make run).
need_pkgs=()
if [ "${1:-}" = npm ]; then
	command -v node >/dev/null 2>&1 || need_pkgs+=(nodejs)
	command -v npm >/dev/null 2>&1 || need_pkgs+=(npm)
else
command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || need_pkgs+=(mosquitto)
command -v mosquitto_sub >/dev/null 2>&1 || need_pkgs+=(mosquitto-clients)
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || need_pkgs+=(nginx)
command -v node >/dev/null 2>&1 || need_pkgs+=(nodejs)
command -v npm >/dev/null 2>&1 || need_pkgs+=(npm)
command -v chromium >/dev/null 2>&1 || [ -x /usr/bin/chromium ] || need_pkgs+=(chromium)
fi

if [ ${#need_pkgs[@]} -eq 0 ]; then
	exit 0
fi

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
	echo "deps: installing ${need_pkgs[*]} with apt-get" >&2
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >/dev/null
	# Tests spawn their own mosquitto on free ports; the package's system
	# service would sit on :1883, where `make run` puts the hub's embedded
	# broker. Stop the service we just caused to exist; the binary stays.
	if [[ " ${need_pkgs[*]} " == *" mosquitto "* ]] && command -v systemctl >/dev/null 2>&1 &&
		systemctl is-enabled mosquitto >/dev/null 2>&1; then
		echo "deps: disabling the mosquitto system service (tests and make run start their own brokers)" >&2
		systemctl disable --now mosquitto >/dev/null 2>&1 || true
	fi
	# The same for nginx: the test runs its own nginx on a free port; the
	# package's service would serve Debian's welcome page on :80.
	if [[ " ${need_pkgs[*]} " == *" nginx "* ]] && command -v systemctl >/dev/null 2>&1 &&
		systemctl is-enabled nginx >/dev/null 2>&1; then
		echo "deps: disabling the nginx system service (the test starts its own nginx)" >&2
		systemctl disable --now nginx >/dev/null 2>&1 || true
	fi
	exit 0
fi

echo "deps: missing ${need_pkgs[*]}." >&2
echo "deps: install with: sudo apt-get install -y ${need_pkgs[*]}" >&2
exit 1
