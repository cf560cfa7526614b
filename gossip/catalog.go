package gossip

import (
	"bufio"
	"container/heap"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	pb "github.com/libp2p/go-libp2p-pubsub/pb"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"google.golang.org/protobuf/proto"
)

// CatalogProtocol is the catalog exchange: a peer that joins the topic asks
// each new topic peer for the signed announcements it knows.
//
// Request: uvarint length, then the topic name (at most maxTopicLen bytes);
// the asker then closes its write side. Reply: a sequence of frames, each a
// uvarint length and a pubsub message (protobuf, as signed by its author on
// the topic), ended by a zero length. At most replyLimit frames, of at most
// maxEntrySize bytes each, and at most replyPerAuthor by one author.
const CatalogProtocol protocol.ID = "/peer/catalog/1.0.0"

const (
	// A catalog reply holds at most replyLimit entries, at most replyPerAuthor of one author;
	// an asker drops the excess and penalizes the sender. Of authors it does not know, the
	// asker takes at most replyUnknown entries from one reply.
	replyLimit     = 2000
	replyPerAuthor = 1000
	replyUnknown   = 500

	reasonReplyLimit   = "catalog: reply too long"
	reasonReplyAuthor  = "catalog: too many entries of one author"
	reasonReplyUnknown = "catalog: too many entries of unknown authors"

	maxTopicLen = 256
	// maxEntrySize caps one signed message: the announcement plus the
	// envelope (author, sequence number, topic, signature, and the public
	// key when it is not inlined in the peer ID, up to RSA-4096).
	maxEntrySize = MaxMessageSize + 2048
)

// serveGate bounds the cost of serving catalogs, which can be megabytes: a
// few at a time, and each peer at most once per interval (an honest peer asks
// once per CatalogRefresh).
type serveGate struct {
	mu       sync.Mutex
	busy     int
	max      int
	interval time.Duration
	last     map[peer.ID]time.Time
}

func newServeGate(max int, interval time.Duration) *serveGate {
	return &serveGate{max: max, interval: interval, last: make(map[peer.ID]time.Time)}
}

func (sg *serveGate) admit(p peer.ID, now time.Time) bool {
	sg.mu.Lock()
	defer sg.mu.Unlock()
	if sg.busy >= sg.max {
		return false
	}
	if t, ok := sg.last[p]; ok && now.Sub(t) < sg.interval {
		return false
	}
	for q, t := range sg.last {
		if now.Sub(t) >= sg.interval {
			delete(sg.last, q)
		}
	}
	sg.last[p] = now
	sg.busy++
	return true
}

func (sg *serveGate) done() {
	sg.mu.Lock()
	sg.busy--
	sg.mu.Unlock()
}

// catalog keeps, for the exchange, the latest signed announcement of each
// provider and root. It is bounded: at most limit entries in all and
// perAuthor of one provider; past a bound the entry received longest ago
// (by our clock, not the sender's claim, which anyone can set) is dropped,
// found in O(log n) through a heap, since a single catalog reply can bring
// thousands of entries to a full cache.
type catalog struct {
	mu        sync.Mutex
	limit     int
	perAuthor int
	m         map[catalogKey]*catalogEntry
	byAuthor  map[peer.ID]map[catalogKey]*catalogEntry
	oldest    entryHeap
}

type catalogKey struct {
	provider peer.ID
	root     string
}

type catalogEntry struct {
	key      catalogKey
	time     time.Time // the announcement's
	recv     time.Time // when we received it
	withdraw bool
	msg      []byte // the pubsub message, as signed by the provider
	idx      int    // position in catalog.oldest
}

// entryHeap orders entries by the time they were received, oldest first.
type entryHeap []*catalogEntry

func (h entryHeap) Len() int           { return len(h) }
func (h entryHeap) Less(i, j int) bool { return h[i].recv.Before(h[j].recv) }
func (h entryHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].idx, h[j].idx = i, j
}
func (h *entryHeap) Push(x any) {
	e := x.(*catalogEntry)
	e.idx = len(*h)
	*h = append(*h, e)
}
func (h *entryHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return e
}

// newCatalog returns a cache of limit entries, at most a tenth of them (and at least
// replyPerAuthor) from one provider.
func newCatalog(limit int) *catalog {
	return &catalog{
		limit: limit, perAuthor: min(limit, max(limit/10, replyPerAuthor)),
		m: make(map[catalogKey]*catalogEntry), byAuthor: make(map[peer.ID]map[catalogKey]*catalogEntry),
	}
}

