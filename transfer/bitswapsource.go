package transfer

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"time"

	bsmsg "github.com/ipfs/boxo/bitswap/message"
	pb "github.com/ipfs/boxo/bitswap/message/pb"
	bsnetwork "github.com/ipfs/boxo/bitswap/network"
	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/multiformats/go-multistream"

	"peer/transfer/wire"
)

// A provider that does not speak ID (IPFS nodes: Kubo, Helia, boxo) is asked over Bitswap in
// the same fetch: its session sends Bitswap wantlists (want-block with send-DONT_HAVE, in the
// order the scheduler assigns, the earliest with the highest priority, and cancels for work
// that moved elsewhere) through boxo's Bitswap network on our host, and the blocks and
// DONT_HAVEs it answers with go through the same path as those of our protocol: the window,
// the hashing against the CID, Deliver, the stall and end-game rules, and the ban of a peer
// that sends a bad block. Bitswap names a received block by hashing it with the prefix the
// sender gives, so a block whose bytes are not those of the CID asked arrives as a block
// nobody asked for: from a peer with a session, that is a bad block, and the peer is dropped
// and banned.

// Bitswap lets fetches ask peers that do not speak ID over Bitswap. It is a boxo Receiver:
// the network that carries it must be started with it among its receivers (net.Start), so
// that the blocks peers send reach the sessions that asked for them. One Bitswap serves every
// fetch of a Transfer (WithBitswap).
type Bitswap struct {
	net bsnetwork.BitSwapNetwork

	mu    sync.Mutex
	peers map[peer.ID]*bitswapPeer
}

// bitswapPeer is what the fetches of this node have asked of one Bitswap peer.
type bitswapPeer struct {
	sessions []*session // sessions asking it now (one per fetch that uses it)
	// late remembers the last CIDs (up to lateMemory) any session asked of it: a block for one
	// that no session wants now is an answer that crossed a cancel, or a second copy (the
	// server sends a block again to a second session that asks for it), not a lie.
	late     map[cid.Cid]struct{}
	lateRing []cid.Cid
	lateNext int
}

// lateMemory bounds the CIDs remembered per peer as asked; a session has at most
// maxOutstanding requests out.
const lateMemory = 4 * maxOutstanding

func (bp *bitswapPeer) forget(c cid.Cid) {
	if _, ok := bp.late[c]; ok {
		return
	}
	if len(bp.lateRing) < lateMemory {
		bp.lateRing = append(bp.lateRing, c)
	} else {
		delete(bp.late, bp.lateRing[bp.lateNext])
		bp.lateRing[bp.lateNext] = c
		bp.lateNext = (bp.lateNext + 1) % lateMemory
	}
	bp.late[c] = struct{}{}
}

// NewBitswap returns the Bitswap side of fetches over net, which must be on the Transfer's host.
func NewBitswap(net bsnetwork.BitSwapNetwork) *Bitswap {
	return &Bitswap{net: net, peers: make(map[peer.ID]*bitswapPeer)}
}

var _ bsnetwork.Receiver = (*Bitswap)(nil)

// join registers s as asking its peer.
func (b *Bitswap) join(s *session) {
	b.mu.Lock()
	defer b.mu.Unlock()
	bp := b.peers[s.p]
	if bp == nil {
		bp = &bitswapPeer{late: make(map[cid.Cid]struct{})}
		b.peers[s.p] = bp
	}
	bp.sessions = append(bp.sessions, s)
}

// leave unregisters s; asked are the CIDs it asked and no longer wants. It returns those no
// other session asks of the peer: the ones to cancel.
func (b *Bitswap) leave(s *session, asked []cid.Cid) []cid.Cid {
	b.mu.Lock()
	bp := b.peers[s.p]
	if bp == nil {
		b.mu.Unlock()
		return nil // disconnected: its wantlist went with the connection
	}
	bp.sessions = slices.DeleteFunc(bp.sessions, func(o *session) bool { return o == s })
	for _, c := range asked {
		bp.forget(c)
	}
	others := slices.Clone(bp.sessions)
	b.mu.Unlock()
	return unshared(others, asked)
}

// asked records that s asked its peer for cs.
func (b *Bitswap) asked(s *session, cs []cid.Cid) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if bp := b.peers[s.p]; bp != nil {
		for _, c := range cs {
			bp.forget(c)
		}
	}
}

// sessionsOf returns what is known of p and the sessions asking it.
func (b *Bitswap) sessionsOf(p peer.ID) (*bitswapPeer, []*session) {
	b.mu.Lock()
	defer b.mu.Unlock()
	bp := b.peers[p]
	if bp == nil {
		return nil, nil
	}
	return bp, slices.Clone(bp.sessions)
}

func (b *Bitswap) isLate(bp *bitswapPeer, c cid.Cid) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	_, ok := bp.late[c]
	return ok
}

