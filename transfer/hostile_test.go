package transfer_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/net/connmgr"
	libp2ptls "github.com/libp2p/go-libp2p/p2p/security/tls"
	"github.com/stretchr/testify/require"

	"peer/transfer"
	"peer/transfer/wire"
)

// staller is a host that reads requests and never answers.
type staller struct {
	seeder
	wants atomic.Int64
}

func newStaller(t *testing.T) *staller {
	st := &staller{seeder: seeder{h: newHost(t)}}
	st.h.SetStreamHandler(transfer.ID, func(s network.Stream) {
		r := wire.NewReader(s, nil)
		for {
			m, err := r.Read()
			if err != nil {
				_ = s.Reset()
				return
			}
			st.wants.Add(int64(len(m.CIDs)))
		}
	})
	return st
}

// hostileServer answers the first Want with what reply returns, then
// reports how the stream ended on its side.
func hostileServer(t *testing.T, reply func(want []cid.Cid) []byte) (seeder, <-chan error) {
	h := newHost(t)
	ended := make(chan error, 1)
	h.SetStreamHandler(transfer.ID, func(s network.Stream) {
		_ = s.SetDeadline(time.Now().Add(10 * time.Second))
		m, err := wire.NewReader(s, nil).Read()
		if err != nil {
			ended <- err
			return
		}
		_, _ = s.Write(reply(m.CIDs))
		_, err = io.Copy(io.Discard, s)
		ended <- err
		_ = s.Reset()
	})
	return seeder{h: h}, ended
}

func TestHostileServer(t *testing.T) {
	d := buildDAG(t, 64<<10, 16<<10, 1024, 11)
	other := buildDAG(t, 100, 16<<10, 1024, 12)
	otherBlock, _ := other.store.Get(t.Context(), other.root)
	tests := []struct {
		name  string
		reply func(want []cid.Cid) []byte
		want  error
	}{
		{"oversized frame", func([]cid.Cid) []byte {
			return binary.AppendUvarint(nil, wire.MaxFrameSize+1)
		}, wire.ErrFrameTooLarge},
		{"unknown type", func([]cid.Cid) []byte { return []byte{2, 0x42, 0} }, wire.ErrUnknownType},
		{"client message type", func(w []cid.Cid) []byte {
			b, _ := wire.AppendControl(nil, &wire.Message{Type: wire.TypeWant, CIDs: w})
			return b
		}, wire.ErrUnknownType},
		{"unrequested block", func([]cid.Cid) []byte {
			var b bytes.Buffer
			_ = wire.WriteBlock(&b, other.root, otherBlock)
			return b.Bytes()
		}, transfer.ErrUnrequested},
		{"unrequested dont-have", func([]cid.Cid) []byte {
			b, _ := wire.AppendControl(nil, &wire.Message{Type: wire.TypeDontHave, CID: other.root})
			return b
		}, transfer.ErrUnrequested},
		{"garbage", func([]cid.Cid) []byte { return []byte{5, 3, 0xff, 0xff, 0xff, 0xff} }, wire.ErrProtocol},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bad, ended := hostileServer(t, tt.reply)
			var mu sync.Mutex
			reported := map[peer.ID]error{}
			_, tr, ids := newFetcher(t, []seeder{bad},
				transfer.WithNoProvidersTimeout(200*time.Millisecond),
				transfer.WithMisbehaviour(func(p peer.ID, err error) {
					mu.Lock()
					reported[p] = err
					mu.Unlock()
				}))
			_, err := tr.Fetch(t.Context(), request(d, ids, newCollector()))
			require.ErrorIs(t, err, transfer.ErrNoProviders)
			mu.Lock()
			require.ErrorIs(t, reported[bad.h.ID()], tt.want)
			mu.Unlock()
			require.True(t, tr.Banned(bad.h.ID()))
			endErr := <-ended
			require.Error(t, endErr, "the stream is reset, not closed cleanly")
		})
	}
}

