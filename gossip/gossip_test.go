package gossip_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"
	"github.com/libp2p/go-libp2p/p2p/protocol/identify"
	"github.com/stretchr/testify/require"

	"peer/gossip"
	"peer/gossip/gossiptest"
)

func TestTopicName(t *testing.T) {
	require.Equal(t, "/peer/announce/1/ipfs", gossip.TopicName(""))
	require.Equal(t, "/peer/announce/1/lab", gossip.TopicName("lab"))
}

func announce(name string) gossip.Announcement {
	return gossip.Announcement{
		Root:   gossiptest.TestCID(name),
		Name:   name,
		Size:   uint64(len(name)),
		Fields: map[string]string{"mime": "application/octet-stream"},
	}
}

func waitCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// TestTenNodes: an announcement and its withdrawal reach every node of a
// sparse network, with the publisher as provider, and a node that joins
// later learns the existing shares from the one node it connects to.
func TestTenNodes(t *testing.T) {
	ctx := waitCtx(t)
	nw, err := gossiptest.NewNetwork(ctx, 10, gossiptest.Options{Degree: 3, Seed: 7})
	require.NoError(t, err)
	t.Cleanup(func() { nw.Close() })
	for _, nd := range nw.Nodes {
		require.Less(t, len(nd.Host.Network().Peers()), 9, "topology must not be a full mesh")
	}
	require.NoError(t, nw.WaitMesh(ctx))

	pub := nw.Nodes[3]
	a := announce("report.pdf")
	require.NoError(t, pub.Gossip.Publish(ctx, a))
	for _, nd := range nw.Nodes {
		if nd == pub {
			continue
		}
		r, err := nd.WaitFor(ctx, func(b gossip.Announcement) bool { return b.Root == a.Root && !b.Withdraw })
		require.NoError(t, err)
		require.Equal(t, pub.Host.ID(), r.Provider)
		require.Equal(t, a.Name, r.Name)
		require.Equal(t, a.Size, r.Size)
		require.Equal(t, a.Fields, r.Fields)
		require.False(t, r.Time.IsZero())
	}
	require.Empty(t, pub.Received(), "a node is not told of its own announcements")

	w := a
	w.Withdraw = true
	w.Time = time.Now().Add(time.Millisecond) // later than the announcement
	require.NoError(t, pub.Gossip.Publish(ctx, w))
	for _, nd := range nw.Nodes {
		if nd == pub {
			continue
		}
		r, err := nd.WaitFor(ctx, func(b gossip.Announcement) bool { return b.Root == a.Root && b.Withdraw })
		require.NoError(t, err)
		require.Equal(t, pub.Host.ID(), r.Provider)
	}

	// Two more shares, one from another node, then a late joiner.
	b, c := announce("notes.txt"), announce("song.ogg")
	require.NoError(t, nw.Nodes[0].Gossip.Publish(ctx, b))
	require.NoError(t, nw.Nodes[8].Gossip.Publish(ctx, c))
	for _, nd := range nw.Nodes {
		for _, x := range []gossip.Announcement{b, c} {
			if nd == nw.Nodes[0] && x.Root == b.Root || nd == nw.Nodes[8] && x.Root == c.Root {
				continue
			}
			_, err := nd.WaitFor(ctx, func(y gossip.Announcement) bool { return y.Root == x.Root })
			require.NoError(t, err)
		}
	}
	late, err := nw.AddNode(ctx, nil, 5)
	require.NoError(t, err)
	for _, x := range []struct {
		root     gossip.Announcement
		provider peer.ID
		withdraw bool
	}{{w, pub.Host.ID(), true}, {b, nw.Nodes[0].Host.ID(), false}, {c, nw.Nodes[8].Host.ID(), false}} {
		r, err := late.WaitFor(ctx, func(y gossip.Announcement) bool { return y.Root == x.root.Root })
		require.NoError(t, err)
		require.Equal(t, x.provider, r.Provider)
		require.Equal(t, x.withdraw, r.Withdraw, "the late joiner gets the latest state of %s", x.root.Name)
	}
	// Whether each came by catalog exchange or, still in gossipsub's recent history, by gossip
	// is a matter of timing; TestLateJoinerLearnsShared covers the catalog alone.
	require.Len(t, late.Received(), 3, "only the latest announcement per provider and root")
}

