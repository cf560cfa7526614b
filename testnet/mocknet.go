package testnet

import (
	"crypto/ed25519"
	"fmt"

	"github.com/libp2p/go-libp2p/core/crypto"
	ma "github.com/multiformats/go-multiaddr"

	"peer/node"
)

// mockHost gives node i a host on the network's mocknet, with the node's own identity, linked
// to every node already there (each link has the network's latency and bandwidth). Its address
// is in 100::/64, the discard prefix: it names the node inside the mocknet and nothing outside.
func (nw *Network) mockHost(i int, key ed25519.PrivateKey, o *node.Options) error {
	sk, err := crypto.UnmarshalEd25519PrivateKey(key)
	if err != nil {
		return err
	}
	addr, err := ma.NewMultiaddr(fmt.Sprintf("/ip6/100::%x/tcp/4040", i+1))
	if err != nil {
		return err
	}
	h, err := nw.Mocknet.AddPeer(sk, addr)
	if err != nil {
		return fmt.Errorf("mocknet host: %w", err)
	}
	for _, p := range nw.Mocknet.Peers() {
		if p == h.ID() {
			continue
		}
		if _, err := nw.Mocknet.LinkPeers(h.ID(), p); err != nil {
			h.Close()
			return fmt.Errorf("mocknet link: %w", err)
		}
	}
	o.Host = h
	return nil
}