func TestHostileClient(t *testing.T) {
	d := buildDAG(t, 64<<10, 16<<10, 1024, 13)
	want := func(cids []cid.Cid) []byte {
		b, err := wire.AppendControl(nil, &wire.Message{Type: wire.TypeWant, CIDs: cids})
		require.NoError(t, err)
		return b
	}
	many := []cid.Cid{d.root}
	for i := range 16 { // distinct: a CID already queued is not queued again
		many = append(many, buildDAG(t, 100, 16<<10, 1024, uint64(100+i)).root)
	}
	tests := []struct {
		name string
		send []byte
		want error
	}{
		{"oversized frame", binary.AppendUvarint(nil, wire.MaxFrameSize+1), wire.ErrFrameTooLarge},
		{"oversized control frame", append(binary.AppendUvarint(nil, wire.MaxControlSize+1), byte(wire.TypeWant)), wire.ErrFrameTooLarge},
		{"unknown type", []byte{1, 0x42}, wire.ErrUnknownType},
		{"server message type", []byte{3, byte(wire.TypeBlock), 1, 0}, wire.ErrUnknownType},
		{"too many queued", want(many), wire.ErrProtocol},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var mu sync.Mutex
			reported := map[peer.ID]error{}
			// A rate limit keeps the queue from draining before the test's
			// burst of wants is read.
			src := newSeeder(t, d.store, transfer.WithMaxQueuedPerStream(16), transfer.WithRateLimit(1<<10),
				transfer.WithMisbehaviour(func(p peer.ID, err error) {
					mu.Lock()
					reported[p] = err
					mu.Unlock()
				}))
			h := newHost(t)
			connect(t, h, src.h)
			s, err := h.NewStream(t.Context(), src.h.ID(), transfer.ID)
			require.NoError(t, err)
			_ = s.SetDeadline(time.Now().Add(10 * time.Second))
			_, err = s.Write(tt.send)
			require.NoError(t, err)
			_, err = io.Copy(io.Discard, s)
			require.Error(t, err, "the server resets the stream")
			require.Eventually(t, func() bool {
				mu.Lock()
				defer mu.Unlock()
				return errors.Is(reported[h.ID()], tt.want)
			}, 5*time.Second, 10*time.Millisecond)
		})
	}
}

func TestServerAnswersInOrder(t *testing.T) {
	d := buildDAG(t, 48<<10, 16<<10, 1024, 14)
	missing := buildDAG(t, 100, 16<<10, 1024, 15).root
	src := newSeeder(t, d.store)
	h := newHost(t)
	connect(t, h, src.h)
	s, err := h.NewStream(t.Context(), src.h.ID(), transfer.ID)
	require.NoError(t, err)
	_ = s.SetDeadline(time.Now().Add(10 * time.Second))

	kids, err := expand(d.root, mustGet(t, d.store, d.root))
	require.NoError(t, err)
	require.Len(t, kids, 3)
	order := []cid.Cid{kids[2], missing, d.root, kids[0], kids[1]}
	b, _ := wire.AppendControl(nil, &wire.Message{Type: wire.TypeWant, CIDs: order})
	b, _ = wire.AppendControl(b, &wire.Message{Type: wire.TypeCancel, CIDs: []cid.Cid{kids[1]}})
	_, err = s.Write(b)
	require.NoError(t, err)
	require.NoError(t, s.CloseWrite())

	r := wire.NewReader(s, nil)
	var got []cid.Cid
	var types []wire.Type
	for {
		m, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err)
		got = append(got, m.CID)
		types = append(types, m.Type)
		if m.Type == wire.TypeBlock {
			require.Equal(t, mustGet(t, d.store, m.CID), m.Data)
		}
	}
	// kids[1] may have been sent before the Cancel was read.
	require.GreaterOrEqual(t, len(got), 4)
	require.Equal(t, []cid.Cid{kids[2], missing, d.root, kids[0]}, got[:4])
	require.Equal(t, []wire.Type{wire.TypeBlock, wire.TypeDontHave, wire.TypeBlock, wire.TypeBlock}, types[:4])
}

// A client that wants one block 2,000 times in one stream gets it once.
func TestRepeatedWantsServedOnce(t *testing.T) {
	d := buildDAG(t, 64<<10, 16<<10, 1024, 17)
	src := newSeeder(t, d.store)
	h := newHost(t)
	connect(t, h, src.h)
	s, err := h.NewStream(t.Context(), src.h.ID(), transfer.ID)
	require.NoError(t, err)
	_ = s.SetDeadline(time.Now().Add(10 * time.Second))
	same := make([]cid.Cid, 100)
	for i := range same {
		same[i] = d.root
	}
	go func() {
		for range 20 {
			b, _ := wire.AppendControl(nil, &wire.Message{Type: wire.TypeWant, CIDs: same})
			if _, err := s.Write(b); err != nil {
				return
			}
		}
		_ = s.CloseWrite()
	}()
	r := wire.NewReader(s, nil)
	blocks := 0
	for {
		m, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err)
		require.Equal(t, wire.TypeBlock, m.Type)
		blocks++
	}
	require.LessOrEqual(t, blocks, 20, "at most once per frame that came after the block was sent")
	require.EqualValues(t, blocks, src.t.ServerStats().Blocks)
}

