package node_test

import (
	"context"
	"crypto/sha256"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/stretchr/testify/require"

	"peer/internal/config"
	"peer/node"
	"peer/node/api"
	"peer/store"
	"peer/transfer"
)

// repoNode starts a node with its own repo, bootstrapping off boot (if any), TCP on loopback.
func repoNode(tb testing.TB, boot *node.Node, opts ...func(*node.Options)) *node.Node {
	tb.Helper()
	dir := tb.TempDir()
	_, err := store.Init(dir)
	require.NoError(tb, err)
	st, err := store.Open(dir)
	require.NoError(tb, err)
	key, err := store.ReadIdentity(dir)
	require.NoError(tb, err)
	cfg := config.Default()
	cfg.Listen = []string{"/ip4/127.0.0.1/tcp/0"}
	cfg.API = ""
	cfg.Network = "test"
	if boot != nil {
		cfg.Bootstrap = []string{boot.Addrs()[0].String()}
	}
	o := node.Options{Config: cfg, Key: key, Store: st}
	for _, f := range opts {
		f(&o)
	}
	n, err := node.New(o)
	require.NoError(tb, err)
	require.NoError(tb, n.Start(context.Background()))
	tb.Cleanup(func() {
		require.NoError(tb, n.Close())
		require.NoError(tb, st.Close())
	})
	return n
}

func writeFile(tb testing.TB, size int, seed uint64) (string, []byte) {
	tb.Helper()
	b := make([]byte, size)
	r := rand.NewChaCha8([32]byte{byte(seed)})
	_, _ = r.Read(b)
	path := filepath.Join(tb.TempDir(), "data.bin")
	require.NoError(tb, os.WriteFile(path, b, 0o644))
	return path, b
}

func TestShareSearchFetchAcrossThreeNodes(t *testing.T) {
	a := repoNode(t, nil)
	b := repoNode(t, a)
	c := repoNode(t, b) // knows only b

	path, data := writeFile(t, 3<<20+123, 1)
	f, err := a.Share(t.Context(), path, node.ShareOptions{})
	require.NoError(t, err)
	require.True(t, f.Shared)
	require.Equal(t, path, f.Path, "shared in place by default")

	// The announcement reaches the others' catalogs.
	for _, n := range []*node.Node{b, c} {
		require.Eventually(t, func() bool {
			offers := n.Search("data")
			return len(offers) == 1 && offers[0].CID == f.CID && offers[0].Providers[0] == a.ID().String()
		}, 10*time.Second, 10*time.Millisecond)
	}

	out := filepath.Join(t.TempDir(), "got.bin")
	res, err := c.Fetch(t.Context(), f.Root, node.FetchOptions{Output: out})
	require.NoError(t, err)
	got, err := os.ReadFile(out)
	require.NoError(t, err)
	require.Equal(t, sha256.Sum256(data), sha256.Sum256(got))
	require.Equal(t, store.Complete, res.File.State)
	require.Equal(t, out, res.File.Path, "the output is referenced, not copied")
	_, err = os.Stat(store.PartPath(out, f.Root))
	require.True(t, os.IsNotExist(err), "no temporary file left")

	// c now serves it: b streams it with cat (fetching as it goes), from a and c.
	rc, _, err := b.Cat(t.Context(), f.Root, 0)
	require.NoError(t, err)
	streamed, err := io.ReadAll(rc)
	require.NoError(t, err)
	require.NoError(t, rc.Close())
	require.Equal(t, data, streamed)
	require.Eventually(t, func() bool { fl, ok := b.Store().File(f.Root); return ok && fl.State == store.Complete }, 5*time.Second, 10*time.Millisecond)

	// An existing output is not overwritten without Force.
	_, err = c.Fetch(t.Context(), f.Root, node.FetchOptions{Output: filepath.Join(filepath.Dir(path), "data.bin")})
	require.ErrorIs(t, err, node.ErrExists)

	// Withdrawal reaches the catalogs.
	require.NoError(t, a.Remove(t.Context(), f.Root))
	for _, n := range []*node.Node{b, c} {
		require.Eventually(t, func() bool {
			for _, o := range n.Search("data") {
				for _, p := range o.Providers {
					if p == a.ID().String() {
						return false
					}
				}
			}
			return true
		}, 10*time.Second, 10*time.Millisecond)
	}
}

