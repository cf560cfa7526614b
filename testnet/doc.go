// Package testnet starts and drives local networks of peer nodes, for experiments, demos and the
// project's own tests, and measures them.
//
// Two kinds of network: in-process (New, Start) runs many nodes in this process, each with its
// own temporary repo, on real loopback TCP or on a libp2p mocknet whose links have latency and
// bandwidth; process networks (Up, Status, Down) run `peer daemon` processes on 127.0.0.1 (or in
// network namespaces this package creates), each usable with `peer --repo DIR/node-i`. Bench
// runs a scenario (DHT lookups, gossip propagation, transfer from many seeders, churn) on an
// in-process network and writes results.json, CSV files and plots.
//
// A testnet must never reach or bind an address outside loopback, a mocknet, or the network
// namespaces it created itself; must never leave a process or namespace behind after Down or
// Close; and must never wait without a bound.
package testnet
