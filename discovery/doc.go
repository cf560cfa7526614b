// Package discovery finds peers and the peers that provide a file: a Kademlia DHT
// (go-libp2p-kad-dht) that bootstraps off the peers it is given, provides file roots in batches
// from a queue and re-provides them on a schedule, finds providers, lets the peers of one
// network find each other through a rendezvous key, and, when asked, finds peers on the LAN by
// mDNS. Two LAN peers find each other at once, so only the one with the smaller peer ID dials
// straight away: simultaneous dials from both listening ports would meet as one TCP connection
// that neither TLS handshake accepts.
//
// What other peers store on this node is bounded: provider records to 32 MiB in all and 10,000
// per provider, values (IPNS names, public keys) to 8 MiB and only on the public DHT; a private
// network keeps no values. A record over a bound is dropped, not the others of its batch. The
// providers of one key are found from an index of them, never by copying out every record (what
// a plain go-datastore map does for each question). The bootstrap peers are protected from the
// connection manager.
//
// It must never send traffic its user did not ask for: with no bootstrap peers and mDNS off it
// dials nobody and multicasts nothing. It provides roots only, never every block, and it never
// imports the transfer, gossip or node packages.
package discovery