func TestFetchNamesComeFromTheAnnouncementSafely(t *testing.T) {
	a := repoNode(t, nil)
	b := repoNode(t, a)
	dir := t.TempDir()
	// A hostile name: the announced name never leaves the target directory.
	evil := filepath.Join(t.TempDir(), "..\x07evil")
	require.NoError(t, os.WriteFile(evil, []byte("payload"), 0o644))
	f, err := a.Share(t.Context(), evil, node.ShareOptions{Copy: true})
	require.NoError(t, err)
	require.Eventually(t, func() bool { return len(b.Search(f.CID)) == 1 }, 10*time.Second, 10*time.Millisecond)
	res, err := b.Fetch(t.Context(), f.Root, node.FetchOptions{Dir: dir})
	require.NoError(t, err)
	require.Equal(t, dir, filepath.Dir(res.Path))
	require.Equal(t, "..evil", filepath.Base(res.Path))
}

func TestSafeName(t *testing.T) {
	root, err := cid.Decode("bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku")
	require.NoError(t, err)
	cases := map[string]string{
		"movie.mkv":              "movie.mkv",
		"../../etc/passwd":       ".._.._etc_passwd",
		"/abs/path":              "_abs_path",
		`..\win\sys`:             ".._win_sys",
		"..":                     root.String(),
		".":                      root.String(),
		"":                       root.String(),
		"a\x00b\nc\x1b[31m":      "abc[31m",
		"invoice\u202efdp.exe":   "invoicefdp.exe",
		"a\u2066b\u200bc\ufeff":  "abc",
		strings.Repeat("é", 200): strings.Repeat("é", 127),
	}
	for in, want := range cases {
		require.Equal(t, want, node.SafeName(in, root), "%q", in)
	}
}

func TestFetchOfUnknownCIDEndsWithClearError(t *testing.T) {
	a := repoNode(t, nil)
	b := repoNode(t, a, func(o *node.Options) {
		o.Transfer = []transfer.Option{transfer.WithNoProvidersTimeout(2 * time.Second)}
	})
	sum := sha256.Sum256([]byte("nobody has this"))
	root := cid.NewCidV1(cid.Raw, append([]byte{0x12, 0x20}, sum[:]...))
	start := time.Now()
	dir := t.TempDir()
	_, err := b.Fetch(t.Context(), root, node.FetchOptions{Output: filepath.Join(dir, "x")})
	require.ErrorIs(t, err, transfer.ErrNoProviders)
	require.Less(t, time.Since(start), 60*time.Second)
	_, ok := b.Store().File(root)
	require.False(t, ok, "a fetch that got nothing leaves no partial entry")
	left, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Empty(t, left, "nor any file")
}

// A fetch whose output is a directory fails before it asks anyone for a byte, with or without
// Force, and leaves nothing behind.
func TestFetchOntoADirectoryFailsBeforeTheFirstByte(t *testing.T) {
	a := repoNode(t, nil)
	b := repoNode(t, a)
	path, _ := writeFile(t, 1<<20+5, 6)
	f, err := a.Share(t.Context(), path, node.ShareOptions{})
	require.NoError(t, err)
	require.Eventually(t, func() bool { return len(b.Search("data")) == 1 }, 10*time.Second, 10*time.Millisecond)

	dir := t.TempDir()
	require.NoError(t, os.Mkdir(filepath.Join(dir, "data.bin"), 0o755)) // where the announced name goes
	for _, opts := range []node.FetchOptions{
		{Dir: dir, Force: true},
		{Dir: dir},
		{Output: filepath.Join(dir, "data.bin"), Force: true},
	} {
		_, err := b.Fetch(t.Context(), f.Root, opts)
		require.ErrorIs(t, err, node.ErrIsDir, "%+v", opts)
		require.ErrorContains(t, err, filepath.Join(dir, "data.bin"))
	}
	_, ok := b.Store().File(f.Root)
	require.False(t, ok, "no fetch began")
	left, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Len(t, left, 1, "no .part beside the directory")
	require.NoError(t, b.Store().Events(0, func(e store.Event) error {
		require.NotEqual(t, store.FetchStarted, e.Type, "no fetch began")
		return nil
	}))
}

