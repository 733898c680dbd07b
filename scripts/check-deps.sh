#!/usr/bin/env bash
# check-deps.sh fails if the agent binaries link anything they must not:
# the hub's storage (bbolt), its WebSocket server (melody), or any package
# under hub/. The agent runs on small devices; what it links, it carries.
# It also keeps the wire contract (agent/telemetry) on the standard library.
set -euo pipefail
module=$(go list -m)
status=0

for cmd in ./agent/cmd/fleetwatch-agent; do
	bad=$(go list -deps "$cmd" | grep -E "^(go\.etcd\.io/bbolt|github\.com/olahol/melody|github\.com/mochi-mqtt|${module}/hub|${module}/dashboard)(/|$)" || true)
	if [ -n "$bad" ]; then
		echo "check-deps: $cmd links forbidden packages:" >&2
		echo "$bad" | sed 's/^/  /' >&2
		status=1
	fi
done

# The guard must be able to fail: the hub does link bbolt and melody.
# (Listed into a variable first: grep -q would exit early, and with pipefail
# go list's SIGPIPE would fail the check at random.)
hubdeps=$(go list -deps ./hub/cmd/fleetwatch-hub)
if [ "$(grep -cE "^(go\.etcd\.io/bbolt|github\.com/olahol/melody)$" <<<"$hubdeps")" -ne 2 ]; then
	echo "check-deps: self-check failed: the query no longer sees bbolt/melody in the hub" >&2
	status=1
fi

nonstd=$(go list -deps -f '{{if not .Standard}}{{.ImportPath}}{{end}}' ./agent/telemetry | grep -v "^${module}/agent/telemetry$" || true)
if [ -n "$nonstd" ]; then
	echo "check-deps: agent/telemetry must import the standard library only, found:" >&2
	echo "$nonstd" | sed 's/^/  /' >&2
	status=1
fi

if [ $status -eq 0 ]; then
	echo "check-deps: ok (agent links no bbolt, melody or hub/; telemetry is stdlib-only)"
fi
exit $status
