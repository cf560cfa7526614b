package gossip

import (
	"net"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"
)

// Score thresholds. Scores of honest peers stay in [0, topicScoreCap]; only
// invalid messages and protocol misbehaviour push a peer below zero.
const (
	// gossipThreshold: below it we stop sending IHAVE gossip to a peer and
	// ignore its gossip. One invalid message (-10) reaches it only if the peer
	// has earned nothing positive.
	gossipThreshold = -10
	// publishThreshold: below it a peer gets none of our flood publishes. Two
	// invalid messages (-40) reach it.
	publishThreshold = -40
	// graylistThreshold: below it every RPC of the peer is dropped unread.
	// Three invalid messages (-90) reach it, four (-160) even with the
	// positive cap earned.
	graylistThreshold = -80
	// topicScoreCap bounds what good behaviour can earn, so that a peer cannot
	// bank credit and then spend it on spam.
	topicScoreCap = 20
)

// scoreParams returns the peer-scoring parameters for topic. Announcements are
// rare (a few per node per day) and bursty (a user shares a directory), so the
// parameters reward presence and first deliveries a little, never punish a
// quiet mesh peer for delivering too little, and punish invalid messages
// hard: they are the only thing an honest node never sends.
//
// app is the application-specific score (P5, weight 1): forwarders of strangers go below zero
// (see budgets.score).
func scoreParams(topic string, app func(peer.ID) float64) (*pubsub.PeerScoreParams, *pubsub.PeerScoreThresholds) {
	tp := &pubsub.TopicScoreParams{
		TopicWeight: 1,

		// P1, time in mesh: up to +9.7 after an hour, so a long-lived mesh
		// peer is preferred when the mesh is pruned.
		TimeInMeshWeight:  0.0027,
		TimeInMeshQuantum: time.Second,
		TimeInMeshCap:     3600,

		// P2, first deliveries: +1 for each announcement a peer brought us
		// first, up to +10, fading to 1% over an hour.
		FirstMessageDeliveriesWeight: 1,
		FirstMessageDeliveriesDecay:  pubsub.ScoreParameterDecay(time.Hour),
		FirstMessageDeliveriesCap:    10,

		// P3/P3b, mesh delivery rate and its failure penalty: off. They
		// expect a steady message rate; on a topic this quiet they would
		// prune honest peers for staying silent.
		MeshMessageDeliveriesWeight: 0,
		MeshFailurePenaltyWeight:    0,

		// P4, invalid messages: -10 times the square of their count, the
		// count fading to 1% over an hour. One mistake (a clock a little
		// too far ahead) costs little; a spammer is graylisted after three or
		// four rejected messages and stays there for tens of minutes.
		InvalidMessageDeliveriesWeight: -10,
		InvalidMessageDeliveriesDecay:  pubsub.ScoreParameterDecay(time.Hour),
	}
	_, loop4, _ := net.ParseCIDR("127.0.0.0/8")
	_, loop6, _ := net.ParseCIDR("::1/128")
	// The IPv6 discard prefix (RFC 6666) routes nowhere, so no real peer
	// comes from it; libp2p's mocknet gives every in-process peer an address
	// there, and pubsub groups IPv6 addresses by /64.
	_, discard6, _ := net.ParseCIDR("100::/64")
	p := &pubsub.PeerScoreParams{
		Topics:        map[string]*pubsub.TopicScoreParams{topic: tp},
		TopicScoreCap: topicScoreCap,

		AppSpecificScore:  app,
		AppSpecificWeight: 1,

		// P6, many peer IDs behind one IP (a Sybil on one machine): beyond
		// 10 per address (per /64 for IPv6), -5 times the square of the
		// excess. Loopback is exempt, since local testnets run every node
		// on 127.0.0.1, and so is the discard prefix.
		IPColocationFactorWeight:    -5,
		IPColocationFactorThreshold: 10,
		IPColocationFactorWhitelist: []*net.IPNet{loop4, loop6, discard6},

		// P7, protocol misbehaviour (broken IWANT promises, GRAFT during
		// backoff): beyond 6, -10 times the square of the excess, fading
		// over 10 minutes.
		BehaviourPenaltyWeight:    -10,
		BehaviourPenaltyThreshold: 6,
		BehaviourPenaltyDecay:     pubsub.ScoreParameterDecay(10 * time.Minute),

		DecayInterval: time.Second,
		DecayToZero:   0.01,
		// Remember a departed peer's score for an hour, so a spammer cannot
		// reset it by reconnecting.
		RetainScore: time.Hour,
	}
	th := &pubsub.PeerScoreThresholds{
		GossipThreshold:   gossipThreshold,
		PublishThreshold:  publishThreshold,
		GraylistThreshold: graylistThreshold,
		// Peer exchange is off (we connect only to peers the user or the DHT
		// gives us), so this only matters if it is turned on one day.
		AcceptPXThreshold: 10,
		// Opportunistic grafting replaces a mesh whose median score falls
		// below 2 with better-scoring peers.
		OpportunisticGraftThreshold: 2,
	}
	return p, th
}