// A fetch reports the peers that delivered, not those asked, and what was already here.
func TestFetchCountsSourcesAndResumedBytes(t *testing.T) {
	a := repoNode(t, nil)
	b := repoNode(t, a)
	c := repoNode(t, a)
	path, _ := writeFile(t, 4<<20+5, 8)
	f, err := a.Share(t.Context(), path, node.ShareOptions{})
	require.NoError(t, err)
	require.Eventually(t, func() bool { return len(c.Search("data")) == 1 }, 10*time.Second, 10*time.Millisecond)
	_, err = c.Connect(t.Context(), b.Addrs()[0].String())
	require.NoError(t, err)

	var last node.FetchProgress
	res, err := c.Fetch(t.Context(), f.Root, node.FetchOptions{Output: filepath.Join(t.TempDir(), "x"),
		Progress: func(p node.FetchProgress) { last = p }})
	require.NoError(t, err)
	require.Equal(t, 1, res.Stats.Sources(), "only a sent anything (b may have been asked too)")
	require.Zero(t, res.Resumed)
	require.Equal(t, 1, last.Peers)
	require.Equal(t, f.Size, last.Size)
	require.Equal(t, f.Size, last.Have)
}

// BenchmarkFetchOneSource fetches a 256 MiB shared-in-place file between two nodes with repos,
// over loopback TCP+TLS: the product's whole path (store reads, transfer, verification, writes
// at offsets, the final fsync).
func BenchmarkFetchOneSource(b *testing.B) {
	a := repoNode(b, nil)
	c := repoNode(b, a)
	path, _ := writeFile(b, 256<<20, 7)
	f, err := a.Share(context.Background(), path, node.ShareOptions{})
	require.NoError(b, err)
	require.NoError(b, c.Host().Connect(context.Background(), peer.AddrInfo{ID: a.ID(), Addrs: a.Host().Addrs()}))
	dir := b.TempDir()
	b.SetBytes(int64(f.Size))
	var moving time.Duration
	b.ResetTimer()
	for i := range b.N {
		out := filepath.Join(dir, "out"+string(rune('a'+i%26)))
		res, err := c.Fetch(context.Background(), f.Root, node.FetchOptions{Output: out, Force: true})
		if err != nil {
			b.Fatal(err)
		}
		moving += res.Stats.Duration
		b.StopTimer()
		require.NoError(b, c.Store().Remove(f.Root))
		os.Remove(out)
		b.StartTimer()
	}
	b.ReportMetric(float64(f.Size)*float64(b.N)/moving.Seconds()/1e6, "MB/s-transfer")
}

// A file the node already holds (added, or shared from elsewhere) is exported to the output
// without asking anyone: the leaves come from the repo.
func TestFetchOfAHeldFileWritesItFromTheRepo(t *testing.T) {
	a := repoNode(t, nil)
	path, data := writeFile(t, 2<<20+9, 4)
	for _, copyIn := range []bool{true, false} {
		f, err := a.Share(t.Context(), path, node.ShareOptions{Copy: copyIn})
		require.NoError(t, err)
		out := filepath.Join(t.TempDir(), "copy.bin")
		res, err := a.Fetch(t.Context(), f.Root, node.FetchOptions{Output: out})
		require.NoError(t, err)
		require.Zero(t, res.Stats.Received, "nothing came from the network")
		got, err := os.ReadFile(out)
		require.NoError(t, err)
		require.Equal(t, data, got, "copy=%v", copyIn)
	}
}

// Hearing an announcement again soon after changes nothing the catalog shows, so it is not
// recorded again: repeated announcements and catalog exchanges do not grow the log.
func TestRepeatedAnnouncementsAreRecordedOnce(t *testing.T) {
	a := repoNode(t, nil)
	b := repoNode(t, a)
	path, _ := writeFile(t, 1000, 9)
	count := func() (n int) {
		require.NoError(t, b.Store().Events(0, func(e store.Event) error {
			if e.Type == store.AnnounceSeen {
				n++
			}
			return nil
		}))
		return n
	}
	for range 3 {
		f, err := a.Share(t.Context(), path, node.ShareOptions{})
		require.NoError(t, err)
		require.Eventually(t, func() bool { return len(b.Search(f.CID)) == 1 }, 10*time.Second, 10*time.Millisecond)
	}
	// A withdrawal is recorded, which proves the earlier repeats were processed in order.
	f, _ := a.Store().File(mustRoot(t, a))
	require.NoError(t, a.Remove(t.Context(), f.Root))
	require.Eventually(t, func() bool { return len(b.Search(f.CID)) == 0 }, 10*time.Second, 10*time.Millisecond)
	require.Equal(t, 1, count())
}

