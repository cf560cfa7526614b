package gossip_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
	"runtime"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	pb "github.com/libp2p/go-libp2p-pubsub/pb"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	mh "github.com/multiformats/go-multihash"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"peer/gossip"
	"peer/gossip/gossiptest"
)

// line is spammer - honest[0] - honest[1]: honest[1] is two hops from every
// spammer.
type line struct {
	nw     *gossiptest.Network
	first  *gossiptest.Node
	second *gossiptest.Node
}

func newLine(t *testing.T, ctx context.Context) *line {
	nw, err := gossiptest.NewNetwork(ctx, 2, gossiptest.Options{Seed: 9})
	require.NoError(t, err)
	t.Cleanup(func() { nw.Close() })
	require.NoError(t, nw.WaitMesh(ctx))
	return &line{nw: nw, first: nw.Nodes[0], second: nw.Nodes[1]}
}

// spammer is a node of its own making, with no validator, connected to the
// first honest node only.
type spammer struct {
	h     host.Host
	ps    *pubsub.PubSub
	topic *pubsub.Topic
}

func (l *line) spammer(t *testing.T, ctx context.Context, opts ...pubsub.Option) *spammer {
	h, err := l.nw.Mocknet.GenPeer()
	require.NoError(t, err)
	ps, topic := l.join(t, h, opts...)
	require.Eventually(t, func() bool {
		return len(topic.ListPeers()) == 1 && len(l.first.Gossip.Peers()) == 2
	}, 10*time.Second, 10*time.Millisecond)
	return &spammer{h: h, ps: ps, topic: topic}
}

// join runs a gossipsub router of its own making (no validator) on h, subscribes it to the
// topic and connects h to the first honest node.
func (l *line) join(t *testing.T, h host.Host, opts ...pubsub.Option) (*pubsub.PubSub, *pubsub.Topic) {
	pctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	ps, err := pubsub.NewGossipSub(pctx, h, opts...)
	require.NoError(t, err)
	topic, err := ps.Join(gossip.TopicName(""))
	require.NoError(t, err)
	sub, err := topic.Subscribe()
	require.NoError(t, err)
	t.Cleanup(sub.Cancel)
	_, err = l.nw.Mocknet.LinkPeers(h.ID(), l.first.Host.ID())
	require.NoError(t, err)
	_, err = l.nw.Mocknet.ConnectPeers(h.ID(), l.first.Host.ID())
	require.NoError(t, err)
	return ps, topic
}

// publish sends raw bytes once the spammer's mesh holds the honest node.
func (s *spammer) publish(t *testing.T, ctx context.Context, data []byte, opts ...pubsub.PubOpt) {
	opts = append(opts, pubsub.WithReadiness(pubsub.MinTopicSize(1)))
	require.NoError(t, s.topic.Publish(ctx, data, opts...))
}

func encoded(t *testing.T, a gossip.Announcement) []byte {
	b, err := a.MarshalBinary()
	require.NoError(t, err)
	return b
}

func fromNode(p peer.ID, rs []gossiptest.Received) int {
	n := 0
	for _, r := range rs {
		if r.Provider == p {
			n++
		}
	}
	return n
}

// requireScoreDrops waits until node scores p below zero.
func requireScoreDrops(t *testing.T, node *gossiptest.Node, p peer.ID) {
	t.Helper()
	require.Eventually(t, func() bool {
		s, ok := node.Gossip.Scores()[p]
		return ok && s < 0
	}, 10*time.Second, 50*time.Millisecond, "score of the spammer must drop below zero")
}

// requireNotRelayed checks, once the honest node has rejected the message,
// that the node two hops away saw nothing from the spammer: a marker the
// first node publishes afterwards arrives, and nothing else did.
func (l *line) requireNotRelayed(t *testing.T, ctx context.Context, spam peer.ID, marker string) {
	t.Helper()
	m := announce(marker)
	require.NoError(t, l.first.Gossip.Publish(ctx, m))
	_, err := l.second.WaitFor(ctx, func(b gossip.Announcement) bool { return b.Root == m.Root })
	require.NoError(t, err)
	require.Zero(t, fromNode(spam, l.second.Received()), "spam reached a node two hops away")
	require.Empty(t, l.second.Gossip.Stats().Rejected, "the second node must never see the spam")
}