// isNew reports whether offer would take a.
func (c *catalog) isNew(a Announcement) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	old, ok := c.m[catalogKey{a.Provider, a.Root.KeyString()}]
	return !ok || newer(a, old)
}

func newer(a Announcement, old *catalogEntry) bool {
	return a.Time.After(old.time) || a.Time.Equal(old.time) && a.Withdraw && !old.withdraw
}

// offer records a, received at now, if it is newer than what the catalog
// holds for its provider and root (a withdrawal wins a tie), and reports
// whether it was.
func (c *catalog) offer(a Announcement, msg []byte, now time.Time) bool {
	k := catalogKey{a.Provider, a.Root.KeyString()}
	c.mu.Lock()
	defer c.mu.Unlock()
	if old, ok := c.m[k]; ok {
		if !newer(a, old) {
			return false
		}
		old.time, old.recv, old.withdraw, old.msg = a.Time, now, a.Withdraw, msg
		heap.Fix(&c.oldest, old.idx)
		return true
	}
	if c.limit == 0 {
		return true
	}
	mine := c.byAuthor[a.Provider]
	if len(mine) >= c.perAuthor {
		var first *catalogEntry
		for _, e := range mine {
			if first == nil || e.recv.Before(first.recv) {
				first = e
			}
		}
		c.removeLocked(first)
		heap.Remove(&c.oldest, first.idx)
	}
	e := &catalogEntry{key: k, time: a.Time, recv: now, withdraw: a.Withdraw, msg: msg}
	c.m[k] = e
	if c.byAuthor[a.Provider] == nil {
		c.byAuthor[a.Provider] = make(map[catalogKey]*catalogEntry)
	}
	c.byAuthor[a.Provider][k] = e
	heap.Push(&c.oldest, e)
	if len(c.m) > c.limit {
		c.removeLocked(heap.Pop(&c.oldest).(*catalogEntry))
	}
	return true
}

// removeLocked forgets e, which the caller takes out of the heap.
func (c *catalog) removeLocked(e *catalogEntry) {
	delete(c.m, e.key)
	mine := c.byAuthor[e.key.provider]
	delete(mine, e.key)
	if len(mine) == 0 {
		delete(c.byAuthor, e.key.provider)
	}
}

// snapshot returns up to limit entries, at most perAuthor of one provider
// (taking count of those already in have), the most recently received first.
func (c *catalog) snapshot(limit, perAuthor int, have map[peer.ID]int) [][]byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	es := slices.Clone(c.oldest)
	slices.SortFunc(es, func(a, b *catalogEntry) int { return b.recv.Compare(a.recv) })
	out := make([][]byte, 0, min(limit, len(es)))
	for _, e := range es {
		if len(out) == limit {
			break
		}
		if have[e.key.provider] >= perAuthor {
			continue
		}
		have[e.key.provider]++
		out = append(out, e.msg)
	}
	return out
}

func (g *Gossip) handleCatalog(s network.Stream) {
	remote := s.Conn().RemotePeer()
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		_ = s.Reset()
		return
	}
	g.wg.Add(1) // Close waits for the handler
	ctx := g.ctx
	g.mu.Unlock()
	defer g.wg.Done()
	defer func() {
		if r := recover(); r != nil {
			g.log.Error("panic serving catalog", "peer", shortID(remote), "panic", r)
			_ = s.Reset()
		}
	}()
	stop := context.AfterFunc(ctx, func() { _ = s.Reset() }) // Close ends the reply
	defer stop()
	// The request is read before a serving slot is taken, within a short deadline: a peer that
	// opens streams and never finishes asking holds no slot.
	if err := g.readCatalogRequest(s); err != nil {
		g.log.Debug("reading catalog request", "peer", shortID(remote), "err", err)
		_ = s.Reset()
		return
	}
	if !g.serveGate.admit(remote, time.Now()) {
		g.log.Debug("refusing catalog request", "peer", shortID(remote))
		_ = s.Reset()
		return
	}
	defer g.serveGate.done()
	if err := g.serveCatalog(s); err != nil {
		g.log.Debug("serving catalog", "peer", shortID(remote), "err", err)
		_ = s.Reset()
		return
	}
	_ = s.Close()
}

// requestTimeout bounds reading a catalog request, a few hundred bytes.
const requestTimeout = 5 * time.Second

