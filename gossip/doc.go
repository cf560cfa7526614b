// Package gossip announces on gossipsub the files a node shares, and hands the
// valid announcements of other nodes to its caller, which builds the network
// catalog from them.
//
// Each network has one topic (TopicName). An announcement (Announcement) names
// a file's root CID, name, size and time, or withdraws it; it travels in a
// compact versioned binary encoding of at most MaxMessageSize bytes, inside a
// pubsub message signed by its author (StrictSign), so the provider is always
// the verified signer and no one can announce on someone else's behalf. Every
// node runs the same validator before it delivers or forwards a message:
// strict decoding, a supported CID (CIDv0/v1, raw or dag-pb, sha2-256), a sane
// name, size and fields, a time not too far in the future, and a token bucket
// per sender. Rejected messages do not spread and lower the sender's
// gossipsub score (see scoreParams for the parameters and why); a sender
// below the graylist threshold is no longer heard at all.
//
// Late joiners learn existing shares by catalog exchange, not by periodic
// re-announcement. Re-announcing every share every period costs every node
// (shares in the network × nodes) messages per period, forever, whether or
// not anyone joined, and a joiner still waits up to a period. Instead, when a
// peer joins our topic we ask it once (CatalogProtocol) for the signed
// announcements it holds: its own shares (Config.Shared) and the latest
// announcement per provider and root it has seen, kept in a bounded cache.
// The cost is paid once per join, in proportion to the catalog, and one
// neighbour is enough to learn the whole catalog. Each entry is the
// original pubsub message, so the receiver verifies the author's signature
// itself and trusts the relaying peer for nothing.
//
// The package never stores announcements beyond that bounded in-memory
// cache and never imports node, transfer, discovery or store: the caller
// records what it is given. It never publishes faster than its peers accept,
// never trusts a provider that is not the verified signer, and never reads a
// peer's stream without a deadline and a size cap.
package gossip