func TestHostileMessagesRejected(t *testing.T) {
	sum := sha256.Sum256([]byte("x"))
	m256, err := mh.Encode(sum[:], mh.SHA2_256)
	require.NoError(t, err)
	root := cid.NewCidV1(cid.Raw, m256)
	ms := uint64(time.Now().UnixMilli())
	raw := func(name string, size uint64) []byte {
		b := []byte{gossip.Version, 0}
		b = binary.AppendUvarint(b, uint64(root.ByteLen()))
		b = append(b, root.Bytes()...)
		b = binary.AppendUvarint(b, uint64(len(name)))
		b = append(b, name...)
		b = binary.AppendUvarint(b, size)
		b = binary.AppendUvarint(b, ms)
		return append(b, 0)
	}
	cases := []struct {
		name   string
		data   func(t *testing.T) []byte
		reason error
	}{
		{"oversized", func(*testing.T) []byte { return bytes.Repeat([]byte{1}, gossip.MaxMessageSize+1) }, gossip.ErrTooLarge},
		{"malformed", func(*testing.T) []byte { return []byte{gossip.Version, 0, 0xff} }, gossip.ErrMalformed},
		{"unknown version", func(*testing.T) []byte { return append([]byte{9}, raw("a", 1)[1:]...) }, gossip.ErrVersion},
		{"bad cid", func(t *testing.T) []byte {
			a := announce("a")
			a.Time = time.Now()
			a.Root = cid.NewCidV1(cid.DagCBOR, m256)
			return encoded(t, a)
		}, gossip.ErrBadCID},
		{"bad name", func(*testing.T) []byte { return raw("../etc/passwd", 1) }, gossip.ErrBadName},
		{"name that displays as another", func(*testing.T) []byte { return raw("invoice\u202efdp.exe", 1) }, gossip.ErrBadName},
		{"absurd size", func(*testing.T) []byte { return raw("big", gossip.MaxSize+1) }, gossip.ErrBadSize},
		{"future", func(t *testing.T) []byte {
			a := announce("tomorrow")
			a.Time = time.Now().Add(24 * time.Hour)
			return encoded(t, a)
		}, gossip.ErrFutureTime},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctx := waitCtx(t)
			l := newLine(t, ctx)
			s := l.spammer(t, ctx)
			s.publish(t, ctx, c.data(t))
			require.Eventually(t, func() bool {
				return l.first.Gossip.Stats().Rejected[c.reason.Error()] == 1
			}, 10*time.Second, 10*time.Millisecond)
			require.Empty(t, l.first.Received())
			requireScoreDrops(t, l.first, s.h.ID())
			l.requireNotRelayed(t, ctx, s.h.ID(), "marker-"+c.name)
		})
	}
}

func TestFloodRejected(t *testing.T) {
	ctx := waitCtx(t)
	l := newLine(t, ctx)
	s := l.spammer(t, ctx)
	const n = 100
	for i := range n {
		a := announce(fmt.Sprintf("flood-%d", i))
		a.Time = time.Now()
		s.publish(t, ctx, encoded(t, a))
	}
	first := l.first.Gossip
	require.Eventually(t, func() bool { return first.Stats().Rejected["rate limit"] > 0 }, 10*time.Second, 10*time.Millisecond)
	requireScoreDrops(t, l.first, s.h.ID())
	accepted := fromNode(s.h.ID(), l.first.Received())
	require.GreaterOrEqual(t, accepted, gossip.DefaultConfig().Burst, "the burst is accepted")
	require.Less(t, accepted, n/2, "the flood is not")
	// The second node gets only what the first accepted, and rejects nothing.
	m := announce("marker")
	require.NoError(t, first.Publish(ctx, m))
	_, err := l.second.WaitFor(ctx, func(b gossip.Announcement) bool { return b.Root == m.Root })
	require.NoError(t, err)
	require.LessOrEqual(t, fromNode(s.h.ID(), l.second.Received()), fromNode(s.h.ID(), l.first.Received()))
	require.Zero(t, l.second.Gossip.Stats().Rejected["rate limit"])
}

func TestUnsignedRejected(t *testing.T) {
	ctx := waitCtx(t)
	l := newLine(t, ctx)
	s := l.spammer(t, ctx, pubsub.WithMessageSignaturePolicy(pubsub.StrictNoSign))
	a := announce("unsigned")
	a.Time = time.Now()
	s.publish(t, ctx, encoded(t, a))
	require.Eventually(t, func() bool {
		return l.first.Gossip.Stats().Rejected[pubsub.RejectMissingSignature] == 1
	}, 10*time.Second, 10*time.Millisecond)
	require.Empty(t, l.first.Received())
	l.requireNotRelayed(t, ctx, s.h.ID(), "marker")
}

