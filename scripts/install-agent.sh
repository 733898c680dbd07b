#!/usr/bin/env bash
# install-agent.sh installs fleetwatch-agent as a hardened systemd service on
# this device, or removes it. Run it as root; run it again at will: files
# that would not change are left alone (same content, modes and mtimes) and
# the service is restarted only when something did change.
#
# It finds the binary at --binary, ../bin/fleetwatch-agent next to this
# script, ./fleetwatch-agent next to it, or ./fleetwatch-agent in the
# current directory; the unit at --unit, ../configs/systemd/ next to this
# script, or next to it. `make dist` tarballs keep that layout.
set -euo pipefail

readonly PROG=install-agent.sh
readonly NAME=fleetwatch-agent
readonly SVC_USER=fleetwatch
# Same rule as the wire contract (agent/telemetry): ^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$
readonly DEVICE_RE='^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$'
# Schemes the agent's MQTT client dials; host, optional port, optional path
# (for ws/wss). No user:password@: credentials go in --username/--password.
readonly BROKER_RE='^(tcp|mqtt|ssl|tls|mqtts|tcps|ws|wss)://([A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\])(:([0-9]{1,5}))?(/[^[:space:]]*)?$'
readonly DURATION_RE='^([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+$'
readonly TAG_KEY_RE='^[a-z0-9_]{1,64}$'

usage() {
	cat <<EOF
Usage: sudo $PROG --broker URL [options]
       sudo $PROG --uninstall [--purge]

Installs fleetwatch-agent as a systemd service: a system user "$SVC_USER",
/usr/local/bin/$NAME, /etc/fleetwatch/agent.yaml (root:$SVC_USER 0640),
/etc/fleetwatch/agent.env for the password (root 0600), and a hardened unit
in /etc/systemd/system, enabled and started. Safe to run again.

Options:
  --broker URL          MQTT broker, e.g. tcp://hub.local:1883 or mqtts://hub:8883
                        (required on first install; with it the config is
                        rewritten from these flags, the old one kept as
                        agent.yaml.bak; without it an existing config is kept)
  --device ID           device id (default: the hostname, sanitized)
  --username U          MQTT username
  --password P          MQTT password (visible in ps: prefer the next two)
  --password-file F     read the MQTT password from the first line of F
                        (FLEETWATCH_MQTT_PASSWORD in the environment also works)
  --interval D          time between readings, e.g. 5s (default 5s)
  --tag KEY=VALUE       a tag on every reading; repeatable
  --binary PATH         the fleetwatch-agent binary to install
  --unit PATH           the systemd unit to install
  --root DIR            install into another root filesystem (images, tests):
                        no systemctl, the service is enabled by symlink
  --uninstall           stop and disable the service, remove unit and binary;
                        keep config and state
  --purge               with --uninstall: also remove config, state and user
  -h, --help            this help
EOF
}

die() {
	printf '%s: error: %s\n' "$PROG" "$*" >&2
	exit 1
}
usage_error() {
	printf '%s: %s\n(see %s --help)\n' "$PROG" "$*" "$PROG" >&2
	exit 2
}
note() { printf '%s: %s\n' "$PROG" "$*"; }
warn() { printf '%s: warning: %s\n' "$PROG" "$*" >&2; }

# --- arguments ---------------------------------------------------------------

broker="" device="" username="" interval="" binary="" unit="" root=""
password="" password_set=0 password_file=""
uninstall=0 purge=0
tags=()

need_arg() { [[ $# -ge 2 ]] || usage_error "$1 needs a value"; }
while [[ $# -gt 0 ]]; do
	arg=$1
	# Accept --opt=value as well as --opt value.
	if [[ $arg == --*=* ]]; then
		set -- "${arg%%=*}" "${arg#*=}" "${@:2}"
		arg=$1
	fi
	case $arg in
	--broker) need_arg "$@"; broker=$2; shift ;;
	--device) need_arg "$@"; device=$2; shift ;;
	--username) need_arg "$@"; username=$2; shift ;;
	--password) need_arg "$@"; password=$2; password_set=1; shift ;;
	--password-file) need_arg "$@"; password_file=$2; shift ;;
	--interval) need_arg "$@"; interval=$2; shift ;;
	--tag) need_arg "$@"; tags+=("$2"); shift ;;
	--binary) need_arg "$@"; binary=$2; shift ;;
	--unit) need_arg "$@"; unit=$2; shift ;;
	--root) need_arg "$@"; root=$2; shift ;;
	--uninstall) uninstall=1 ;;
	--purge) purge=1 ;;
	-h | --help) usage; exit 0 ;;
	*) usage_error "unknown argument: $arg" ;;
	esac
	shift
