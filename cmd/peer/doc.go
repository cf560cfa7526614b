// Command peer is a peer-to-peer file-sharing node: it imports, shares, finds and fetches files,
// runs as a daemon, and starts local test networks. See README.md for the command reference.
//
// Each command's file registers its cobra command (root.go's register); commands that need the
// network talk to the running daemon's API (node/api), the others open the repo themselves when
// no daemon runs. It must never hold state of its own: everything lives in the repo.
package main
