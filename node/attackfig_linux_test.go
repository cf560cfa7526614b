package node_test

// Figures of memory under attack: a node serving a 64 MiB file is attacked by peers of the
// test's own making while an honest node fetches the file from it again and again, verifying
// each copy. These tests only measure (set PEER_ATTACK_FIGURES=1 to run them, one per process;
// docs/BENCHMARKS.md has the command and the figures). The attacked node runs in a child
// process, this test binary running TestAttackFiguresTarget, so that its resident set (VmRSS
// and VmHWM of /proc/PID/status) holds nothing else; it reports its own heap in use.

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ipfs/boxo/ipns"
	"github.com/ipfs/boxo/path"
	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p"
	pbdht "github.com/libp2p/go-libp2p-kad-dht/pb"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	pb "github.com/libp2p/go-libp2p-pubsub/pb"
	recpb "github.com/libp2p/go-libp2p-record/pb"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-msgio/pbio"
	"github.com/multiformats/go-multihash"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"peer/discovery"
	"peer/gossip"
	"peer/node"
)

const figuresEnv = "PEER_ATTACK_FIGURES"

// figuresRan: a process that measured once holds what it took, so each figure needs a process
// of its own.
var figuresRan atomic.Bool

// figures is an attacked node in a child process (this test binary, running
// TestAttackFiguresTarget), the file it serves, an honest node in this process, and a sampler of
// the child's memory.
type figures struct {
	t        *testing.T
	target   peer.AddrInfo
	root     cid.Cid
	sum      [32]byte
	pid      int
	stdin    io.WriteCloser
	lines    chan string
	honest   *node.Node
	idleRSS  uint64
	peakRSS  atomic.Uint64
	stop     chan struct{}
	sampled  chan struct{}
	finalHWM uint64
}

// publicNode is a node on the public DHT (values kept, as discovery/records.go caps them),
// serving the DHT, bootstrapping off nothing, on loopback.
func publicNode(o *node.Options) {
	o.Config.Network = ""
	o.Config.DHTMode = "server"
}

func newFigures(t *testing.T) *figures {
	if os.Getenv(figuresEnv) == "" {
		t.Skip("set " + figuresEnv + "=1 to measure")
	}
	if figuresRan.Swap(true) {
		t.Fatal("run one TestAttackFigures test per process (-run '^TestAttackFiguresX$')")
	}
	f := &figures{t: t, stop: make(chan struct{}), sampled: make(chan struct{}), lines: make(chan string, 16)}
	cmd := exec.Command(os.Args[0], "-test.run=^TestAttackFiguresTarget$")
	cmd.Env = append(os.Environ(), "PEER_ATTACK_CHILD=1")
	var err error
	f.stdin, err = cmd.StdinPipe()
	require.NoError(t, err)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	cmd.Stderr = io.Discard
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = f.stdin.Close(); _ = cmd.Wait() })
	f.pid = cmd.Process.Pid
	go func() {
		defer close(f.lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			f.lines <- sc.Text()
		}
	}()
	ready := strings.Fields(f.reply("", "ready "))
	t.Logf("the attacked node is process %d", f.pid)
	require.Len(t, ready, 4, "ready ID ADDR ROOT SHA256")
	ai, err := peer.AddrInfoFromString(ready[1] + "/p2p/" + ready[0])
	require.NoError(t, err)
	f.target = *ai
	f.root, err = cid.Decode(ready[2])
	require.NoError(t, err)
	sum, err := hex.DecodeString(ready[3])
	require.NoError(t, err)
	f.sum = [32]byte(sum)
	f.honest = repoNode(t, nil, func(o *node.Options) { o.Config.Network = "" })
	f.idleRSS = procStatus(f.pid, "VmRSS")
	go func() {
		defer close(f.sampled)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			f.peakRSS.Store(max(f.peakRSS.Load(), procStatus(f.pid, "VmRSS")))
			select {
			case <-f.stop:
				return
			case <-tick.C:
			}
		}
	}()
	t.Cleanup(f.end)
	return f
}