done

if [[ -n $root ]]; then
	[[ -d $root ]] || die "--root $root: no such directory"
	root=$(cd "$root" && pwd -P)
	[[ $root != / ]] || die "--root /: leave --root out to install on this system"
fi
if [[ $EUID -ne 0 && -z $root ]]; then
	die "run as root (sudo $0 ...)"
fi

readonly ETC=$root/etc/fleetwatch
readonly CONFIG=$ETC/agent.yaml
readonly ENVFILE=$ETC/agent.env
readonly BIN=$root/usr/local/bin/$NAME
readonly UNIT=$root/etc/systemd/system/$NAME.service
readonly WANTS=$root/etc/systemd/system/multi-user.target.wants/$NAME.service
readonly STATE=$root/var/lib/$NAME
script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
readonly script_dir

# systemd is only driven on the live system, and only when it runs.
have_systemd() { [[ -z $root && -d /run/systemd/system ]] && command -v systemctl >/dev/null; }

# --- users and ownership -----------------------------------------------------

# gid_of prints the gid of $SVC_USER's group in the target root, or nothing.
gid_of() {
	if [[ -n $root ]]; then
		[[ -f $root/etc/group ]] || return 0
		awk -F: -v g="$SVC_USER" '$1 == g { print $3 }' "$root/etc/group"
	else
		getent group "$SVC_USER" | cut -d: -f3 || true
	fi
}

user_exists() {
	if [[ -n $root ]]; then
		[[ -f $root/etc/passwd ]] && awk -F: -v u="$SVC_USER" '$1 == u { f = 1 } END { exit !f }' "$root/etc/passwd"
	else
		getent passwd "$SVC_USER" >/dev/null
	fi
}

nologin_shell() {
	local s
	for s in /usr/sbin/nologin /sbin/nologin; do
		if [[ -x $root$s ]]; then
			echo "$s"
			return
		fi
	done
	echo /usr/sbin/nologin # Debian's; the account is never logged into anyway
}

ensure_user() {
	if user_exists; then
		return
	fi
	local args=(--system --user-group --no-create-home --home-dir /nonexistent
		--shell "$(nologin_shell)" --comment "Fleetwatch agent")
	if [[ -n $root ]]; then
		if [[ $EUID -ne 0 ]]; then
			warn "not root: not creating user $SVC_USER in $root; files stay owned by the caller"
			return
		fi
		if [[ ! -f $root/etc/passwd || ! -f $root/etc/group ]]; then
			warn "$root has no etc/passwd or etc/group: not creating user $SVC_USER (create it before the unit starts)"
			return
		fi
		# --prefix edits $root/etc/{passwd,group,...} without chroot, so the
		# root may hold another architecture's binaries.
		if ! useradd --help 2>&1 | grep -- --prefix >/dev/null; then
			warn "this useradd has no --prefix: not creating user $SVC_USER in $root"
			return
		fi
		useradd --prefix "$root" "${args[@]}" "$SVC_USER" || die "useradd --prefix $root failed"
	else
		command -v useradd >/dev/null || die "useradd not found (Debian package passwd)"
		useradd "${args[@]}" "$SVC_USER" || die "could not create system user $SVC_USER"
	fi
	note "created system user $SVC_USER"
}

# --- idempotent file installation --------------------------------------------

changed=0