func TestStreamsPerPeerCapped(t *testing.T) {
	src := newSeeder(t, newMemStore(), transfer.WithMaxStreamsPerPeer(1))
	h := newHost(t)
	connect(t, h, src.h)
	s1, err := h.NewStream(t.Context(), src.h.ID(), transfer.ID)
	require.NoError(t, err)
	defer s1.Reset()
	// The first stream is open on the server once it answers.
	b, _ := wire.AppendControl(nil, &wire.Message{Type: wire.TypeWant, CIDs: []cid.Cid{buildDAG(t, 10, 16, 2, 16).root}})
	_, err = s1.Write(b)
	require.NoError(t, err)
	m, err := wire.NewReader(s1, nil).Read()
	require.NoError(t, err)
	require.Equal(t, wire.TypeDontHave, m.Type)

	s2, err := h.NewStream(t.Context(), src.h.ID(), transfer.ID)
	require.NoError(t, err)
	_ = s2.SetDeadline(time.Now().Add(10 * time.Second))
	_, _ = s2.Write(b)
	_, err = io.Copy(io.Discard, s2)
	require.Error(t, err)
	require.EqualValues(t, 1, src.t.ServerStats().StreamsRejected)
}

func mustGet(t *testing.T, s *memStore, c cid.Cid) []byte {
	b, err := s.Get(t.Context(), c)
	require.NoError(t, err)
	return b
}

// stuckStore never answers until the stream's context ends: a slow disk.
type stuckStore struct{}

func (stuckStore) Get(ctx context.Context, _ cid.Cid) ([]byte, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

// failingStore fails every read, as a disk with a bad sector does.
type failingStore struct{}

func (failingStore) Get(context.Context, cid.Cid) ([]byte, error) {
	return nil, errors.New("read /blocks/x: input/output error")
}

// A block the store cannot read is answered DontHave, and the stream goes on.
func TestStoreErrorAnsweredDontHave(t *testing.T) {
	d := buildDAG(t, 64<<10, 16<<10, 1024, 22)
	src := newSeeder(t, failingStore{})
	h := newHost(t)
	connect(t, h, src.h)
	s, err := h.NewStream(t.Context(), src.h.ID(), transfer.ID)
	require.NoError(t, err)
	_ = s.SetDeadline(time.Now().Add(10 * time.Second))
	b, _ := wire.AppendControl(nil, &wire.Message{Type: wire.TypeWant, CIDs: []cid.Cid{d.root}})
	r := wire.NewReader(s, nil)
	for range 2 { // the stream still answers after the first failure
		_, err = s.Write(b)
		require.NoError(t, err)
		m, err := r.Read()
		require.NoError(t, err)
		require.Equal(t, wire.TypeDontHave, m.Type)
		require.Equal(t, d.root, m.CID)
	}
	require.NoError(t, s.CloseWrite())
	_, err = r.Read()
	require.ErrorIs(t, err, io.EOF, "closed cleanly, not reset")
}

// TestHostileClientWithWorkQueued: a client that breaks the protocol after
// queueing work has its stream reset at once and is reported, without the
// server first serving what it had queued.
func TestHostileClientWithWorkQueued(t *testing.T) {
	d := buildDAG(t, 64<<10, 16<<10, 1024, 21)
	kids, err := expand(d.root, mustGet(t, d.store, d.root))
	require.NoError(t, err)
	reported := make(chan error, 1)
	src := newSeeder(t, stuckStore{}, transfer.WithMisbehaviour(func(_ peer.ID, err error) { reported <- err }))
	h := newHost(t)
	connect(t, h, src.h)
	s, err := h.NewStream(t.Context(), src.h.ID(), transfer.ID)
	require.NoError(t, err)
	_ = s.SetDeadline(time.Now().Add(10 * time.Second))
	b, err := wire.AppendControl(nil, &wire.Message{Type: wire.TypeWant, CIDs: kids})
	require.NoError(t, err)
	_, err = s.Write(append(b, 1, 0x42)) // then a frame of an unknown type
	require.NoError(t, err)
	select {
	case err := <-reported:
		require.ErrorIs(t, err, wire.ErrUnknownType)
	case <-time.After(5 * time.Second):
		t.Fatal("the server kept serving a client that broke the protocol")
	}
	_, err = io.Copy(io.Discard, s)
	require.Error(t, err, "the server resets the stream")
}

// dripFeeder is a host that answers the first CID it is asked for one byte at a time, every
// 20 ms: never silent long enough to count as stalled, and never done.
func dripFeeder(t *testing.T, d dag) (seeder, *atomic.Int64) {
	h := newHost(t)
	var sent atomic.Int64
	h.SetStreamHandler(transfer.ID, func(s network.Stream) {
		defer s.Reset()
		r := wire.NewReader(s, nil)
		m, err := r.Read()
		if err != nil || len(m.CIDs) == 0 {
			return
		}
		go func() { _, _ = io.Copy(io.Discard, s) }() // later wants and cancels
		var frame bytes.Buffer
		require.NoError(t, wire.WriteBlock(&frame, m.CIDs[0], mustGet(t, d.store, m.CIDs[0])))
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for _, b := range frame.Bytes() {
			select {
			case <-tick.C:
			case <-t.Context().Done():
				return
			}
			if _, err := s.Write([]byte{b}); err != nil {
				return // the fetcher is done with us
			}
			sent.Add(1)
		}
	})
	return seeder{h: h}, &sent
}

// A provider that drip-feeds a block holds none of the fetch hostage: the end game moves what it
// holds, the one it is sending included, to a peer that delivers, long before any stall timeout.
// The drip feeder is the only provider at first, so it is asked for the root; the good one comes
// from Find once the drip has begun.
func TestDripFeedingSourceHoldsNothingHostage(t *testing.T) {
	d := buildDAG(t, 2<<20, 16<<10, 1024, 13)
	drip, sent := dripFeeder(t, d)
	good := newSeeder(t, d.store, transfer.WithRateLimit(8<<20))
	_, tr, ids := newFetcher(t, []seeder{drip, good})
	got := newCollector()
	req := request(d, ids[:1], got)
	req.Find = func(ctx context.Context) <-chan peer.AddrInfo {
		ch := make(chan peer.AddrInfo, 1)
		go func() {
			defer close(ch)
			tick := time.NewTicker(5 * time.Millisecond)
			defer tick.Stop()
			for sent.Load() == 0 {
				select {
				case <-tick.C:
				case <-ctx.Done():
					return
				}
			}
			ch <- peer.AddrInfo{ID: good.h.ID(), Addrs: good.h.Addrs()}
		}()
		return ch
	}
	start := time.Now()
	st, err := tr.Fetch(t.Context(), req)
	require.NoError(t, err)
	requireComplete(t, d, got)
	require.Zero(t, st.Peers[drip.h.ID()].Blocks)
	require.Positive(t, sent.Load(), "the drip feeder was asked for a block and sent some of it")
	require.Less(t, time.Since(start), 10*time.Second, "the default stall timeout never came into it")
}

// managedHost is a host with a real connection manager, whose tags and protections a test can
// read.
func managedHost(t *testing.T) (host.Host, *connmgr.BasicConnMgr) {
	cm, err := connmgr.NewConnManager(10, 20)
	require.NoError(t, err)
	h, err := libp2p.New(
		libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"),
		libp2p.Security(libp2ptls.ID, libp2ptls.New),
		libp2p.DisableRelay(),
		libp2p.ConnectionManager(cm),
	)
	require.NoError(t, err)
	t.Cleanup(func() { _ = h.Close() })
	return h, cm
}

// A peer being fetched from is protected from the connection manager for as long as its
// session lasts.
func TestFetchProtectsItsPeers(t *testing.T) {
	d := buildDAG(t, 64<<10, 16<<10, 1024, 23)
	st := newStaller(t)
	h, cm := managedHost(t)
	tr := transfer.New(h, nil)
	require.NoError(t, tr.Start())
	t.Cleanup(func() { _ = tr.Close() })
	connect(t, h, st.h)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		_, err := tr.Fetch(ctx, request(d, []peer.ID{st.h.ID()}, newCollector()))
		done <- err
	}()
	require.Eventually(t, func() bool { return st.wants.Load() > 0 && cm.IsProtected(st.h.ID(), "") }, 5*time.Second, 5*time.Millisecond)
	cancel()
	require.Error(t, <-done)
	require.Eventually(t, func() bool { return !cm.IsProtected(st.h.ID(), "") }, 5*time.Second, 5*time.Millisecond)
}