// TestLateJoinerLearnsShared: shares given by Config.Shared (what a node
// shared before it restarted) reach a peer that joins, signed by the node.
func TestLateJoinerLearnsShared(t *testing.T) {
	ctx := waitCtx(t)
	nw, err := gossiptest.NewNetwork(ctx, 2, gossiptest.Options{Seed: 1})
	require.NoError(t, err)
	t.Cleanup(func() { nw.Close() })
	old := announce("old-share.iso")
	old.Time = time.Now().Add(-time.Hour)
	bad := announce("bad/name")
	sharer, err := nw.AddNode(ctx, func() []gossip.Announcement { return []gossip.Announcement{old, bad} })
	require.NoError(t, err)
	require.NoError(t, nw.Connect(sharer.Index, 1))
	r, err := nw.Nodes[1].WaitFor(ctx, func(y gossip.Announcement) bool { return y.Root == old.Root })
	require.NoError(t, err)
	require.Equal(t, sharer.Host.ID(), r.Provider)
	require.Equal(t, old.Time.UnixMilli(), r.Time.UnixMilli())

	// A node that never meets the sharer learns the share from node 1.
	late, err := nw.AddNode(ctx, nil, 1)
	require.NoError(t, err)
	r, err = late.WaitFor(ctx, func(y gossip.Announcement) bool { return y.Root == old.Root })
	require.NoError(t, err)
	require.Equal(t, sharer.Host.ID(), r.Provider, "relayed entries keep their author")
	for _, nd := range []*gossiptest.Node{nw.Nodes[1], late} {
		for _, got := range nd.Received() {
			require.NotEqual(t, bad.Root, got.Root, "an invalid shared entry is never sent")
		}
	}
}

// TestPublishRightAfterStart: an announcement published as soon as the
// nodes start is not lost while the mesh forms.
func TestPublishRightAfterStart(t *testing.T) {
	ctx := waitCtx(t)
	nw, err := gossiptest.NewNetwork(ctx, 3, gossiptest.Options{Seed: 3})
	require.NoError(t, err)
	t.Cleanup(func() { nw.Close() })
	a := announce("early.bin")
	require.NoError(t, nw.Nodes[0].Gossip.Publish(ctx, a))
	for _, nd := range nw.Nodes[1:] {
		_, err := nd.WaitFor(ctx, func(b gossip.Announcement) bool { return b.Root == a.Root })
		require.NoError(t, err)
	}
}

// TestPublishPacing: a node publishing many announcements at once stays
// under its peers' rate limit, so none is rejected.
func TestPublishPacing(t *testing.T) {
	ctx := waitCtx(t)
	cfg := gossip.Config{RatePerPeer: 50, Burst: 5}
	nw, err := gossiptest.NewNetwork(ctx, 2, gossiptest.Options{Seed: 4, Config: cfg})
	require.NoError(t, err)
	t.Cleanup(func() { nw.Close() })
	require.NoError(t, nw.WaitMesh(ctx))
	const n = 30
	for i := range n {
		require.NoError(t, nw.Nodes[0].Gossip.Publish(ctx, announce(fmt.Sprintf("file-%d", i))))
	}
	require.Eventually(t, func() bool { return len(nw.Nodes[1].Received()) == n }, 10*time.Second, 10*time.Millisecond)
	require.Empty(t, nw.Nodes[1].Gossip.Stats().Rejected)
	require.EqualValues(t, n, nw.Nodes[0].Gossip.Stats().Published)
}

