// Package hub is the domain of fleetwatch-hub: what a message becomes on its
// way from the broker to the store and the browsers.
//
// # Rules
//
//   - MQTT handlers never block the client: Ingester.Handle validates and
//     queues; it waits only for room in a bounded queue, on the message's
//     own goroutine.
//   - Two independent paths leave Handle: the live path (Fleet and Feed, at
//     once, never waiting for disk) and the durable path (one writer
//     goroutine owns the Store and commits in groups).
//   - Only a commit acks: the MQTT PUBACK and the device's end-to-end ack
//     are sent after the commit that holds the reading, never before.
//   - A message that breaks the contract is rejected whole: nothing of it
//     is stored, no device is created, and it is counted by reason.
//   - Each Feed event is encoded once; every subscriber gets the same bytes.
//
// Adapters live in subpackages named after what they wrap: boltstore
// (bbolt), mqttsub (paho), mochi (the embedded broker), web (HTTP, melody,
// SSE); fleet holds the pure aggregation. cmd/fleetwatch-hub wires them.
package hub