// reply sends cmd (unless "") to the child and returns the rest of its first line that starts
// with prefix.
func (f *figures) reply(cmd, prefix string) string {
	if cmd != "" {
		_, err := io.WriteString(f.stdin, cmd+"\n")
		require.NoError(f.t, err)
	}
	timeout := time.After(time.Minute)
	for {
		select {
		case l, ok := <-f.lines:
			require.True(f.t, ok, "the attacked node's process ended")
			if v, ok := strings.CutPrefix(l, prefix); ok {
				return v
			}
		case <-timeout:
			f.t.Fatalf("no %q from the attacked node's process", prefix)
		}
	}
}

// gossipPeers is the peers the attacked node's gossip counts on its topic.
func (f *figures) gossipPeers() []string { return strings.Fields(f.reply("peers", "peers")) }

func (f *figures) conns() int {
	n, err := strconv.Atoi(strings.TrimSpace(f.reply("conns", "conns ")))
	require.NoError(f.t, err)
	return n
}

// TestAttackFiguresTarget is the attacked node of the figures, in a process of its own: it
// serves a 64 MiB file, prints "ready ID ADDR ROOT SHA256", answers "peers", "conns" and "heap"
// on its standard input, and ends when that closes.
func TestAttackFiguresTarget(t *testing.T) {
	if os.Getenv("PEER_ATTACK_CHILD") == "" {
		t.Skip("the attacked node of the TestAttackFigures tests")
	}
	n := repoNode(t, nil, publicNode)
	p := filepath.Join(t.TempDir(), "data.bin")
	sum := writeRandom(t, p, 64<<20)
	sf, err := n.Share(t.Context(), p, node.ShareOptions{})
	require.NoError(t, err)
	debug.FreeOSMemory()
	// Reset the peak resident set (VmHWM) to what is resident now.
	require.NoError(t, os.WriteFile("/proc/self/clear_refs", []byte("5"), 0))
	idleHeap := heapInUse()
	var peakHeap atomic.Uint64
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			peakHeap.Store(max(peakHeap.Load(), heapInUse()))
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	fmt.Printf("ready %s %s %s %x\n", n.ID(), n.Addrs()[0], sf.Root, sum)
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		switch sc.Text() {
		case "peers":
			fmt.Printf("peers %s\n", strings.Join(func() (s []string) {
				for _, p := range node.GossipPeers(n) {
					s = append(s, p.String())
				}
				return
			}(), " "))
		case "conns":
			fmt.Printf("conns %d\n", len(n.Host().Network().Peers()))
		case "heap":
			fmt.Printf("heap %d %d\n", idleHeap, peakHeap.Load())
		default:
			if p, ok := strings.CutPrefix(sc.Text(), "heapprofile "); ok {
				out, err := os.Create(p)
				if err == nil {
					err = pprof.Lookup("heap").WriteTo(out, 0)
					_ = out.Close()
				}
				fmt.Printf("heapprofile %v\n", err)
			}
		}
	}
}

// writeRandom writes size random bytes to p a MiB at a time (so that the idle figure holds no
// copy of the file) and returns their SHA-256.
func writeRandom(tb testing.TB, p string, size int64) [32]byte {
	out, err := os.Create(p)
	require.NoError(tb, err)
	defer out.Close()
	h := sha256.New()
	_, err = io.CopyBuffer(io.MultiWriter(out, h), io.LimitReader(rand.NewChaCha8([32]byte{13}), size), make([]byte, 1<<20))
	require.NoError(tb, err)
	require.NoError(tb, out.Close())
	return [32]byte(h.Sum(nil))
}

func (f *figures) end() {
	select {
	case <-f.stop:
	default:
		close(f.stop)
		<-f.sampled
		f.finalHWM = procStatus(f.pid, "VmHWM")
	}
}

// fetchWhile fetches the file from the target into the honest node over and over (at least
// once, at most 100 times) until done is closed, verifying every copy. It returns how many
// copies verified and the first error.
func (f *figures) fetchWhile(done <-chan struct{}) (verified int, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := f.honest.Host().Connect(ctx, f.target); err != nil {
		return 0, err
	}
	out := filepath.Join(f.t.TempDir(), "fetched.bin")
	for i := 0; i < 100; i++ {
		if i > 0 {
			select {
			case <-done:
				return verified, nil
			default:
			}
		}
		if _, held := f.honest.Store().File(f.root); held {
			// A held file would be written from the repo without asking anyone.
			if err := f.honest.Store().Remove(f.root); err != nil {
				return verified, err
			}
		}
		if _, err := f.honest.Fetch(ctx, f.root, node.FetchOptions{Output: out, Force: true}); err != nil {
			return verified, err
		}
		got, err := os.ReadFile(out)
		if err != nil {
			return verified, err
		}
		if sha256.Sum256(got) != f.sum {
			return verified, fmt.Errorf("copy %d does not match the file", i)
		}
		verified++
	}
	return verified, nil
}