# put SRC DST MODE GID installs SRC as DST (owner root, group GID) unless
# DST already has that content, mode and ownership. The new file is written
# next to DST and renamed over it, so a reader (or the running binary) never
# sees half a file.
put() {
	local src=$1 dst=$2 mode=$3 gid=$4 owner=0
	if [[ $EUID -ne 0 ]]; then
		owner=$(id -u) gid=$(id -g)
	fi
	if [[ -f $dst && ! -L $dst ]] && cmp -s "$src" "$dst" &&
		[[ $(stat -c '%a:%u:%g' "$dst") == "${mode#0}:$owner:$gid" ]]; then
		return 0
	fi
	mkdir -p "$(dirname "$dst")"
	local tmp
	tmp=$(mktemp "$dst.XXXXXX")
	cat "$src" >"$tmp"
	chmod "$mode" "$tmp"
	if [[ $EUID -eq 0 ]]; then chown "$owner:$gid" "$tmp"; fi
	mv -f "$tmp" "$dst"
	changed=1
	note "installed ${dst#"$root"}"
}

# ensure_dir DIR MODE GID creates DIR or fixes its mode and group.
ensure_dir() {
	local dir=$1 mode=$2 gid=$3
	if [[ ! -d $dir ]]; then
		mkdir -p "$dir"
		changed=1
	fi
	if [[ $(stat -c '%a' "$dir") != "${mode#0}" ]]; then chmod "$mode" "$dir"; fi
	if [[ $EUID -eq 0 && $(stat -c '%u:%g' "$dir") != "0:$gid" ]]; then chown "0:$gid" "$dir"; fi
}

