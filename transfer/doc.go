// Package transfer is the block-exchange protocol of peer: a server that
// answers other peers' requests for blocks, and a client that fetches a
// whole DAG from several providers at once, verifying every block.
//
// Protocol (ID "/peer/transfer/1.0.0", frames in package wire). A fetch opens
// one stream per provider. The client writes Want frames (up to 512 CIDs
// each) whenever its window has room and Cancel frames for work that moved
// elsewhere; the server answers every wanted CID in order with a Block
// (CID + data, at most 2 MiB) or a DontHave, skipping canceled ones. A frame
// is a uvarint length and a body starting with a type byte; bodies are capped
// at 2 MiB + 1 KiB. Each side sets a deadline before every read (idle
// timeout, default 60 s) and a size-scaled deadline before every write. A
// server accepts at most 8 streams per peer and 2048 queued CIDs per stream;
// past that, or on any malformed frame, the stream is reset and the peer
// reported; a client that breaks the protocol is cut off at once, whatever it
// had queued. An optional token bucket caps what the server sends.
//
// Scheduler. Fetch unfolds the DAG from the root: each verified block is
// expanded (Request.Expand) and its children queued; blocks already in
// Request.Local are skipped, and local inner nodes are read and expanded, so
// a resumed fetch asks only for what is missing. Waiting blocks go out inner
// nodes first, then in DAG order. Each peer has a window of bytes in flight
// (4 MiB at first, then twice its measured rate x minimum round trip, up to
// 64 MiB); blocks are pulled by whichever peer has room, so faster peers get
// more. Every block is hashed against its CID on worker goroutines before
// Request.Deliver sees it, exactly once per CID; one goroutine delivers, so a
// Deliver that waits on the disk never stops the hashing. A peer that sends a bad,
// unrequested or malformed frame is dropped from the fetch, reported through
// WithMisbehaviour and avoided by later fetches for a while; a peer that
// stalls or disconnects is dropped and its work requeued. When nothing is
// left waiting, an idle peer takes over the tail of a slower peer's queue
// (the slower one gets a Cancel), and only blocks held by a silent peer are
// asked twice; the first copy wins and the other is canceled. Providers from
// Request.Find are connected to at most 8 at a time, and a fetch uses at
// most WithMaxPeers of them (32). With no peer
// able to serve the missing blocks for WithNoProvidersTimeout (30 s), Fetch
// fails with ErrNoProviders.
//
// Bitswap. With WithBitswap, a provider that does not speak ID (identify lists
// it not, or negotiating it fails) is asked over Bitswap instead, in the same
// fetch: its session sends want-block entries through boxo's Bitswap network,
// and what the peer sends back reaches it through Bitswap, a receiver of that
// network. Everything after the arrival of a block is shared with ID's
// sessions; a block that matches no CID asked of that peer is a bad block.
//
// This package deals in blocks and callbacks only: it must never know about
// files, UnixFS, the on-disk store or the index, and never import node,
// gossip or discovery.
package transfer