// honestFetch runs fetchWhile in the background; its result comes when done is closed.
func (f *figures) honestFetch(done <-chan struct{}) func() (int, error) {
	type result struct {
		n   int
		err error
	}
	ch := make(chan result, 1)
	go func() { n, err := f.fetchWhile(done); ch <- result{n, err} }()
	return func() (int, error) { r := <-ch; return r.n, r.err }
}

func (f *figures) report(attack string, verified int, took time.Duration) {
	var idleHeap, peakHeap uint64
	_, err := fmt.Sscan(f.reply("heap", "heap "), &idleHeap, &peakHeap)
	require.NoError(f.t, err)
	f.end()
	peak := max(f.finalHWM, f.peakRSS.Load())
	mib := func(v uint64) float64 { return float64(v) / (1 << 20) }
	f.t.Logf("%s: attacked node RSS idle %.0f MiB, peak %.0f MiB (+%.0f); its heap in use idle %.0f MiB, peak %.0f MiB (+%.0f); honest 64 MiB fetch verified %d times; attack took %v",
		attack, mib(f.idleRSS), mib(peak), mib(peak-min(f.idleRSS, peak)),
		mib(idleHeap), mib(peakHeap), mib(peakHeap-min(idleHeap, peakHeap)), verified, took.Round(time.Millisecond))
}

// procStatus is a field of /proc/PID/status in kB, in bytes.
func procStatus(pid int, field string) uint64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

func heapInUse() uint64 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

// TestAttackFiguresBaseline: the honest fetches alone, for comparison.
func TestAttackFiguresBaseline(t *testing.T) {
	f := newFigures(t)
	done := make(chan struct{})
	close(done)
	start := time.Now()
	n, err := f.fetchWhile(done)
	require.NoError(t, err)
	f.report("no attack", n, time.Since(start))
}

// TestAttackFiguresTopicFlood: one connection announces 1,020,000 topics in RPCs of 100
// subscriptions, after one RPC of 1,000 subscriptions that the node ignores whole.
func TestAttackFiguresTopicFlood(t *testing.T) {
	f := newFigures(t)
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	ours := gossip.TopicName("")
	barrier := "barrier"
	iwant := make(chan struct{})
	var once sync.Once
	h := loopbackHost(t)
	for _, id := range []protocol.ID{pubsub.GossipSubID_v11, pubsub.GossipSubID_v12, pubsub.GossipSubID_v13} {
		// What the node sends us: we wait for its IWANT of the barrier.
		h.SetStreamHandler(id, func(s network.Stream) {
			defer s.Reset()
			r := pbio.NewDelimitedReader(s, 4<<20)
			for {
				var rpc pb.RPC
				if r.ReadMsg(&rpc) != nil {
					return
				}
				for _, w := range rpc.GetControl().GetIwant() {
					if slices.Contains(w.GetMessageIDs(), barrier) {
						once.Do(func() { close(iwant) })
					}
				}
			}
		})
	}
	require.NoError(t, h.Connect(ctx, f.target))
	st, err := h.NewStream(ctx, f.target.ID, pubsub.GossipSubID_v11)
	require.NoError(t, err)
	defer st.Reset()
	bw := bufio.NewWriterSize(st, 256<<10)
	write := func(rpc *pb.RPC) {
		b, err := proto.Marshal(rpc)
		require.NoError(t, err)
		_, err = bw.Write(append(binary.AppendUvarint(nil, uint64(len(b))), b...))
		require.NoError(t, err)
	}
	yes, no := true, false
	junk := func(n, from int) []*pb.RPC_SubOpts {
		subs := make([]*pb.RPC_SubOpts, n)
		for j := range subs {
			topic := fmt.Sprintf("/not/our/topic/%064d", from+j)
			subs[j] = &pb.RPC_SubOpts{Subscribe: &yes, Topicid: &topic}
		}
		return subs
	}
	write(&pb.RPC{Subscriptions: []*pb.RPC_SubOpts{{Subscribe: &yes, Topicid: &ours}}})
	require.NoError(t, bw.Flush())
	require.Eventually(t, func() bool { return slices.Contains(f.gossipPeers(), h.ID().String()) }, 20*time.Second, 50*time.Millisecond)

	done := make(chan struct{})
	fetched := f.honestFetch(done)
	start := time.Now()
	// One RPC of 1,000: leaving our topic, then 999 others. Ignored whole, the peer stays.
	write(&pb.RPC{Subscriptions: append([]*pb.RPC_SubOpts{{Subscribe: &no, Topicid: &ours}}, junk(999, 0)...)})
	const topics, perRPC = 1_020_000, 100
	for i := 0; i < topics; i += perRPC {
		write(&pb.RPC{Subscriptions: junk(perRPC, 1000+i)})
	}
	// RPCs of one peer are handled in order: the IWANT answering this IHAVE comes after all.
	write(&pb.RPC{Control: &pb.ControlMessage{Ihave: []*pb.ControlIHave{{TopicID: &ours, MessageIDs: []string{barrier}}}}})
	require.NoError(t, bw.Flush())
	select {
	case <-iwant:
	case <-ctx.Done():
		t.Fatal("the node never answered the IHAVE after the flood")
	}
	took := time.Since(start)
	close(done)
	n, err := fetched()
	require.NoError(t, err)
	require.Contains(t, f.gossipPeers(), h.ID().String(), "the RPC of 1,000 subscriptions was ignored whole")
	f.report(fmt.Sprintf("%d topics", topics), n, took)
}