func TestLifecycle(t *testing.T) {
	mn := mocknet.New()
	t.Cleanup(func() { mn.Close() })
	h, err := mn.GenPeer()
	require.NoError(t, err)

	_, err = gossip.New(nil, gossip.DefaultConfig())
	require.Error(t, err)
	_, err = gossip.New(h, gossip.Config{Burst: -1})
	require.Error(t, err)
	_, err = gossip.New(h, gossip.Config{MaxClockSkew: -time.Second})
	require.Error(t, err)

	g, err := gossip.New(h, gossip.Config{Network: "lab"})
	require.NoError(t, err)
	require.Equal(t, "/peer/announce/1/lab", g.Topic())
	require.Error(t, g.Publish(t.Context(), announce("x")), "not started")
	require.Nil(t, g.Peers())
	require.Error(t, g.Start(t.Context(), nil))
	require.NoError(t, g.Start(t.Context(), func(gossip.Announcement) {}))
	require.Error(t, g.Start(t.Context(), func(gossip.Announcement) {}), "started twice")

	bad := announce("x")
	bad.Name = ".."
	require.ErrorIs(t, g.Publish(t.Context(), bad), gossip.ErrBadName)

	// With no connection at all, Publish sends at once: nobody is there to wait for.
	g2h, err := mn.GenPeer()
	require.NoError(t, err)
	g2, err := gossip.New(g2h, gossip.Config{PublishWait: 50 * time.Millisecond})
	require.NoError(t, err)
	require.NoError(t, g2.Start(t.Context(), func(gossip.Announcement) {}))
	require.NoError(t, g2.Publish(t.Context(), announce("alone")))
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	require.Error(t, g2.Publish(ctx, announce("cancelled")))

	require.NoError(t, g.Close())
	require.NoError(t, g.Close(), "Close is idempotent")
	require.NoError(t, g2.Close())
	require.Error(t, g.Publish(t.Context(), announce("x")), "closed")
	require.Error(t, g.Start(t.Context(), func(gossip.Announcement) {}), "closed")

	// Closing a Gossip that never started is fine too.
	g3, err := gossip.New(h, gossip.DefaultConfig())
	require.NoError(t, err)
	require.NoError(t, g3.Close())
}

// TestCloseEndsCatalogServing: Close ends a catalog exchange being served
// (here one whose asker never sends its request) instead of leaving its
// handler to the exchange timeout.
func TestCloseEndsCatalogServing(t *testing.T) {
	ctx := waitCtx(t)
	nw, err := gossiptest.NewNetwork(ctx, 2, gossiptest.Options{Seed: 5})
	require.NoError(t, err)
	t.Cleanup(func() { nw.Close() })
	h, err := nw.Mocknet.GenPeer()
	require.NoError(t, err)
	server := nw.Nodes[0]
	_, err = nw.Mocknet.LinkPeers(h.ID(), server.Host.ID())
	require.NoError(t, err)
	_, err = nw.Mocknet.ConnectPeers(h.ID(), server.Host.ID())
	require.NoError(t, err)
	// A protocol the peerstore does not list is negotiated before NewStream returns, so the
	// handler is running by then: forget it once identify has listed it. Waiting for identify
	// itself, rather than polling the peerstore, holds however slow a loaded machine is.
	conns := h.Network().ConnsToPeer(server.Host.ID())
	require.NotEmpty(t, conns)
	ids := h.(interface{ IDService() identify.IDService }).IDService()
	select {
	case <-ids.IdentifyWait(conns[0]):
	case <-ctx.Done():
		t.Fatal("identify did not finish")
	}
	ps, _ := h.Peerstore().SupportsProtocols(server.Host.ID(), gossip.CatalogProtocol)
	require.Len(t, ps, 1, "identify lists the catalog protocol")
	require.NoError(t, h.Peerstore().RemoveProtocols(server.Host.ID(), gossip.CatalogProtocol))
	s, err := h.NewStream(ctx, server.Host.ID(), gossip.CatalogProtocol)
	require.NoError(t, err)
	_, err = s.Write([]byte{0x80}) // the first byte of a request that never ends
	require.NoError(t, err)

	require.NoError(t, server.Gossip.Close())
	read := make(chan error, 1)
	go func() { // mocknet streams have no deadlines
		_, err := s.Read(make([]byte, 1))
		read <- err
	}()
	select {
	case err := <-read:
		require.Error(t, err, "the server reset the stream when it closed")
	case <-time.After(5 * time.Second):
		t.Fatal("the catalog handler outlived Close")
	}
}