func mustRoot(t *testing.T, n *node.Node) cid.Cid {
	t.Helper()
	files := n.Store().Files()
	require.Len(t, files, 1)
	return files[0].Root
}

// Fetching again to where a fetched file was is a no-op only while the file is still there as it
// was written; deleted, it is fetched again; changed, it is an existing file that --force replaces.
func TestFetchAgainAfterTheOutputWasDeletedOrChanged(t *testing.T) {
	a := repoNode(t, nil)
	b := repoNode(t, a)
	path, data := writeFile(t, 2<<20+77, 5)
	f, err := a.Share(t.Context(), path, node.ShareOptions{})
	require.NoError(t, err)
	out := filepath.Join(t.TempDir(), "got.bin")
	fetch := func(force bool) (node.FetchResult, error) {
		return b.Fetch(t.Context(), f.Root, node.FetchOptions{Output: out, Force: force})
	}
	res, err := fetch(false)
	require.NoError(t, err)
	require.NotZero(t, res.Stats.Received)

	res, err = fetch(false)
	require.NoError(t, err)
	require.Zero(t, res.Stats.Received, "still there: nothing to do")

	require.NoError(t, os.Remove(out))
	res, err = fetch(false)
	require.NoError(t, err)
	require.NotZero(t, res.Stats.Received, "deleted: fetched again")
	got, err := os.ReadFile(out)
	require.NoError(t, err)
	require.Equal(t, data, got)

	require.NoError(t, os.WriteFile(out, []byte("edited"), 0o644))
	_, err = fetch(false)
	require.ErrorIs(t, err, node.ErrExists, "changed: not overwritten without Force")
	_, err = fetch(true)
	require.NoError(t, err)
	got, err = os.ReadFile(out)
	require.NoError(t, err)
	require.Equal(t, data, got)
}

// warnings counts the WARN records whose message contains a word.
type warnings struct {
	word string
	n    atomic.Int64
}

func (w *warnings) Enabled(context.Context, slog.Level) bool { return true }
func (w *warnings) Handle(_ context.Context, r slog.Record) error {
	if r.Level == slog.LevelWarn && strings.Contains(r.Message, w.word) {
		w.n.Add(1)
	}
	return nil
}
func (w *warnings) WithAttrs([]slog.Attr) slog.Handler { return w }
func (w *warnings) WithGroup(string) slog.Handler      { return w }

// A peer that breaks the transfer protocol over and over is logged once per ban, not once per
// offence.
func TestRepeatedMisbehaviourWarnsOnce(t *testing.T) {
	w := &warnings{word: "misbehaved"}
	old := slog.Default()
	slog.SetDefault(slog.New(w))
	t.Cleanup(func() { slog.SetDefault(old) })
	n := repoNode(t, nil)

	h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"))
	require.NoError(t, err)
	t.Cleanup(func() { _ = h.Close() })
	ai, err := peer.AddrInfoFromP2pAddr(n.Addrs()[0])
	require.NoError(t, err)
	require.NoError(t, h.Connect(t.Context(), *ai))
	const offences = 50
	for range offences {
		s, err := h.NewStream(t.Context(), ai.ID, transfer.ID)
		require.NoError(t, err)
		_ = s.SetDeadline(time.Now().Add(5 * time.Second))
		_, _ = s.Write([]byte{1, 0x42}) // a frame of an unknown type
		_, _ = io.Copy(io.Discard, s)   // until the node resets it
		_ = s.Reset()
	}
	require.NoError(t, n.Close()) // waits for the stream handlers
	require.EqualValues(t, 1, w.n.Load())
}

// withAPI gives a repoNode its API on a free loopback port.
func withAPI(o *node.Options) { o.Config.API = "127.0.0.1:0" }