// ipnsRecord is a valid IPNS record of about 9 KB under a fresh key, and its routing key.
func ipnsRecord(tb testing.TB, pad string) (key, value []byte) {
	sk, _, err := crypto.GenerateEd25519Key(nil)
	require.NoError(tb, err)
	id, err := peer.IDFromPrivateKey(sk)
	require.NoError(tb, err)
	p, err := path.NewPath("/ipfs/bafkqaaa/" + pad)
	require.NoError(tb, err)
	rec, err := ipns.NewRecord(sk, p, 1, time.Now().Add(time.Hour), time.Hour, ipns.WithV1Compatibility(false))
	require.NoError(tb, err)
	value, err = ipns.MarshalRecord(rec)
	require.NoError(tb, err)
	return ipns.NameFromPeer(id).RoutingKey(), value
}

// TestAttackFiguresDHTRecords: 20,000 valid IPNS records of 9 KB put to the node over the DHT,
// then ADD_PROVIDER messages from 32 identities as fast as they go for 10 s.
func TestAttackFiguresDHTRecords(t *testing.T) {
	f := newFigures(t)
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	kad := protocol.ID(discovery.ProtocolPrefix("") + "/kad/1.0.0")
	h := loopbackHost(t)
	require.NoError(t, h.Connect(ctx, f.target))
	done := make(chan struct{})
	fetched := f.honestFetch(done)
	start := time.Now()

	// IPNS records, each put on its own while the last is answered.
	pad := strings.Repeat("a", 9000)
	var s network.Stream
	var w pbio.WriteCloser
	var r pbio.ReadCloser
	const records = 20_000
	stored, refused := 0, 0
	for range records {
		if s == nil {
			var err error
			s, err = h.NewStream(ctx, f.target.ID, kad)
			require.NoError(t, err)
			w, r = pbio.NewDelimitedWriter(s), pbio.NewDelimitedReader(s, 1<<20)
		}
		key, value := ipnsRecord(t, pad)
		m := &pbdht.Message{Type: pbdht.Message_PUT_VALUE, Key: key, Record: &recpb.Record{Key: key, Value: value}}
		var reply pbdht.Message
		if w.WriteMsg(m) == nil && r.ReadMsg(&reply) == nil {
			stored++
			continue
		}
		refused++ // the node resets the stream of a put it refuses
		_ = s.Reset()
		s = nil
	}
	if s != nil {
		_ = s.Reset()
	}
	valuesTook := time.Since(start)
	valuesPeak := f.peakRSS.Load()
	close(done)
	valuesFetched, err := fetched()
	require.NoError(t, err)
	// A fetch loop of its own for the provider flood, so that it runs through it.
	done = make(chan struct{})
	fetched = f.honestFetch(done)

	// Provider records: each identity provides random keys as fast as it can for 10 s.
	const providers, floodFor = 32, 10 * time.Second
	var sent atomic.Int64
	var wg sync.WaitGroup
	until := time.Now().Add(floodFor)
	if p := os.Getenv("PEER_ATTACK_HEAPPROFILE"); p != "" {
		// The attacked node's heap when the flood stops, while it still works through what
		// was sent.
		prof := time.AfterFunc(floodFor, func() { _, _ = io.WriteString(f.stdin, "heapprofile "+p+"\n") })
		defer prof.Stop()
	}
	for i := range providers {
		a := loopbackHost(t)
		require.NoError(t, a.Connect(ctx, f.target))
		wg.Go(func() {
			s, err := a.NewStream(ctx, f.target.ID, kad)
			if err != nil {
				return
			}
			defer s.Reset()
			w, r := pbio.NewDelimitedWriter(s), pbio.NewDelimitedReader(s, 1<<20)
			self := pbdht.PeerInfosToPBPeers(a.Network(), []peer.AddrInfo{{ID: a.ID(), Addrs: a.Addrs()}})
			for j := 0; time.Now().Before(until) && j < 1_000_000; j++ {
				mh, err := multihash.Sum(binary.AppendUvarint([]byte{byte(i)}, uint64(j)), multihash.SHA2_256, -1)
				if err != nil {
					return
				}
				if w.WriteMsg(&pbdht.Message{Type: pbdht.Message_ADD_PROVIDER, Key: mh, ProviderPeers: self}) != nil {
					return
				}
				sent.Add(1)
			}
			// Messages of a stream are handled in order: the answer comes after the last record.
			if w.WriteMsg(&pbdht.Message{Type: pbdht.Message_GET_PROVIDERS, Key: self[0].Id}) == nil {
				var reply pbdht.Message
				_ = r.ReadMsg(&reply)
			}
		})
	}
	wg.Wait()
	took := time.Since(start)
	close(done)
	n, err := fetched()
	require.NoError(t, err)
	require.Positive(t, stored)
	t.Logf("IPNS records: %d stored, %d refused in %v (RSS peak %d MiB by then, honest fetch verified %d times); provider records: %d sent by %d identities in %v (%.0f/s)",
		stored, refused, valuesTook.Round(time.Millisecond), valuesPeak>>20, valuesFetched, sent.Load(), providers, took-valuesTook, float64(sent.Load())/(took-valuesTook).Seconds())
	f.report("DHT records", n, took)
}

