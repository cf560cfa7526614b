package discovery

import (
	"encoding/binary"
	"fmt"
	"runtime"
	"testing"

	"github.com/ipfs/go-cid"
	ds "github.com/ipfs/go-datastore"
	dsq "github.com/ipfs/go-datastore/query"
	"github.com/libp2p/go-libp2p"
	pb "github.com/libp2p/go-libp2p-kad-dht/pb"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-msgio/pbio"
	"github.com/multiformats/go-multihash"
	"github.com/stretchr/testify/require"
)

func TestRecordsCapAndQuota(t *testing.T) {
	ctx := t.Context()
	r := newRecords(10*(recordOverhead+100), 3)
	put := func(k string) error { return r.Put(ctx, ds.NewKey(k), make([]byte, 100-len(ds.NewKey(k).String()))) }
	for i := range 3 {
		require.NoError(t, put(fmt.Sprintf("/providers/KEY%d/PEERA", i)))
	}
	require.ErrorIs(t, put("/providers/KEY9/PEERA"), ErrRecordsFull, "a provider's quota")
	require.NoError(t, put("/providers/KEY0/PEERA"), "replacing a record is not a new one")
	require.NoError(t, put("/providers/KEY0/PEERB"))
	for i := range 6 {
		require.NoError(t, put(fmt.Sprintf("/ipns/NAME%d", i)))
	}
	require.ErrorIs(t, put("/ipns/NAME9"), ErrRecordsFull, "the size cap")
	require.NoError(t, r.Delete(ctx, ds.NewKey("/providers/KEY1/PEERA")))
	require.NoError(t, put("/providers/KEY9/PEERA"), "a deleted record frees its place")

	// A batch skips what is refused and keeps the rest.
	require.NoError(t, r.Delete(ctx, ds.NewKey("/ipns/NAME0")))
	b, err := r.Batch(ctx)
	require.NoError(t, err)
	require.NoError(t, b.Put(ctx, ds.NewKey("/providers/KEY8/PEERA"), make([]byte, 10)))
	require.NoError(t, b.Put(ctx, ds.NewKey("/providers/KEY8/PEERC"), make([]byte, 10)))
	require.NoError(t, b.Commit(ctx))
	has, err := r.Has(ctx, ds.NewKey("/providers/KEY8/PEERC"))
	require.NoError(t, err)
	require.True(t, has)
	has, err = r.Has(ctx, ds.NewKey("/providers/KEY8/PEERA"))
	require.NoError(t, err)
	require.False(t, has)
}

// TestProviderRecordFlood: a peer that sends the node 3,000 ADD_PROVIDER messages over the
// DHT protocol gets only its quota stored.
func TestProviderRecordFlood(t *testing.T) {
	h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.DisableRelay())
	require.NoError(t, err)
	t.Cleanup(func() { _ = h.Close() })
	d, err := New(h, Config{Network: "flood", Mode: ModeServer, ProviderRecordsPerPeer: 1000})
	require.NoError(t, err)
	require.NoError(t, d.Start(t.Context()))
	t.Cleanup(func() { _ = d.Close() })

	a, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.DisableRelay())
	require.NoError(t, err)
	t.Cleanup(func() { _ = a.Close() })
	require.NoError(t, a.Connect(t.Context(), peer.AddrInfo{ID: h.ID(), Addrs: h.Addrs()}))
	s, err := a.NewStream(t.Context(), h.ID(), ProtocolPrefix("flood")+"/kad/1.0.0")
	require.NoError(t, err)
	defer s.Reset()
	w, rd := pbio.NewDelimitedWriter(s), pbio.NewDelimitedReader(s, 1<<20)
	self := pb.PeerInfosToPBPeers(a.Network(), []peer.AddrInfo{{ID: a.ID(), Addrs: a.Addrs()}})
	const sent = 3000
	for i := range sent {
		mh, err := multihash.Sum(binary.AppendUvarint(nil, uint64(i)), multihash.SHA2_256, -1)
		require.NoError(t, err)
		m := &pb.Message{Type: pb.Message_ADD_PROVIDER, Key: cid.NewCidV1(cid.Raw, mh).Hash(), ProviderPeers: self}
		require.NoError(t, w.WriteMsg(m))
	}
	// The node answers messages of a stream in order: once it answers this, it has handled
	// every ADD_PROVIDER before it.
	require.NoError(t, w.WriteMsg(&pb.Message{Type: pb.Message_GET_PROVIDERS, Key: self[0].Id}))
	var reply pb.Message
	require.NoError(t, rd.ReadMsg(&reply))

	require.NoError(t, d.Close()) // flushes the provider manager's buffered writes
	d.providers.mu.Lock()
	defer d.providers.mu.Unlock()
	require.Len(t, d.providers.byPeer, 1)
	for _, n := range d.providers.byPeer {
		require.Equal(t, 1000, n)
	}
	t.Logf("%d records sent, %d stored, %d KiB counted", sent, d.providers.count, d.providers.size>>10)
}

// The providers of one key come out of a query on its prefix without the store copying out every
// record it holds (what go-datastore's map does), and deleted ones no longer come out.
func TestProviderQueryCopiesOnlyThatKey(t *testing.T) {
	ctx := t.Context()
	r := newRecords(DefaultProviderBytes, 0)
	const others = 50_000
	for i := range others {
		require.NoError(t, r.Put(ctx, ds.NewKey(fmt.Sprintf("/providers/KEY%d/PEER%d", i, i%97)), []byte("12345678")))
	}
	for _, p := range []string{"PEERA", "PEERB", "PEERC"} {
		require.NoError(t, r.Put(ctx, ds.NewKey("/providers/WANTED/"+p), []byte("t-"+p)))
	}
	require.NoError(t, r.Put(ctx, ds.NewKey("/providers/WANTEDTOO/PEERA"), []byte("other key")))
	query := func() map[string]string {
		res, err := r.Query(ctx, dsq.Query{Prefix: "/providers/WANTED"})
		require.NoError(t, err)
		all, err := res.Rest()
		require.NoError(t, err)
		got := map[string]string{}
		for _, e := range all {
			got[e.Key] = string(e.Value)
		}
		return got
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	got := query()
	runtime.ReadMemStats(&after)
	require.Equal(t, map[string]string{"/providers/WANTED/PEERA": "t-PEERA", "/providers/WANTED/PEERB": "t-PEERB",
		"/providers/WANTED/PEERC": "t-PEERC"}, got)
	// Copying out every record would take others × 72 bytes (3.6 MB) at least.
	require.Less(t, after.TotalAlloc-before.TotalAlloc, uint64(256<<10), "the query copied out the whole store")

	require.NoError(t, r.Delete(ctx, ds.NewKey("/providers/WANTED/PEERB")))
	require.Len(t, query(), 2)
	// Other queries still see everything.
	res, err := r.Query(ctx, dsq.Query{Prefix: "/providers", KeysOnly: true})
	require.NoError(t, err)
	all, err := res.Rest()
	require.NoError(t, err)
	require.Len(t, all, others+3)
}
