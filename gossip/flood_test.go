package gossip_test

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"sync/atomic"
	"testing"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	pb "github.com/libp2p/go-libp2p-pubsub/pb"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"peer/gossip"
	"peer/gossip/gossiptest"
)

// rawPeer is a host with no pubsub router of its own, linked and connected to the first honest
// node: what it sends is written by hand.
func (l *line) rawPeer(t *testing.T) host.Host {
	h, err := l.nw.Mocknet.GenPeer()
	require.NoError(t, err)
	for _, id := range []protocol.ID{pubsub.GossipSubID_v11, pubsub.GossipSubID_v12, pubsub.GossipSubID_v13} {
		h.SetStreamHandler(id, func(s network.Stream) { _, _ = io.Copy(io.Discard, s); _ = s.Reset() })
	}
	_, err = l.nw.Mocknet.LinkPeers(h.ID(), l.first.Host.ID())
	require.NoError(t, err)
	_, err = l.nw.Mocknet.ConnectPeers(h.ID(), l.first.Host.ID())
	require.NoError(t, err)
	return h
}

// throwaway makes n keys of no node at all.
func throwaway(t *testing.T, n int) []crypto.PrivKey {
	keys := make([]crypto.PrivKey, n)
	for i := range keys {
		k, _, err := crypto.GenerateEd25519Key(nil)
		require.NoError(t, err)
		keys[i] = k
	}
	return keys
}

// signed is a pubsub message on the topic by key's peer, numbered seq.
func signed(t *testing.T, key crypto.PrivKey, seq uint64, a gossip.Announcement) *pb.Message {
	author, err := peer.IDFromPrivateKey(key)
	require.NoError(t, err)
	topic := gossip.TopicName("")
	m := &pb.Message{From: []byte(author), Data: encoded(t, a), Seqno: binary.BigEndian.AppendUint64(nil, seq), Topic: &topic}
	unsigned, err := proto.Marshal(m)
	require.NoError(t, err)
	m.Signature, err = key.Sign(append([]byte(pubsub.SignPrefix), unsigned...))
	require.NoError(t, err)
	if pk, _ := author.ExtractPublicKey(); pk == nil {
		m.Key, err = crypto.MarshalPublicKey(key.GetPublic())
		require.NoError(t, err)
	}
	return m
}

// handled is how many messages the node has dealt with: delivered, or refused for any reason.
func handled(node gossip.Stats) uint64 {
	n := node.Delivered
	for _, c := range node.Rejected {
		n += c
	}
	return n
}

// TestThrowawayKeysFlood: one peer forwards 10,000 announcements signed by 1,000 keys that
// belong to no node, ten each (within each author's own rate). The node takes in only what one
// forwarder's budget allows, relays no more than that, and scores the forwarder down for
// delivering mostly strangers.
func TestThrowawayKeysFlood(t *testing.T) {
	// Signing and verifying 10,000 messages takes a while under the race detector.
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	l := newLine(t, ctx)
	h := l.rawPeer(t)
	st, err := h.NewStream(ctx, l.first.Host.ID(), pubsub.GossipSubID_v11)
	require.NoError(t, err)
	defer st.Reset()
	write := func(rpc *pb.RPC) {
		b, err := proto.Marshal(rpc)
		require.NoError(t, err)
		_, err = st.Write(append(binary.AppendUvarint(nil, uint64(len(b))), b...))
		require.NoError(t, err)
	}
	yes, topic := true, gossip.TopicName("")
	write(&pb.RPC{Subscriptions: []*pb.RPC_SubOpts{{Subscribe: &yes, Topicid: &topic}}})

	const keys, each, perRPC = 1000, 10, 100
	ks := throwaway(t, keys)
	now := time.Now()
	var msgs []*pb.Message
	for j := range each {
		for i, k := range ks {
			a := announce(fmt.Sprintf("spam-%d-%d", i, j))
			a.Time = now
			msgs = append(msgs, signed(t, k, uint64(j+1), a))
		}
	}
	first := l.first.Gossip
	heapBefore := heapInUse()
	base := handled(first.Stats())
	for i := 0; i < len(msgs); i += perRPC {
		write(&pb.RPC{Publish: msgs[i : i+perRPC]})
		// Pace the flood to what the node handles, so that nothing is lost to a full queue
		// and every message meets the validator.
		want := base + uint64(i+perRPC)
		require.Eventually(t, func() bool { return handled(first.Stats()) >= want }, 10*time.Second, 5*time.Millisecond)
	}
	delivered := fromStrangers(l.first.Received())
	t.Logf("delivered %d of %d; rejected %v; heap grew %.1f MiB", delivered, len(msgs), first.Stats().Rejected,
		float64(int64(heapInUse())-int64(heapBefore))/(1<<20))
	require.Less(t, delivered, 500, "one forwarder brought in too much")
	require.Eventually(t, func() bool {
		s, ok := first.Scores()[h.ID()]
		return ok && s < 0
	}, 10*time.Second, 50*time.Millisecond, "a forwarder of strangers must score below zero")

	m := announce("marker")
	require.NoError(t, first.Publish(ctx, m))
	_, err = l.second.WaitFor(ctx, func(b gossip.Announcement) bool { return b.Root == m.Root })
	require.NoError(t, err)
	relayed := fromStrangers(l.second.Received())
	t.Logf("relayed %d", relayed)
	require.LessOrEqual(t, relayed, delivered, "relayed more than was accepted")
	// The honest relay in between is not held responsible for what it let through.
	require.GreaterOrEqual(t, l.second.Gossip.Scores()[l.first.Host.ID()], 0.0, "the honest relay was scored down")
}