// A peer that sent garbage is tagged for trimming while its ban lasts, and no longer after.
func TestPenaltyEndsWithTheBan(t *testing.T) {
	d := buildDAG(t, 64<<10, 16<<10, 1024, 24)
	bad, _ := hostileServer(t, func([]cid.Cid) []byte { return []byte{5, 3, 0xff, 0xff, 0xff, 0xff} })
	h, cm := managedHost(t)
	tr := transfer.New(h, nil, transfer.WithBanDuration(300*time.Millisecond), transfer.WithNoProvidersTimeout(100*time.Millisecond))
	require.NoError(t, tr.Start())
	t.Cleanup(func() { _ = tr.Close() })
	connect(t, h, bad.h)
	_, err := tr.Fetch(t.Context(), request(d, []peer.ID{bad.h.ID()}, newCollector()))
	require.ErrorIs(t, err, transfer.ErrNoProviders)
	require.True(t, tr.Banned(bad.h.ID()))
	require.Equal(t, -100, cm.GetTagInfo(bad.h.ID()).Tags[transfer.PenaltyTag])
	require.Eventually(t, func() bool {
		_, tagged := cm.GetTagInfo(bad.h.ID()).Tags[transfer.PenaltyTag]
		return !tagged && !tr.Banned(bad.h.ID())
	}, 5*time.Second, 10*time.Millisecond)
}