// catGet asks n's API for path and returns the status and body.
func catGet(t *testing.T, n *node.Node, path string) (int, string) {
	t.Helper()
	c, err := api.ForRepo(n.Store().Dir())
	require.NoError(t, err)
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, c.URL()+path, nil)
	require.NoError(t, err)
	tok, err := api.LoadOrCreateToken(n.Store().Dir())
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

// GET /api/v1/cat answers only once it has the file's root: 404 when no provider has the file,
// 504 when the root does not come in time, 400 for a bad CID; never an empty 200.
func TestAPICatStatusCodes(t *testing.T) {
	a := repoNode(t, nil)
	quick := repoNode(t, a, withAPI, func(o *node.Options) {
		o.Transfer = []transfer.Option{transfer.WithNoProvidersTimeout(time.Second)}
	})
	patient := repoNode(t, a, withAPI) // the default no-providers wait, 30 s
	// A peer that speaks the transfer protocol but never answers: a provider that is there but
	// too slow, the case for 504.
	mute, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"))
	require.NoError(t, err)
	hold := make(chan struct{})
	t.Cleanup(func() { close(hold); _ = mute.Close() })
	mute.SetStreamHandler(transfer.ID, func(s network.Stream) { <-hold; _ = s.Reset() })
	require.NoError(t, patient.Host().Connect(t.Context(), peer.AddrInfo{ID: mute.ID(), Addrs: mute.Addrs()}))
	require.Eventually(t, func() bool {
		ok, _ := patient.Host().Peerstore().SupportsProtocols(mute.ID(), transfer.ID)
		return len(ok) > 0
	}, 10*time.Second, 10*time.Millisecond, "identify tells the node the mute peer speaks the protocol")
	sum := sha256.Sum256([]byte("nobody has this"))
	unknown := cid.NewCidV1(cid.Raw, append([]byte{0x12, 0x20}, sum[:]...)).String()

	code, body := catGet(t, quick, api.PathCat+unknown)
	require.Equal(t, http.StatusNotFound, code, body)
	require.Contains(t, body, "no providers")

	start := time.Now()
	code, body = catGet(t, patient, api.PathCat+unknown+"?timeout=300ms")
	require.Equal(t, http.StatusGatewayTimeout, code, body)
	require.Contains(t, body, "within 300ms")
	require.Less(t, time.Since(start), 10*time.Second)

	code, body = catGet(t, quick, api.PathCat+"not-a-cid")
	require.Equal(t, http.StatusBadRequest, code, body)
	code, body = catGet(t, quick, api.PathCat+unknown+"?timeout=soon")
	require.Equal(t, http.StatusBadRequest, code, body)

	// A file held answers 200 with its length.
	path, data := writeFile(t, 70000, 9)
	f, err := a.Share(t.Context(), path, node.ShareOptions{})
	require.NoError(t, err)
	code, body = catGet(t, quick, api.PathCat+f.CID)
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, string(data), body)
}

// A cat whose only provider dies midway ends in an error after a prefix of the file, never in a
// clean end of a short file.
func TestAPICatFailsWhenTheSeederDiesMidway(t *testing.T) {
	a := repoNode(t, nil, func(o *node.Options) { o.Config.UploadLimit = 4 << 20 })
	b := repoNode(t, a, withAPI, func(o *node.Options) {
		o.Transfer = []transfer.Option{transfer.WithNoProvidersTimeout(time.Second)}
	})
	path, data := writeFile(t, 24<<20, 10)
	f, err := a.Share(t.Context(), path, node.ShareOptions{})
	require.NoError(t, err)
	c, err := api.ForRepo(b.Store().Dir())
	require.NoError(t, err)
	rc, err := c.Cat(t.Context(), f.Root, 0)
	require.NoError(t, err)
	defer rc.Close()
	head := make([]byte, 2<<20)
	_, err = io.ReadFull(rc, head)
	require.NoError(t, err)
	require.NoError(t, a.Close()) // the only seeder goes away
	rest, err := io.ReadAll(rc)
	require.Error(t, err, "a truncated cat is an error")
	require.Contains(t, err.Error(), "broke off")
	got := append(head, rest...)
	require.Less(t, len(got), len(data))
	require.Equal(t, data[:len(got)], got, "what came is a prefix of the file")
}