// unshared returns the CIDs of cs that none of others has asked for and still wants.
func unshared(others []*session, cs []cid.Cid) []cid.Cid {
	if len(others) == 0 || len(cs) == 0 {
		return cs
	}
	out := cs[:0:0]
	for _, c := range cs {
		if !slices.ContainsFunc(others, func(o *session) bool { return o.wantsBitswap(c) }) {
			out = append(out, c)
		}
	}
	return out
}

// wantsBitswap reports whether s has c requested and not yet answered.
func (s *session) wantsBitswap(c cid.Cid) bool {
	s.f.mu.Lock()
	defer s.f.mu.Unlock()
	if s.dead {
		return false
	}
	_, out := s.out[c]
	return out
}

// ReceiveMessage takes a message a Bitswap peer sent: its blocks and DONT_HAVEs go to the
// sessions that asked that peer for them. It is called by boxo's network on the goroutine
// reading the peer's stream, and blocks while verification is busy: the stream then waits.
func (b *Bitswap) ReceiveMessage(_ context.Context, p peer.ID, msg bsmsg.BitSwapMessage) {
	bp, ss := b.sessionsOf(p)
	if len(ss) == 0 {
		return // nobody asks it anything now: an answer to a fetch that ended
	}
	for _, blk := range msg.Blocks() {
		c, data := blk.Cid(), blk.RawData()
		taken, ended := false, false
		for _, s := range ss {
			ok, dead := s.bitswapBlock(c, data)
			taken = taken || ok
			ended = ended || dead
		}
		// A session that ended may have asked for it, and not yet have told the peer (late).
		if taken || ended || b.isLate(bp, c) {
			continue
		}
		bad := fmt.Errorf("%w: Bitswap block %s matches no CID asked of the peer", ErrBadBlock, shortCID(c))
		for _, s := range ss {
			s.f.mu.Lock()
			dead := s.dead
			if !dead {
				s.stats.Bad++
				s.f.stats.BadBlocks++
				s.stats.Bytes += int64(len(data))
				s.f.stats.Received += int64(len(data))
			}
			s.f.mu.Unlock()
			if !dead {
				s.f.dropSession(s, bad, true)
			}
		}
		return
	}
	for _, c := range msg.DontHaves() {
		for _, s := range ss {
			if !s.wantsBitswap(c) {
				continue
			}
			s.lastByte.Store(time.Now().UnixNano())
			if err := s.onDontHave(c); err != nil && !errors.Is(err, ErrUnrequested) {
				s.f.dropSession(s, err, !errors.Is(err, errNoRoot))
			}
		}
	}
}

// bitswapBlock hands a block from the peer to s if s asked for it; it reports whether it did,
// and whether s has ended.
func (s *session) bitswapBlock(c cid.Cid, data []byte) (taken, dead bool) {
	f := s.f
	f.mu.Lock()
	_, out := s.out[c]
	_, canceled := s.canceled[c]
	dead = s.dead
	f.mu.Unlock()
	if dead || (!out && !canceled) {
		return false, dead
	}
	s.lastByte.Store(time.Now().UnixNano())
	// One message at a time per session: a block waiting here stays requested (in the
	// window), so the session asks for no more until verification has room for it.
	s.recv.Lock()
	defer s.recv.Unlock()
	if len(data) > wire.MaxBlockSize {
		f.dropSession(s, fmt.Errorf("%w: Bitswap block %s of %d bytes, more than %d", wire.ErrProtocol, shortCID(c), len(data), wire.MaxBlockSize), true)
		return true, false
	}
	// The message's bytes are boxo's (every receiver of the message sees them): the fetch
	// takes a copy into its own reused buffers.
	buf := wire.GetBuffer(len(data))
	copy(buf, data)
	s.bytesIn.Add(int64(len(data)))
	if err := s.onBlock(c, buf); err != nil && !errors.Is(err, ErrUnrequested) {
		f.dropSession(s, err, true)
	}
	// ErrUnrequested here: another message answered c since it was looked up, a duplicate.
	return true, false
}

// ReceiveError is told of a Bitswap stream that broke; the sessions notice a peer that stops
// answering by its silence (the stall timeout).
func (b *Bitswap) ReceiveError(error) {}

// PeerConnected needs nothing: a session asks once it starts.
func (b *Bitswap) PeerConnected(peer.ID) {}

// PeerDisconnected drops the peer's sessions at once (their work goes to others) and forgets it.
func (b *Bitswap) PeerDisconnected(p peer.ID) {
	b.mu.Lock()
	bp := b.peers[p]
	delete(b.peers, p)
	b.mu.Unlock()
	if bp == nil {
		return
	}
	for _, s := range bp.sessions {
		s.f.dropSession(s, errors.New("Bitswap peer disconnected"), false)
	}
}