// TestAttackFiguresConnections: 300 identities (each a libp2p host) connect to the node; then
// the honest node connects, dialling again until it is let in, and fetches.
func TestAttackFiguresConnections(t *testing.T) {
	f := newFigures(t)
	const identities = 300
	start := time.Now()
	var ok atomic.Int64
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	for range identities {
		h, err := libp2p.New(libp2p.NoListenAddrs, libp2p.ResourceManager(&network.NullResourceManager{}), libp2p.DisableRelay())
		require.NoError(t, err)
		t.Cleanup(func() { _ = h.Close() })
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			if h.Connect(ctx, f.target) == nil {
				ok.Add(1)
			}
		})
	}
	wg.Wait()
	before := f.conns()

	// The honest node dials until it is let in (trimming waits for the grace period).
	dialStart := time.Now()
	refused := 0
	var lastErr, firstErr error
	for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); refused++ {
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		lastErr = f.honest.Host().Connect(ctx, f.target)
		cancel()
		if lastErr == nil {
			break
		}
		if firstErr == nil {
			firstErr = lastErr
		}
		f.honest.Host().Network().ClosePeer(f.target.ID)
		select {
		case <-time.After(500 * time.Millisecond):
		case <-t.Context().Done():
		}
	}
	require.NoError(t, lastErr, "the honest node never got a connection")
	toConnect := time.Since(dialStart)
	done := make(chan struct{})
	close(done)
	n, err := f.fetchWhile(done)
	require.NoError(t, err)
	t.Logf("%d of %d identities connected; the node had %d peers then, %d now; the honest node connected after %v and %d refused dials (first: %v)",
		ok.Load(), identities, before, f.conns(), toConnect.Round(time.Millisecond), refused, firstErr)
	f.report(fmt.Sprintf("%d identities", identities), n, time.Since(start))
}