// signAs builds a pubsub message on the topic naming author, signed with
// key (which need not be author's), with key attached.
func signAs(t *testing.T, key crypto.PrivKey, author peer.ID, a gossip.Announcement) *pb.Message {
	topic := gossip.TopicName("")
	m := &pb.Message{From: []byte(author), Data: encoded(t, a), Seqno: []byte{1, 2, 3}, Topic: &topic}
	unsigned, err := proto.Marshal(m)
	require.NoError(t, err)
	m.Signature, err = key.Sign(append([]byte(pubsub.SignPrefix), unsigned...))
	require.NoError(t, err)
	m.Key, err = crypto.MarshalPublicKey(key.GetPublic())
	require.NoError(t, err)
	return m
}

// inject writes an RPC straight onto a gossipsub stream to p, bypassing the
// spammer's own router, which would refuse to send a forged message. p's
// pubsub keeps one inbound stream per peer: when the spammer's router opens
// its own stream, p resets the injected one, perhaps before reading it, so a
// caller waits for the effect and injects again if it does not come.
func (s *spammer) inject(t *testing.T, ctx context.Context, p peer.ID, msgs ...*pb.Message) {
	st, err := s.h.NewStream(ctx, p, pubsub.GossipSubID_v11)
	require.NoError(t, err)
	b, err := proto.Marshal(&pb.RPC{Publish: msgs})
	require.NoError(t, err)
	if _, err = st.Write(append(binary.AppendUvarint(nil, uint64(len(b))), b...)); err == nil {
		err = st.CloseWrite()
	}
	if err != nil {
		t.Logf("injected stream: %v", err)
		_ = st.Reset()
	}
}

// TestForgedProviderRejected: a spammer signs with its own key messages that
// name the second honest node as author.
func TestForgedProviderRejected(t *testing.T) {
	ctx := waitCtx(t)
	l := newLine(t, ctx)
	s := l.spammer(t, ctx)
	a := announce("forged")
	a.Time = time.Now()
	victim := l.second.Host.ID()
	key := s.h.Peerstore().PrivKey(s.h.ID())
	withKey := signAs(t, key, victim, a)
	noKey := signAs(t, key, victim, a)
	noKey.Seqno, noKey.Key = []byte{4, 5, 6}, nil
	s.inject(t, ctx, l.first.Host.ID(), withKey, noKey)
	// Both messages travel in one RPC; were one of them accepted, Received would show it.
	require.Eventually(t, func() bool {
		if l.first.Gossip.Stats().Rejected[pubsub.RejectInvalidSignature] >= 2 {
			return true
		}
		s.inject(t, ctx, l.first.Host.ID(), withKey, noKey) // reset before it was read
		return false
	}, 10*time.Second, 250*time.Millisecond)
	require.Empty(t, l.first.Received())
	l.requireNotRelayed(t, ctx, victim, "marker")
	require.Zero(t, fromNode(s.h.ID(), l.second.Received()))
}

// TestForgedCatalogEntry: a peer whose catalog reply holds an entry it
// forged (signed by itself, naming another author) is cut off, and nothing
// it sent after that entry is delivered.
func TestForgedCatalogEntry(t *testing.T) {
	ctx := waitCtx(t)
	l := newLine(t, ctx)
	h, err := l.nw.Mocknet.GenPeer()
	require.NoError(t, err)
	key := h.Peerstore().PrivKey(h.ID())
	sign := func(author peer.ID, a gossip.Announcement) []byte {
		a.Time = time.Now()
		b, err := proto.Marshal(signAs(t, key, author, a))
		require.NoError(t, err)
		return b
	}
	genuine, forged, after := announce("genuine"), announce("forged"), announce("after")
	served := make(chan struct{})
	h.SetStreamHandler(gossip.CatalogProtocol, func(s network.Stream) {
		defer s.Close()
		defer close(served)
		var buf bytes.Buffer
		for _, e := range [][]byte{sign(h.ID(), genuine), sign(l.second.Host.ID(), forged), sign(h.ID(), after)} {
			buf.Write(binary.AppendUvarint(nil, uint64(len(e))))
			buf.Write(e)
		}
		buf.WriteByte(0)
		s.Write(buf.Bytes())
	})
	// Joining the topic makes the honest node ask for the catalog.
	l.join(t, h)

	select {
	case <-served:
	case <-ctx.Done():
		t.Fatal("the honest node never asked for the catalog")
	}
	r, err := l.first.WaitFor(ctx, func(b gossip.Announcement) bool { return b.Root == genuine.Root })
	require.NoError(t, err)
	require.Equal(t, h.ID(), r.Provider)
	require.Eventually(t, func() bool {
		return l.first.Gossip.Stats().Rejected["catalog: bad catalog entry"] == 1
	}, 10*time.Second, 10*time.Millisecond)
	for _, got := range l.first.Received() {
		require.NotEqual(t, forged.Root, got.Root)
		require.NotEqual(t, after.Root, got.Root)
	}
}