// WithBitswap lets fetches ask providers that do not speak ID over Bitswap, through b (nil:
// they are dropped from the fetch).
func WithBitswap(b *Bitswap) Option {
	return func(c *config) error {
		c.bitswap = b
		return nil
	}
}

// speaksOnlyOthers reports whether identify says p speaks protocols, none of them ID: such a
// peer is asked over Bitswap without trying ID first.
func speaksOnlyOthers(h host.Host, p peer.ID) bool {
	protos, err := h.Peerstore().GetProtocols(p)
	return err == nil && len(protos) > 0 && !slices.Contains(protos, protocol.ID(ID))
}

// notSupported reports whether opening a stream failed because the peer does not speak ID.
func notSupported(err error) bool {
	return errors.Is(err, multistream.ErrNotSupported[protocol.ID]{})
}

// errNoBitswap drops a provider that speaks neither ID nor Bitswap.
var errNoBitswap = errors.New("peer speaks neither " + ID + " nor Bitswap")

// runBitswap is the session of a peer that does not speak ID: the writer sends Bitswap
// wantlists as the window allows; answers arrive through b.ReceiveMessage.
func (s *session) runBitswap(b *Bitswap) {
	f := s.f
	ctx, cancel := context.WithTimeout(s.ctx, f.t.cfg.dialTimeout)
	ms, err := b.net.NewMessageSender(ctx, s.p, &bsnetwork.MessageSenderOpts{MaxRetries: 1, SendTimeout: f.t.cfg.dialTimeout})
	cancel()
	if err != nil {
		f.dropSession(s, fmt.Errorf("%w: %w", errNoBitswap, err), false)
		return
	}
	b.join(s)
	f.mu.Lock()
	if s.dead {
		f.mu.Unlock()
		b.leave(s, nil)
		_ = ms.Reset()
		return
	}
	s.opened = true
	s.stats.Bitswap = true
	f.mu.Unlock()
	s.lastByte.Store(time.Now().UnixNano())
	f.t.h.ConnManager().Protect(s.p, f.tag)
	defer f.t.h.ConnManager().Unprotect(s.p, f.tag)

	s.bitswapWriteLoop(b, ms)

	f.mu.Lock()
	s.dead = true
	// Everything it asked and did not get (order holds every request sent, answered or not),
	// and the cancels not yet sent.
	asked := make([]cid.Cid, 0, len(s.order)+len(s.pendingCancel)+len(s.canceled))
	for _, k := range s.order {
		asked = append(asked, k.c)
	}
	asked = append(asked, s.pendingCancel...)
	for c := range s.canceled {
		asked = append(asked, c)
	}
	s.pendingCancel = nil
	f.mu.Unlock()
	cancels := b.leave(s, asked)
	_ = ms.Reset()
	if len(cancels) == 0 || !f.t.track() {
		return
	}
	// The peer would go on sending what is no longer wanted: cancel it, on a stream of its
	// own (the session's was reset), without holding up the end of the fetch.
	go func() {
		defer f.t.wg.Done()
		msg := bsmsg.New(false)
		for _, c := range cancels {
			msg.Cancel(c)
		}
		ctx, cancel := context.WithTimeout(f.t.ctx, writeTimeout(msg.Size()))
		defer cancel()
		if err := b.net.SendMessage(ctx, s.p, msg); err != nil {
			f.t.log.Debug("canceling Bitswap wants", "peer", s.p.ShortString(), "err", err)
		}
	}()
}

// bitswapWriteLoop sends the session's wants and cancels as Bitswap messages until it ends.
func (s *session) bitswapWriteLoop(b *Bitswap, ms bsnetwork.MessageSender) {
	f := s.f
	prio := int32(math.MaxInt32)
	for {
		cancels, wants, ok := s.nextBatch()
		if !ok {
			return
		}
		if len(cancels) > 0 {
			_, others := b.sessionsOf(s.p)
			others = slices.DeleteFunc(others, func(o *session) bool { return o == s })
			cancels = unshared(others, cancels)
		}
		if len(wants) == 0 && len(cancels) == 0 {
			continue
		}
		b.asked(s, wants) // before the answers can come
		msg := bsmsg.New(false)
		for _, c := range cancels {
			msg.Cancel(c)
		}
		for _, c := range wants {
			// The server sends the highest priority first: the scheduler's order.
			msg.AddEntry(c, prio, pb.Message_Wantlist_Block, true)
			if prio > 1 {
				prio--
			}
		}
		ctx, cancel := context.WithTimeout(s.ctx, writeTimeout(msg.Size()))
		err := ms.SendMsg(ctx, msg)
		cancel()
		if err != nil {
			if s.ctx.Err() == nil {
				f.dropSession(s, fmt.Errorf("sending Bitswap wantlist: %w", err), false)
			}
			return
		}
	}
}