func (g *Gossip) readCatalogRequest(s network.Stream) error {
	if err := s.SetReadDeadline(time.Now().Add(min(requestTimeout, g.cfg.ExchangeTimeout))); err != nil {
		return fmt.Errorf("setting deadline: %w", err)
	}
	br := bufio.NewReaderSize(s, 512)
	n, err := binary.ReadUvarint(br)
	if err != nil {
		return fmt.Errorf("reading request: %w", err)
	}
	if n > maxTopicLen {
		return fmt.Errorf("reading request: topic of %d bytes", n)
	}
	topic := make([]byte, n)
	if _, err := io.ReadFull(br, topic); err != nil {
		return fmt.Errorf("reading request: %w", err)
	}
	if string(topic) != g.topic {
		return fmt.Errorf("asked for topic %q, we serve %q", topic, g.topic)
	}
	return nil
}

func (g *Gossip) serveCatalog(s network.Stream) error {
	if err := s.SetDeadline(time.Now().Add(g.cfg.ExchangeTimeout)); err != nil {
		return fmt.Errorf("setting deadline: %w", err)
	}
	own, err := g.signShared()
	if err != nil {
		g.log.Warn("signing shared announcements", "err", err)
	}
	// A reply keeps within what an asker accepts: replyLimit entries, replyPerAuthor of one
	// author (this node's own shares first).
	if len(own) > replyPerAuthor {
		own = own[:replyPerAuthor]
	}
	have := map[peer.ID]int{g.h.ID(): len(own)}
	entries := append(own, g.cache.snapshot(replyLimit-len(own), replyPerAuthor, have)...)
	bw := bufio.NewWriter(s)
	var lb [binary.MaxVarintLen64]byte
	for _, e := range entries {
		if _, err := bw.Write(lb[:binary.PutUvarint(lb[:], uint64(len(e)))]); err != nil {
			return fmt.Errorf("writing catalog: %w", err)
		}
		if _, err := bw.Write(e); err != nil {
			return fmt.Errorf("writing catalog: %w", err)
		}
	}
	if err := bw.WriteByte(0); err != nil {
		return fmt.Errorf("writing catalog: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("writing catalog: %w", err)
	}
	return nil
}

// signShared signs the announcements of Config.Shared as pubsub messages of
// this node on the topic, the same form as a published announcement.
func (g *Gossip) signShared() ([][]byte, error) {
	if g.cfg.Shared == nil {
		return nil, nil
	}
	shared := g.cfg.Shared()
	if len(shared) == 0 {
		return nil, nil
	}
	self := g.h.ID()
	key := g.h.Peerstore().PrivKey(self)
	if key == nil {
		return nil, errors.New("no private key")
	}
	now := time.Now()
	out := make([][]byte, 0, len(shared))
	var errs []error
	for _, a := range shared {
		if err := a.Validate(now, g.cfg.MaxClockSkew); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", a.Root, err))
			continue
		}
		data, err := a.MarshalBinary()
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", a.Root, err))
			continue
		}
		m, err := signMessage(self, key, g.topic, data)
		if err != nil {
			return out, err
		}
		out = append(out, m)
	}
	return out, errors.Join(errs...)
}

// signMessage builds a pubsub message signed the way pubsub signs (the
// protobuf without signature and key, prefixed with pubsub.SignPrefix).
func signMessage(self peer.ID, key crypto.PrivKey, topic string, data []byte) ([]byte, error) {
	seqno := make([]byte, 8)
	if _, err := rand.Read(seqno); err != nil {
		return nil, err
	}
	m := &pb.Message{From: []byte(self), Data: data, Seqno: seqno, Topic: &topic}
	unsigned, err := proto.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("encoding message: %w", err)
	}
	m.Signature, err = key.Sign(append([]byte(pubsub.SignPrefix), unsigned...))
	if err != nil {
		return nil, fmt.Errorf("signing: %w", err)
	}
	if pk, _ := self.ExtractPublicKey(); pk == nil {
		if m.Key, err = crypto.MarshalPublicKey(key.GetPublic()); err != nil {
			return nil, fmt.Errorf("encoding key: %w", err)
		}
	}
	return proto.Marshal(m)
}

// errBadEntry marks a catalog entry that no honest peer would relay: the
// exchange with its sender stops.
var errBadEntry = errors.New("bad catalog entry")