func fromStrangers(rs []gossiptest.Received) int {
	n := 0
	for _, r := range rs {
		if len(r.Name) > 5 && r.Name[:5] == "spam-" {
			n++
		}
	}
	return n
}

// TestIdleCatalogStreams: peers that open catalog streams and never finish their request hold
// no serving slot, so a newcomer's request is still served.
func TestIdleCatalogStreams(t *testing.T) {
	ctx := waitCtx(t)
	l := newLine(t, ctx)
	const n = 4 // as many as the node serves at once
	var idle []host.Host
	for range n {
		h := l.rawPeer(t)
		idle = append(idle, h)
		s, err := h.NewStream(ctx, l.first.Host.ID(), gossip.CatalogProtocol)
		require.NoError(t, err)
		defer s.Reset()
		_, err = s.Write([]byte{40}) // a topic of 40 bytes that never comes
		require.NoError(t, err)
	}
	require.Eventually(t, func() bool {
		open := 0
		for _, h := range idle {
			for _, c := range l.first.Host.Network().ConnsToPeer(h.ID()) {
				for _, s := range c.GetStreams() {
					if s.Protocol() == gossip.CatalogProtocol {
						open++
					}
				}
			}
		}
		return open == n
	}, 10*time.Second, 5*time.Millisecond)

	joiner := l.rawPeer(t)
	s, err := joiner.NewStream(ctx, l.first.Host.ID(), gossip.CatalogProtocol)
	require.NoError(t, err)
	defer s.Reset()
	topic := gossip.TopicName("")
	_, err = s.Write(append(binary.AppendUvarint(nil, uint64(len(topic))), topic...))
	require.NoError(t, err)
	require.NoError(t, s.CloseWrite())
	br := bufio.NewReader(s)
	for i := 0; ; i++ {
		require.Less(t, i, 100_000)
		size, err := binary.ReadUvarint(br)
		require.NoError(t, err, "the newcomer's request was refused")
		if size == 0 {
			break
		}
		_, err = io.CopyN(io.Discard, br, int64(size))
		require.NoError(t, err)
	}
}

// TestCatalogRetriedSoon: a peer that refuses the catalog exchange is asked again within
// seconds, not after CatalogRefresh.
func TestCatalogRetriedSoon(t *testing.T) {
	ctx := waitCtx(t)
	l := newLine(t, ctx)
	h, err := l.nw.Mocknet.GenPeer()
	require.NoError(t, err)
	key := h.Peerstore().PrivKey(h.ID())
	a := announce("served on the second ask")
	a.Time = time.Now()
	entry, err := proto.Marshal(signed(t, key, 1, a))
	require.NoError(t, err)
	var asked atomic.Int32
	h.SetStreamHandler(gossip.CatalogProtocol, func(s network.Stream) {
		if asked.Add(1) == 1 {
			_ = s.Reset() // busy
			return
		}
		defer s.Close()
		b := binary.AppendUvarint(nil, uint64(len(entry)))
		b = append(append(b, entry...), 0)
		_, _ = s.Write(b)
	})
	l.join(t, h)
	wctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	_, err = l.first.WaitFor(wctx, func(b gossip.Announcement) bool { return b.Root == a.Root })
	require.NoError(t, err, "the refused exchange was not retried")
	require.GreaterOrEqual(t, asked.Load(), int32(2))
}

// TestCatalogReplyFlood: a peer whose catalog reply holds thousands of entries of its own and
// of a key no node holds gets a bounded part of them in, and is scored down for the rest.
func TestCatalogReplyFlood(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	l := newLine(t, ctx)
	h, err := l.nw.Mocknet.GenPeer()
	require.NoError(t, err)
	const each = 3000
	own, stranger := h.Peerstore().PrivKey(h.ID()), throwaway(t, 1)[0]
	now := time.Now()
	var reply []byte
	for i := range each {
		for j, k := range []crypto.PrivKey{own, stranger} {
			a := announce(fmt.Sprintf("spam-%d-%d", j, i))
			a.Time = now
			b, err := proto.Marshal(signed(t, k, uint64(i+1), a))
			require.NoError(t, err)
			reply = append(binary.AppendUvarint(reply, uint64(len(b))), b...)
		}
	}
	reply = append(reply, 0)
	served := make(chan struct{})
	h.SetStreamHandler(gossip.CatalogProtocol, func(s network.Stream) {
		defer close(served)
		defer s.Close()
		_, _ = s.Write(reply)
	})
	l.join(t, h)
	select {
	case <-served:
	case <-ctx.Done():
		t.Fatal("the honest node never asked for the catalog")
	}
	first := l.first.Gossip
	// Every entry the node read is delivered or counted; it stops reading at the reply's
	// bound.
	require.Eventually(t, func() bool {
		st := first.Stats()
		return st.Catalog > 0 && st.Delivered == st.Catalog
	}, 20*time.Second, 10*time.Millisecond)
	delivered := fromStrangers(l.first.Received())
	t.Logf("delivered %d of %d; rejected %v", delivered, 2*each, first.Stats().Rejected)
	require.LessOrEqual(t, delivered, 1500, "one reply brought in too much")
	require.Eventually(t, func() bool {
		s, ok := first.Scores()[h.ID()]
		return ok && s < 0
	}, 10*time.Second, 50*time.Millisecond, "the sender of an oversized reply must score below zero")
}
