// Package node is the peer-to-peer node: it builds the libp2p host from the repo's identity and
// config (TCP and QUIC, TLS then Noise, yamux, a resource manager and a connection manager, NAT
// traversal when configured, a pre-shared key for private networks), starts discovery and the
// other subsystems on it, and serves the local API gateway that the command line, scripts and
// web pages use. It is where discovery, transfer, gossip and the store meet, and where IPFS peers
// are answered over Bitswap (boxo's server, over what the store serves: bitswap.go).
//
// New builds a node and starts nothing; Start listens, starts the subsystems in order and opens
// the API; Close stops them in reverse order and waits. The node must never dial a peer its
// config or its user did not name (no public bootstrap list, no mDNS, no port mapping unless
// configured), never serve its API beyond loopback without an explicit flag, and never close the
// store it was given: the caller opened it and closes it.
package node
