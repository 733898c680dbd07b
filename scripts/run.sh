#!/usr/bin/env bash
# run.sh is `make run`: the hub with its embedded broker, this machine's
# agent at 1 s, and a handful of simulated devices. Ctrl-C stops them all.
set -euo pipefail
cd "$(dirname "$0")/.."

HTTP=${FLEETWATCH_HTTP:-:8080}
MQTT=${FLEETWATCH_MQTT_LISTEN:-:1883}
MQTT_PORT=${MQTT##*:}
DATA=${FLEETWATCH_DATA:-./data}
SIM_DEVICES=${SIM_DEVICES:-5}

# Each process gets its own session (setsid), so Ctrl-C reaches only this
# script, which stops the devices first (they publish offline(shutdown)
# while the broker still runs) and the hub last.
pids=()
cleanup() {
	trap - INT TERM EXIT
	for pid in "${pids[@]:1}"; do kill -TERM "$pid" 2>/dev/null || true; done
	for pid in "${pids[@]:1}"; do wait "$pid" 2>/dev/null || true; done
	kill -TERM "${pids[0]}" 2>/dev/null || true
	wait "${pids[0]}" 2>/dev/null || true
}
trap cleanup INT TERM EXIT

setsid ./bin/fleetwatch-hub --http "$HTTP" --mqtt-listen "$MQTT" --data "$DATA" &
pids+=($!)

# Wait for the hub, so agents do not start against a closed port.
for _ in $(seq 1 100); do
	if (exec 3<>"/dev/tcp/127.0.0.1/${HTTP##*:}") 2>/dev/null; then break; fi
	if ! kill -0 "${pids[0]}" 2>/dev/null; then echo "run: the hub exited" >&2; exit 1; fi
	sleep 0.1
done

setsid ./bin/fleetwatch-agent --broker "tcp://127.0.0.1:${MQTT_PORT}" --interval 1s --state-dir "$DATA/agent" &
pids+=($!)
setsid ./bin/fleetwatch-sim --broker "tcp://127.0.0.1:${MQTT_PORT}" --devices "$SIM_DEVICES" --interval 1s &
pids+=($!)

echo
echo "Fleetwatch is running: open http://localhost:${HTTP##*:}  (Ctrl-C to stop)"
echo
wait -n "${pids[@]}"
