// Package telemetry is the wire contract between fleetwatch agents and the
// hub. Both binaries import it, so it depends on the standard library only
// (make test checks this) and changes to it are changes to the protocol.
//
// # Topics
//
// With the default prefix "fleetwatch" (configurable on both sides):
//
//	fleetwatch/<device>/telemetry  agent → hub, QoS 1, not retained, JSON ≤ 256 KiB
//	fleetwatch/<device>/status     agent → hub, QoS 1, retained
//	fleetwatch/<device>/ack        hub → agent, QoS 1
//
// A device id matches ^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$; agents default to
// their hostname, sanitized by [SanitizeDeviceID].
//
// # Telemetry
//
// An [Envelope] carries up to 1000 readings of one device:
//
//	{"v":1,"device":"pi-kitchen","boot":"<id>","first":40,
//	 "readings":[{"seq":41,"ts":1764368400123,"metrics":{"cpu.percent":12.5}}],
//	 "tags":{"site":"home"}}
//
// (boot, seq) identifies a reading. seq starts at 1, grows by 1 per reading,
// and boot changes whenever seq restarts. The optional "first" is the lowest seq of
// this boot the agent still holds: readings below it will never come, so the
// hub settles them as a gap. ts is Unix milliseconds. Metric names match
// ^[a-z0-9_]+(\.[a-z0-9_]+)*$ and are at most 128 bytes; values are finite
// numbers (null, strings and duplicate names are errors); a reading has at
// most 512 metrics.
//
// A payload without a "readings" key is the simple form for third-party
// devices: a flat JSON object of numbers, one reading stamped with the
// receive time, with no seq and no ack.
//
// # Status and acks
//
// [Status] is published retained: "online" with inventory on every connect,
// "offline" with reason "lost" as the MQTT Last Will and "shutdown" on a clean
// stop. [Ack] {"v":1,"boot":B,"seq":N} tells the agent that every reading of
// boot B with seq ≤ N is durably committed in the hub's store or settled as a
// gap. It is a contiguous watermark: readings that arrive out of order do not
// move it past a hole, and the hub never sends it before the commit.
//
// # Validation
//
// [DecodeTelemetry] and [DecodeStatus] reject a message whole when it breaks
// any rule, with an [*Error] whose Reason is a stable lower_snake code the hub
// counts. Unknown envelope keys are ignored so that later v1 agents may add
// optional fields; a different "v" is rejected.
package telemetry
