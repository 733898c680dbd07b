#!/usr/bin/env bash
# dist.sh is `make dist`: release artifacts for Linux on armv6 (Pi Zero/1),
# armv7, arm64 and amd64, in dist/:
#
#   linux_<arch>/fleetwatch-{agent,hub}     static, stripped, version-stamped
#   fleetwatch-{agent,hub}_<v>_<deb-arch>.deb  binary, systemd unit, conffile
#   fleetwatch-agent_<v>_linux_<arch>.tar.gz   binary + install-agent.sh + unit
#   SHA256SUMS
#
# Debian calls both 32-bit ARM ports "armhf", but Debian's armhf is ARMv7
# while Raspberry Pi OS's armhf also runs on the ARMv6 Pi Zero/1. So there
# are two armhf packages with the same Architecture field: <v>_armhf.deb
# (GOARM=7) and <v>_armhf-armv6.deb (GOARM=6, runs on every Pi). When in
# doubt on a Pi, take armv6.
#
# Environment: VERSION (default: git describe), TARGETS (default: all four),
# DIST (default: dist), DEB_MAINTAINER, NFPM (how to run nfpm; default: the
# pinned version through the Go module proxy), MAX_AGENT_MB (default 8).
set -euo pipefail
cd "$(dirname "$0")/.."

GO=${GO:-go}
VERSION=${VERSION:-$(git describe --tags --always --dirty 2>/dev/null || echo dev)}
DIST=${DIST:-dist}
TARGETS=${TARGETS:-armv6 armv7 arm64 amd64}
MAX_AGENT_MB=${MAX_AGENT_MB:-8}
NFPM_MODULE=github.com/goreleaser/nfpm/v2/cmd/nfpm@v2.45.2
export DEB_MAINTAINER=${DEB_MAINTAINER:-Fleetwatch maintainers <maintainers@fleetwatch.invalid>}
# Reproducible packages: file times from the last commit, not from now
# (nfpm and tar both honour it).
if [[ -z ${SOURCE_DATE_EPOCH:-} ]]; then
	SOURCE_DATE_EPOCH=$(git log -1 --format=%ct 2>/dev/null || date +%s)
fi
export SOURCE_DATE_EPOCH

case $DIST in "" | / | . | ..) echo "dist.sh: refusing DIST=$DIST" >&2; exit 1 ;; esac