// openEntry checks a signed message from a catalog reply and returns its
// announcement, with Provider set to the verified author.
func (g *Gossip) openEntry(raw []byte, now time.Time) (Announcement, error) {
	var m pb.Message
	if err := proto.Unmarshal(raw, &m); err != nil {
		return Announcement{}, fmt.Errorf("%w: %v", errBadEntry, err)
	}
	if m.GetTopic() != g.topic {
		return Announcement{}, fmt.Errorf("%w: topic %q", errBadEntry, m.GetTopic())
	}
	from, err := verifySignature(&m)
	if err != nil {
		return Announcement{}, fmt.Errorf("%w: %v", errBadEntry, err)
	}
	var a Announcement
	if err := a.UnmarshalBinary(m.GetData()); err != nil {
		return Announcement{}, fmt.Errorf("%w: %v", errBadEntry, err)
	}
	if err := a.Validate(now, g.cfg.MaxClockSkew); err != nil {
		// Possibly only our clocks disagree: skip it, keep the exchange.
		return Announcement{}, err
	}
	a.Provider = from
	return a, nil
}

// verifySignature checks m's signature against its author as pubsub does
// (StrictSign) and returns the author.
func verifySignature(m *pb.Message) (peer.ID, error) {
	if len(m.Signature) == 0 {
		return "", errors.New("missing signature")
	}
	from, err := peer.IDFromBytes(m.From)
	if err != nil {
		return "", fmt.Errorf("author: %w", err)
	}
	var pk crypto.PubKey
	if m.Key == nil {
		if pk, err = from.ExtractPublicKey(); err != nil || pk == nil {
			return "", errors.New("author key not in peer ID and not attached")
		}
	} else {
		if pk, err = crypto.UnmarshalPublicKey(m.Key); err != nil {
			return "", fmt.Errorf("attached key: %w", err)
		}
		if !from.MatchesPublicKey(pk) {
			return "", errors.New("attached key does not match author")
		}
	}
	xm := proto.CloneOf(m)
	xm.Signature, xm.Key = nil, nil
	unsigned, err := proto.Marshal(xm)
	if err != nil {
		return "", err
	}
	ok, err := pk.Verify(append([]byte(pubsub.SignPrefix), unsigned...), m.Signature)
	if err != nil || !ok {
		return "", errors.New("invalid signature")
	}
	return from, nil
}

// fetchCatalog asks p for its catalog and delivers what is new. It returns
// how many announcements were new.
func (g *Gossip) fetchCatalog(ctx context.Context, p peer.ID) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, g.cfg.ExchangeTimeout)
	defer cancel()
	s, err := g.h.NewStream(ctx, p, CatalogProtocol)
	if err != nil {
		return 0, fmt.Errorf("opening stream: %w", err)
	}
	n, err := g.readCatalog(ctx, s)
	if err != nil {
		_ = s.Reset()
		return n, err
	}
	_ = s.Close()
	return n, nil
}