// TestTopicFlood: a peer that announces 100,000 topics of no interest to the node costs it no
// memory; the topic the node is on still counts the peer.
func TestTopicFlood(t *testing.T) {
	ctx := waitCtx(t)
	l := newLine(t, ctx)
	h, err := l.nw.Mocknet.GenPeer()
	require.NoError(t, err)
	for _, id := range []protocol.ID{pubsub.GossipSubID_v11, pubsub.GossipSubID_v12, pubsub.GossipSubID_v13} {
		h.SetStreamHandler(id, func(s network.Stream) { _, _ = io.Copy(io.Discard, s); _ = s.Reset() })
	}
	_, err = l.nw.Mocknet.LinkPeers(h.ID(), l.first.Host.ID())
	require.NoError(t, err)
	_, err = l.nw.Mocknet.ConnectPeers(h.ID(), l.first.Host.ID())
	require.NoError(t, err)
	st, err := h.NewStream(ctx, l.first.Host.ID(), pubsub.GossipSubID_v11)
	require.NoError(t, err)
	defer st.Reset()
	write := func(subs []*pb.RPC_SubOpts) {
		b, err := proto.Marshal(&pb.RPC{Subscriptions: subs})
		require.NoError(t, err)
		_, err = st.Write(append(binary.AppendUvarint(nil, uint64(len(b))), b...))
		require.NoError(t, err)
	}

	before := heapInUse()
	yes := true
	const topics, perRPC = 100_000, 100
	for i := 0; i < topics; i += perRPC {
		subs := make([]*pb.RPC_SubOpts, perRPC)
		for j := range subs {
			topic := fmt.Sprintf("/not/our/topic/%064d", i+j)
			subs[j] = &pb.RPC_SubOpts{Subscribe: &yes, Topicid: &topic}
		}
		write(subs)
	}
	// RPCs from one peer are handled in order: once the node counts the peer on its own topic,
	// it has handled every RPC before.
	ours := gossip.TopicName("")
	write([]*pb.RPC_SubOpts{{Subscribe: &yes, Topicid: &ours}})
	require.Eventually(t, func() bool { return slices.Contains(l.first.Gossip.Peers(), h.ID()) }, 20*time.Second, 10*time.Millisecond)
	grown := int64(heapInUse()) - int64(before)
	t.Logf("heap grew %.1f MiB for %d topics", float64(grown)/(1<<20), topics)
	require.Less(t, grown, int64(16<<20))
}

func heapInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

// TestOversizedRPC: a gossipsub frame larger than any announcement traffic needs ends the
// stream before the node buffers it.
func TestOversizedRPC(t *testing.T) {
	ctx := waitCtx(t)
	l := newLine(t, ctx)
	h, err := l.nw.Mocknet.GenPeer()
	require.NoError(t, err)
	_, err = l.nw.Mocknet.LinkPeers(h.ID(), l.first.Host.ID())
	require.NoError(t, err)
	_, err = l.nw.Mocknet.ConnectPeers(h.ID(), l.first.Host.ID())
	require.NoError(t, err)
	st, err := h.NewStream(ctx, l.first.Host.ID(), pubsub.GossipSubID_v11)
	require.NoError(t, err)
	var waited atomic.Bool
	stop := time.AfterFunc(10*time.Second, func() { waited.Store(true); _ = st.Reset() }) // mocknet has no deadlines
	defer stop.Stop()
	_, err = st.Write(binary.AppendUvarint(nil, 512<<10)) // the length of a frame that never comes
	require.NoError(t, err)
	_, err = st.Read(make([]byte, 1))
	require.Error(t, err)
	require.False(t, waited.Load(), "the node resets the stream at once")
}