# yaml_quote prints s as a YAML double-quoted scalar.
yaml_quote() {
	local s=$1
	s=${s//\\/\\\\}
	s=${s//\"/\\\"}
	printf '"%s"' "$s"
}

has_control() { [[ $1 == *[[:cntrl:]]* ]]; }

# --- uninstall ----------------------------------------------------------------

if [[ $uninstall -eq 1 ]]; then
	if have_systemd; then
		systemctl disable --now "$NAME.service" 2>/dev/null || true
	fi
	for f in "$WANTS" "$UNIT" "$BIN"; do
		if [[ -e $f || -L $f ]]; then
			rm -f "$f"
			note "removed ${f#"$root"}"
		fi
	done
	if have_systemd; then
		systemctl daemon-reload
		systemctl reset-failed "$NAME.service" 2>/dev/null || true
	fi
	if [[ $purge -eq 1 ]]; then
		rm -rf "$root/etc/systemd/system/$NAME.service.d"
		rm -f "$CONFIG" "$CONFIG.bak" "$ENVFILE"
		rmdir "$ETC" 2>/dev/null || true
		# DynamicUser-style private dir too, in case the unit was changed.
		rm -rf "$STATE" "$root/var/lib/private/$NAME"
		if user_exists && [[ $EUID -eq 0 ]]; then
			if [[ -n $root ]]; then
				userdel --prefix "$root" "$SVC_USER" 2>/dev/null || warn "could not remove user $SVC_USER from $root"
			else
				userdel "$SVC_USER" 2>/dev/null || warn "could not remove user $SVC_USER"
			fi
		fi
		note "purged config, state and user $SVC_USER"
	else
		note "kept ${CONFIG#"$root"}, ${ENVFILE#"$root"} and ${STATE#"$root"} (--purge removes them)"
	fi
	exit 0
fi
[[ $purge -eq 0 ]] || usage_error "--purge goes with --uninstall"

# --- validate -------------------------------------------------------------------

if [[ -n $broker ]]; then
	if [[ $broker =~ ^[a-z]+://[^/]*@ ]]; then
		die "--broker $broker: put credentials in --username/--password-file, not in the URL"
	fi
	[[ $broker =~ $BROKER_RE ]] ||
		die "--broker '$broker' is not a broker URL: want scheme://host[:port] with scheme tcp, mqtt, ssl, tls, mqtts, tcps, ws or wss, e.g. tcp://hub.local:1883"
	port=${BASH_REMATCH[5]}
	if [[ -n $port ]] && ((10#$port < 1 || 10#$port > 65535)); then
		die "--broker $broker: port $port is not between 1 and 65535"
	fi
elif [[ ! -f $CONFIG ]]; then
	usage_error "--broker is required (no ${CONFIG#"$root"} yet), e.g. --broker tcp://hub.local:1883"
elif [[ -n $device || -n $username || -n $interval || ${#tags[@]} -gt 0 ]]; then
	usage_error "--device, --username, --interval and --tag rewrite the config and need --broker too"
fi
if [[ -n $device && ! $device =~ $DEVICE_RE ]]; then
	die "--device '$device': want 1-64 letters, digits, '_', '.' or '-', starting with a letter or digit"
fi
if [[ -n $interval && ! $interval =~ $DURATION_RE ]]; then
	die "--interval '$interval': want a duration like 5s, 500ms or 1m"
fi
if has_control "$username"; then
	die "--username: no control characters"
fi
declare -A seen_tag=()
for t in "${tags[@]}"; do
	[[ $t == *=* ]] || die "--tag '$t': want KEY=VALUE"
	k=${t%%=*} v=${t#*=}
	[[ $k =~ $TAG_KEY_RE ]] || die "--tag '$t': key must be 1-64 of a-z, 0-9 and _"
	[[ -z ${seen_tag[$k]:-} ]] || die "--tag $k given twice"
	seen_tag[$k]=1
	if ((${#v} > 128)) || has_control "$v"; then
		die "--tag '$k': value must be at most 128 printable characters"
	fi
done
((${#tags[@]} <= 32)) || die "at most 32 tags"

if [[ -n $password_file ]]; then
	[[ $password_set -eq 0 ]] || usage_error "give --password or --password-file, not both"
	[[ -r $password_file ]] || die "--password-file $password_file: cannot read it"
	IFS= read -r password <"$password_file" || true
	[[ -n $password ]] || die "--password-file $password_file: the first line is empty"
	password_set=1
elif [[ $password_set -eq 0 && -n ${FLEETWATCH_MQTT_PASSWORD:-} ]]; then
	password=$FLEETWATCH_MQTT_PASSWORD
	password_set=1
fi
if [[ $password_set -eq 1 ]]; then
	# Written single-quoted for systemd's EnvironmentFile=, which takes
	# everything up to the next quote literally.
	[[ $password != *"'"* ]] || die "the MQTT password may not contain a single quote (')"
	! has_control "$password" || die "the MQTT password may not contain control characters"
fi

# The binary: given, next to this script, or here. Without one, an
# installed binary is kept (reconfigure only).
if [[ -z $binary ]]; then
	for c in "$script_dir/../bin/$NAME" "$script_dir/$NAME" "./$NAME"; do
		if [[ -f $c ]]; then
			binary=$c
			break
		fi
	done
fi
if [[ -n $binary ]]; then
	[[ -f $binary ]] || die "--binary $binary: no such file"
	[[ -x $binary ]] || die "--binary $binary is not executable (chmod +x it)"
elif [[ ! -x $BIN ]]; then
	die "no $NAME binary: pass --binary PATH (build one with 'make build' or take it from 'make dist'; GOARM=6 for a Pi Zero/1)"
fi

if [[ -z $unit ]]; then
	for c in "$script_dir/../configs/systemd/$NAME.service" "$script_dir/$NAME.service"; do
		if [[ -f $c ]]; then
			unit=$c
			break
		fi
	done
fi
[[ -n $unit && -f $unit ]] || die "no $NAME.service: pass --unit PATH (it is configs/systemd/$NAME.service in the source tree)"
for f in /lib/systemd/system /usr/lib/systemd/system; do
	if [[ -f $root$f/$NAME.service ]]; then
		warn "the $NAME package is installed too ($f/$NAME.service); this install's unit in /etc/systemd/system takes precedence"
	fi
done

# --- install ------------------------------------------------------------------

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

if [[ -n $broker ]]; then
	{
		echo "# fleetwatch-agent configuration, written by $PROG."
		echo "# Running $PROG again with --broker rewrites it (the previous file is"
		echo "# kept as agent.yaml.bak). Other settings and custom readings: see"
		echo "# configs/agent.example.yaml. The password is in agent.env."
		echo "broker: $(yaml_quote "$broker")"
		if [[ -n $device ]]; then echo "device: $(yaml_quote "$device")"; fi
		echo "interval: ${interval:-5s}"
		echo "state_dir: \"/var/lib/$NAME\""
		if [[ -n $username ]]; then echo "username: $(yaml_quote "$username")"; fi
		if [[ ${#tags[@]} -gt 0 ]]; then
			echo "tags:"
			for t in "${tags[@]}"; do
				echo "  ${t%%=*}: $(yaml_quote "${t#*=}")"
			done
		fi
	} >"$work/agent.yaml"
fi
if [[ $password_set -eq 1 ]]; then
	{
		echo "# Secrets for fleetwatch-agent.service, read by systemd as root."
		echo "FLEETWATCH_MQTT_PASSWORD='$password'"
	} >"$work/agent.env"
fi

# On the live system, before anything is replaced, prove that the binary
# runs on this CPU (an ARMv7 build refuses an ARMv6 Pi) and accepts the
# config written above. A kept config is not run here: its custom exec
# readings must not run as root; the start below checks it instead.
if [[ -z $root ]]; then
	check_bin=${binary:-$BIN}
	if ! out=$("$check_bin" --help 2>&1 >/dev/null); then
		die "$check_bin does not run on this machine ($(uname -m)); nothing was changed. Take the build for this CPU (armv6 for a Pi Zero/1):
$out"
	fi
	if [[ -f $work/agent.yaml ]] && ! out=$("$check_bin" --config "$work/agent.yaml" --once 2>&1 >/dev/null); then
		die "$check_bin rejects the new config; nothing was changed:
$out"
	fi
fi

ensure_user
gid=$(gid_of)
gid=${gid:-0}

# 0755: the hub may share /etc/fleetwatch; agent.yaml and agent.env guard
# themselves.
ensure_dir "$ETC" 0755 0
if [[ -f $work/agent.yaml ]]; then
	if [[ -f $CONFIG ]] && ! cmp -s "$work/agent.yaml" "$CONFIG"; then
		cp -p "$CONFIG" "$CONFIG.bak"
		note "previous ${CONFIG#"$root"} kept as ${CONFIG#"$root"}.bak"
	fi
	put "$work/agent.yaml" "$CONFIG" 0640 "$gid"
fi
if [[ -f $work/agent.env ]]; then
	put "$work/agent.env" "$ENVFILE" 0600 0
fi
if [[ -n $binary ]]; then
	put "$binary" "$BIN" 0755 0
fi
put "$unit" "$UNIT" 0644 0

# --- enable and start -------------------------------------------------------------

if [[ -n $root ]]; then
	# What `systemctl enable` does, without a running systemd.
	if [[ "$(readlink "$WANTS" 2>/dev/null)" != "/etc/systemd/system/$NAME.service" ]]; then
		mkdir -p "$(dirname "$WANTS")"
		ln -sfn "/etc/systemd/system/$NAME.service" "$WANTS"
		note "enabled $NAME.service in $root"
	fi
	note "installed into $root (not started)"
	exit 0
fi

if ! have_systemd; then
	warn "systemd is not running here: installed and not started"
	exit 0
fi
systemctl daemon-reload
systemctl enable --quiet "$NAME.service"
if [[ $changed -eq 1 ]] && systemctl is-active --quiet "$NAME.service"; then
	systemctl restart "$NAME.service"
	note "restarted $NAME.service"
else
	systemctl start "$NAME.service"
fi
# Give a bad broker or config a moment to fail, so it is reported here
# rather than found later in the journal.
sleep 2
if ! systemctl is-active --quiet "$NAME.service"; then
	journalctl -u "$NAME.service" -n 20 --no-pager >&2 || true
	die "$NAME.service is not running (journalctl -u $NAME.service)"
fi
if [[ $changed -eq 0 ]]; then
	note "$NAME is up to date and running"
else
	note "$NAME is running: journalctl -fu $NAME.service to follow it"
fi
