/*
Package boltstore keeps the hub's history in one bbolt file: compressed
per-series chunks, 1-minute and 1-hour rollup tiers, time partitions that
expire whole, a write-ahead log for the open chunks, the ack watermarks and a
gap ledger per device.

# Layout

	meta/version                          → "2"
	meta/partition/<tier>                 → partition length, ms (BE8), fixed at creation
	meta/compact/<tier>/<partition>       → compaction progress
	devices/<id>                          → JSON hub.DeviceRecord
	acks/<device>/<boot>                  → watermark (uvarints)
	sids/<device> 0x00 <metric>           → series id (BE4)
	wal/<record BE8><segment BE4>         → samples of the open chunks (see wal.go)
	raw/<partition start BE8>/<sid BE4>/<first ts BE8> → chunk (hub/chunk)
	1m/<partition start BE8>/<sid BE4>/<first ts BE8>  → rollup chunk (hub/rollup)
	1h/<partition start BE8>/<sid BE4>/<first ts BE8>  → rollup chunk
	gaps/<device>/<boot> 0x00 <first seq BE8>          → JSON hub.GapRecord

A series is one (device, metric). Its newest samples live in memory in an open
chunk (the head) and in the WAL; when the head holds MaxChunkPoints samples,
is older than MaxHeadAge, or the next sample belongs to a later partition, it
is sealed: encoded once and written under raw. The WAL record of every commit
lists the samples it added to heads and the heads it sealed, so a restart
rebuilds the heads exactly; records no open head needs are deleted.

# Rules

Only the Ingester's writer goroutine calls Commit. Every commit is one bbolt
transaction (two fsyncs); in-memory state changes only after the
transaction commits, so a failed commit (disk full, read-only file system)
leaves nothing half-applied and the same batch can be retried.

A (boot, seq) is stored once: the acks watermark decides before a sample is
touched. A sample at a timestamp already stored is dropped, the first one
wins. A sample older than its series' sealed chunks (an agent replaying after
an outage) is merged into the chunk it belongs to.

Rollups are recomputed from the raw samples of every minute a commit
changed, then the hours those minutes belong to from the 1-minute tier, so
they stay exact under backfill. Queries read the tiers for sealed time and
compute the rest from raw samples, so a chart of the last day is never
missing its last minutes.

Each series has its own bucket in each partition, so writing a chunk is an
append, never an insert between other series' keys. Once a partition is
closed (its time past by more than MaxHeadAge), a background step rewrites
its series buckets in bulk, packing pages to ~95% (appends one at a time
leave them ~70% full, compact.go says why). Retention drops whole
partitions (DeleteBucket), so the file stops growing: bbolt reuses the
freed pages for the next partition. Samples older than the raw retention
when they arrive are counted and dropped.

Readers never block the writer for longer than a copy of one head; the
in-memory state is guarded by one RWMutex.
*/
package boltstore