func (g *Gossip) readCatalog(ctx context.Context, s network.Stream) (int, error) {
	deadline, _ := ctx.Deadline()
	if err := s.SetDeadline(deadline); err != nil {
		return 0, fmt.Errorf("setting deadline: %w", err)
	}
	req := binary.AppendUvarint(nil, uint64(len(g.topic)))
	req = append(req, g.topic...)
	if _, err := s.Write(req); err != nil {
		return 0, fmt.Errorf("writing request: %w", err)
	}
	if err := s.CloseWrite(); err != nil {
		return 0, fmt.Errorf("writing request: %w", err)
	}
	br := bufio.NewReader(s)
	remote := s.Conn().RemotePeer()
	fresh, skipped, dropped, unknown := 0, 0, 0, 0
	perAuthor := map[peer.ID]int{}
	strangers := map[peer.ID]bool{}
	defer func() {
		if dropped > 0 {
			g.budgets.penalize(remote, dropped, time.Now())
			g.log.Debug("catalog reply past its bounds", "peer", shortID(remote), "dropped", dropped)
		}
	}()
	for i := 0; ; i++ {
		l, err := binary.ReadUvarint(br)
		if err != nil {
			return fresh, fmt.Errorf("reading entry %d: %w", i, err)
		}
		if l == 0 {
			break
		}
		if l > maxEntrySize {
			return fresh, fmt.Errorf("entry %d: %w: %d bytes", i, errBadEntry, l)
		}
		if i >= replyLimit {
			// The rest is not read; it counts as much as the largest penalty.
			g.countReject(reasonReplyLimit)
			dropped += fullPenalty
			return fresh, fmt.Errorf("more than %d entries", replyLimit)
		}
		raw := make([]byte, l)
		if _, err := io.ReadFull(br, raw); err != nil {
			return fresh, fmt.Errorf("reading entry %d: %w", i, err)
		}
		now := time.Now()
		a, err := g.openEntry(raw, now)
		if errors.Is(err, errBadEntry) {
			g.countReject("catalog: " + errBadEntry.Error())
			return fresh, fmt.Errorf("entry %d from %s: %w", i, shortID(remote), err)
		}
		if err != nil {
			g.countReject("catalog: " + reason(err))
			skipped++
			continue
		}
		if a.Provider == g.h.ID() || !g.cache.isNew(a) {
			continue
		}
		// An honest reply keeps within replyPerAuthor entries of one author: past it, entries
		// are dropped and the sender penalized. Entries of authors we do not know are taken up
		// to replyUnknown, and the budgets (the sender's hourly one, the author's, new
		// authors') apply to every entry as they do to gossip.
		if perAuthor[a.Provider] >= replyPerAuthor {
			g.countReject(reasonReplyAuthor)
			dropped++
			continue
		}
		connected := g.connected(a.Provider)
		stranger, seen := strangers[a.Provider] // as it was before this reply
		if !seen {
			stranger = a.Provider != remote && !connected && !g.budgets.isKnown(a.Provider)
			strangers[a.Provider] = stranger
		}
		if stranger && unknown >= replyUnknown {
			g.countReject(reasonReplyUnknown)
			continue
		}
		if why := g.budgets.admit(remote, a.Provider, connected, false, now); why != "" {
			g.countReject("catalog: " + why)
			continue
		}
		perAuthor[a.Provider]++
		if stranger {
			unknown++
		}
		if !g.cache.offer(a, raw, now) {
			continue
		}
		if !g.enqueue(ctx, a) {
			return fresh, ctx.Err()
		}
		fresh++
	}
	if skipped > 0 {
		g.log.Debug("catalog entries skipped", "peer", shortID(remote), "n", skipped)
	}
	return fresh, nil
}

// rejectTracer counts the messages pubsub refuses before our validator runs
// (bad or missing signatures, full queues; rejections by the validator are
// counted by the validator itself), and tracks our mesh on the topic. Its
// methods run on pubsub's event loop and must not call into pubsub.
type rejectTracer struct{ g *Gossip }

var _ pubsub.RawTracer = rejectTracer{}

func (t rejectTracer) RejectMessage(msg *pubsub.Message, why string) {
	if msg.GetTopic() != t.g.topic {
		return
	}
	switch why {
	case pubsub.RejectValidationFailed, pubsub.RejectValidationIgnored:
		return
	}
	t.g.countReject(why)
}

func (rejectTracer) OnNewOutboundStream(peer.ID, protocol.ID) {}
func (t rejectTracer) Graft(p peer.ID, topic string) {
	if topic != t.g.topic {
		return
	}
	t.g.meshMu.Lock()
	t.g.mesh[p] = struct{}{}
	t.g.signalLocked()
	t.g.meshMu.Unlock()
}

func (t rejectTracer) Prune(p peer.ID, topic string) {
	if topic != t.g.topic {
		return
	}
	t.g.meshMu.Lock()
	delete(t.g.mesh, p)
	t.g.meshMu.Unlock()
}

func (t rejectTracer) OnClosedOutboundStream(p peer.ID) {
	t.g.meshMu.Lock()
	delete(t.g.mesh, p)
	t.g.meshMu.Unlock()
}

func (rejectTracer) Join(string)                                          {}
func (rejectTracer) Leave(string)                                         {}
func (rejectTracer) ValidateMessage(*pubsub.Message)                      {}
func (rejectTracer) DeliverMessage(*pubsub.Message)                       {}
func (rejectTracer) DuplicateMessage(*pubsub.Message)                     {}
func (rejectTracer) ThrottlePeer(peer.ID)                                 {}
func (rejectTracer) RecvRPC(*pubsub.RPC)                                  {}
func (rejectTracer) SendRPC(*pubsub.RPC, peer.ID)                         {}
func (rejectTracer) SendRPCCompleted(*pubsub.RPC, peer.ID, time.Duration) {}
func (rejectTracer) DropRPC(*pubsub.RPC, peer.ID)                         {}
func (rejectTracer) UndeliverableMessage(*pubsub.Message)                 {}
