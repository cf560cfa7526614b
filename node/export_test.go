package node

import (
	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
)

// BitswapWantlist is what the node's Bitswap server keeps of p's wantlist (nil when Bitswap is
// off).
func BitswapWantlist(n *Node, p peer.ID) []cid.Cid {
	ex, err := n.exchange()
	if err != nil || ex.bs == nil {
		return nil
	}
	return ex.bs.srv.WantlistForPeer(p)
}

// GossipPeers is the peers the node's gossip counts on its topic.
func GossipPeers(n *Node) []peer.ID {
	ex, err := n.exchange()
	if err != nil {
		return nil
	}
	return ex.gsp.Peers()
}
