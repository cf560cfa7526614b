// Package eventlog is the append-only file under the node's event-sourced index: a sequence of
// opaque records, each length-prefixed and checksummed, appended durably in groups and read back
// by sequential replay. It knows nothing of what the records mean; the store package defines the
// events, their encoding, the projections and the snapshots. It must never rewrite or reorder a
// record once it is durable, never destroy data it cannot prove to be a torn tail, and never
// import a libp2p package.
//
// # Why a log of our own
//
// The log has one writer (the process holding the repo lock), only ever appends, and is only ever
// read front to back. That is all a key-value store such as bbolt or pebble would do for us,
// at the price of a B-tree or an LSM, compaction, and a format we do not control; a generic WAL
// library brings segments and options we do not need. What we do need is short: group commit (many
// concurrent appenders share one fsync), a torn tail detected and cut at open, mid-log damage
// refused rather than repaired, and a scan that runs at memory speed. That fits in a few hundred
// lines on os and unix, which the next reader can check in one sitting.
//
// # File format (must not drift)
//
//	file    = header record*
//	header  = "PEERLOG" 0x01                      8 bytes: magic and format version 1
//	record  = length crc payload
//	length  = u32 little-endian                   payload length, at most MaxRecordSize (1 MiB)
//	crc     = u32 little-endian                   CRC-32C (Castagnoli) of the 4 length bytes
//	                                              followed by the payload
//	payload = length bytes, opaque
//
// Offsets are byte offsets in the file; the first record is at HeaderSize. A length above
// MaxRecordSize is corruption, not a big record.
//
// # Recovery at open
//
// Open reads the whole file once and checks every record. At the first bad record (short header,
// length past the end of the file, length above the maximum, checksum mismatch) it searches the
// rest of the file, byte by byte, for any well-formed record. If there is none, the bad bytes are
// a torn tail left by a crash during an append that was never acknowledged: Open truncates the
// file there, fsyncs, and reports the cut in Recovery. If there is one, the damage is in the middle
// of the log: Open returns a *CorruptError (wrapping ErrCorrupt) that names the offset and touches
// nothing. The search starts one byte after the bad record, not at the end its length field
// claims, because that length may itself be the damaged part; a mistake therefore errs towards
// refusing to open, never towards cutting good records. A file of 1 to 7 bytes that is a prefix
// of the header is a torn creation and is reset to an empty log; any other bad header is
// corruption.
//
// One consequence to know: fsync makes a batch durable as a whole, but a power cut during a batch
// may persist its pages out of order, leaving a hole followed by intact records of that same
// unacknowledged batch. Open cannot tell that apart from bit rot under acknowledged records, so
// it refuses (ErrCorrupt) and leaves the decision to an operator; nothing is lost by refusing.
//
// # Durability and concurrency
//
// Append returns once its records are written and fdatasync'd. Appenders that arrive while an
// fsync runs are queued into the next batch, which one of them then writes with a single pwrite
// and a single fdatasync (group commit). A failed write or fsync truncates the file back to the
// last durable offset, so no partial record stays behind; if even that fails, the log refuses
// further appends. Open takes an exclusive flock on the file, so a second writer (in this or any
// process) fails instead of interleaving. Scan reads with pread up to the durable end as of the
// call and may run beside Append.
package eventlog