# deb_version turns `git describe` output into a Debian version, which must
# start with a digit and sort the way releases do:
#   v1.2.3 → 1.2.3   v1.2.3-4-gabc1234-dirty → 1.2.3+4.gabc1234.dirty
#   v1.3.0-rc1 → 1.3.0~rc1   abc1234 (no tag) → 0.0.0+git.abc1234
deb_version() {
	local v=${1#v}
	if [[ $v =~ ^([0-9][0-9.]*)(-(rc|alpha|beta)[0-9.]*)?(-([0-9]+)-g([0-9a-f]+))?(-dirty)?$ ]]; then
		local out=${BASH_REMATCH[1]}
		if [[ -n ${BASH_REMATCH[2]} ]]; then out+="~${BASH_REMATCH[2]#-}"; fi
		if [[ -n ${BASH_REMATCH[4]} ]]; then out+="+${BASH_REMATCH[5]}.g${BASH_REMATCH[6]}"; fi
		if [[ -n ${BASH_REMATCH[7]} ]]; then
			if [[ -n ${BASH_REMATCH[4]} ]]; then out+=".dirty"; else out+="+dirty"; fi
		fi
		echo "$out"
	else
		echo "0.0.0+git.$(tr -c 'A-Za-z0-9.\n' '.' <<<"$v")"
	fi
}
DEB_VERSION=$(deb_version "$VERSION")
export DEB_VERSION

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

if [[ -z ${NFPM:-} ]]; then
	# Built once rather than `go run` per package (same module, same proxy).
	echo "dist: building nfpm ($NFPM_MODULE)"
	GOBIN=$work/tools CGO_ENABLED=0 "$GO" install "$NFPM_MODULE"
	NFPM=$work/tools/nfpm
fi

rm -rf "$DIST"
mkdir -p "$DIST"
export DIST_STAGE=$work/stage
mkdir -p "$DIST_STAGE"

# The packaged units run the binaries from /usr/bin (Debian policy keeps
# packages out of /usr/local); install-agent.sh uses the units as they are.
for svc in fleetwatch-agent fleetwatch-hub; do
	sed "/^ExecStart=/s#/usr/local/bin/#/usr/bin/#" "configs/systemd/$svc.service" >"$DIST_STAGE/$svc.service"
	grep -q "^ExecStart=/usr/bin/$svc " "$DIST_STAGE/$svc.service" ||
		{ echo "dist.sh: no ExecStart=/usr/local/bin/$svc in configs/systemd/$svc.service" >&2; exit 1; }
done

have() { command -v "$1" >/dev/null; }

# check_deb DEB ARCH NAME checks the package with dpkg-deb and, where
# systemd-analyze works, verifies its unit inside the unpacked package.
check_deb() {
	local deb=$1 arch=$2 name=$3
	if ! have dpkg-deb; then
		echo "dist: dpkg-deb not found, $deb unchecked" >&2
		return
	fi
	[[ $(dpkg-deb -f "$deb" Architecture) == "$arch" ]] || { echo "dist.sh: $deb: Architecture is not $arch" >&2; exit 1; }
	dpkg-deb --contents "$deb" | grep " \./usr/bin/$name$" >/dev/null || { echo "dist.sh: $deb lacks /usr/bin/$name" >&2; exit 1; }
	dpkg-deb --contents "$deb" | grep " \./lib/systemd/system/$name.service$" >/dev/null || { echo "dist.sh: $deb lacks its unit" >&2; exit 1; }
	dpkg-deb --ctrl-tarfile "$deb" | tar -xO ./conffiles | grep -x "/etc/fleetwatch/${name#fleetwatch-}.yaml" >/dev/null ||
		{ echo "dist.sh: $deb: config is not a conffile" >&2; exit 1; }
	local sys=""
	for d in /usr/lib/systemd/system /lib/systemd/system; do
		if [[ -f $d/sysinit.target ]]; then sys=$d && break; fi
	done
	if have systemd-analyze && [[ -n $sys ]]; then
		local root=$work/verify-root
		rm -rf "$root"
		mkdir -p "$root/usr/lib/systemd"
		cp -a "$sys" "$root/usr/lib/systemd/"
		dpkg-deb -x "$deb" "$root"
		local out
		if ! out=$(systemd-analyze verify --root="$root" --man=no "$name.service" 2>&1) || grep -q fleetwatch <<<"$out"; then
			echo "dist.sh: systemd-analyze verify $name.service in $deb:" >&2
			echo "$out" >&2
			exit 1
		fi
	fi
}

max_agent=$((MAX_AGENT_MB * 1024 * 1024))
for t in $TARGETS; do
	case $t in
	armv6) goarch=arm goarm=6 nfpm_arch=arm6 deb_arch=armhf file_arch=armhf-armv6 ;;
	armv7) goarch=arm goarm=7 nfpm_arch=arm7 deb_arch=armhf file_arch=armhf ;;
	arm64) goarch=arm64 goarm="" nfpm_arch=arm64 deb_arch=arm64 file_arch=arm64 ;;
	amd64) goarch=amd64 goarm="" nfpm_arch=amd64 deb_arch=amd64 file_arch=amd64 ;;
	*) echo "dist.sh: unknown target $t (want armv6, armv7, arm64, amd64)" >&2; exit 1 ;;
	esac
	bin=$DIST/linux_$t
	echo "dist: $t: building (GOARCH=$goarch${goarm:+ GOARM=$goarm}, version $VERSION)"
	mkdir -p "$bin"
	CGO_ENABLED=0 GOOS=linux GOARCH=$goarch GOARM=$goarm \
		"$GO" build -trimpath -ldflags "-s -w -X main.Version=$VERSION" -o "$bin/" \
		./agent/cmd/fleetwatch-agent ./hub/cmd/fleetwatch-hub
	size=$(stat -c %s "$bin/fleetwatch-agent")
	if ((size > max_agent)); then
		echo "dist.sh: $bin/fleetwatch-agent is $size bytes, over the ${MAX_AGENT_MB} MB budget" >&2
		exit 1
	fi

	for name in fleetwatch-agent fleetwatch-hub; do
		deb=$DIST/${name}_${DEB_VERSION}_${file_arch}.deb
		if ! out=$(NFPM_ARCH=$nfpm_arch DIST_BIN=$bin $NFPM package --packager deb \
			--config "configs/nfpm/${name#fleetwatch-}.yaml" --target "$deb" 2>&1); then
			echo "dist.sh: nfpm failed for $deb:" >&2
			echo "$out" >&2
			exit 1
		fi
		check_deb "$deb" "$deb_arch" "$name"
	done

	# For devices without dpkg: the layout install-agent.sh looks for.
	pkg=fleetwatch-agent_${DEB_VERSION}_linux_$t
	mkdir -p "$work/$pkg/bin" "$work/$pkg/scripts" "$work/$pkg/configs/systemd"
	cp "$bin/fleetwatch-agent" "$work/$pkg/bin/"
	cp scripts/install-agent.sh "$work/$pkg/scripts/"
	cp configs/systemd/fleetwatch-agent.service "$work/$pkg/configs/systemd/"
	cp configs/agent.example.yaml "$work/$pkg/configs/"
	tar -C "$work" --sort=name --mtime="@$SOURCE_DATE_EPOCH" --owner=0 --group=0 --numeric-owner -cf - "$pkg" |
		gzip -n9 >"$DIST/$pkg.tar.gz"
done

(cd "$DIST" && sha256sum -- *.deb *.tar.gz linux_*/* >SHA256SUMS)
echo "dist: $VERSION (deb $DEB_VERSION) in $DIST/:"
(cd "$DIST" && find . -type f ! -name SHA256SUMS -printf '%s %P\n' | sort -k2 |
	awk '{ printf "  %6.2f MB  %s\n", $1 / 1048576, $2 }')
