// Package config is the node's settings file: what it listens on, whom it dials, which optional
// network services run. It is plain data with documented defaults; the node package turns it into
// libp2p options. Defaults send no traffic the user did not ask for: no public bootstrap peers,
// no mDNS, no NAT traversal, until a profile or flag turns them on.
//
// It must never enable a network service by default, and never read or write anything but the
// repo's config.json.
package config
