// Package gossiptest builds in-process networks of gossip nodes on a libp2p
// mocknet, and measures how fast announcements spread through them. Tests of
// gossip and of testnet use it; it never touches a real network.
package gossiptest
