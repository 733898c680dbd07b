// Package notify posts hub alerts to webhooks: a generic JSON endpoint, an
// ntfy topic or a Slack-compatible incoming webhook.
//
// # Rules
//
//   - Notify never blocks: alert evaluation must not wait on a slow
//     receiver. Each receiver has a bounded queue; when it is full the
//     oldest message is dropped, counted and logged (at most once a second
//     per receiver).
//   - One worker per receiver sends in order. A message being retried holds
//     back that receiver's later messages (so "resolved" never overtakes
//     "firing"), but never other receivers and never Notify.
//   - A firing alert is sent the first time its ID is seen and whenever its
//     severity or summary changes; other updates only refresh the copy kept
//     for repeats. While it fires it is sent again every RepeatInterval
//     after the last send to that receiver, marked as a repeat, until it
//     is acknowledged (AckedAt set) or resolves.
//   - A resolved alert is sent once and its ID forgotten; the last 4096
//     resolved IDs are remembered so a second "resolved" sends nothing.
//   - Network errors, timeouts, 429 and 5xx are retried with exponential
//     backoff and jitter, honouring Retry-After up to MaxBackoff. Any other
//     non-2xx status fails the message at once.
//   - Webhook URLs often embed secrets (Slack's do), so they never appear in
//     logs or errors: those name the receiver instead.
package notify
