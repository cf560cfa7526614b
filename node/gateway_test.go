package node_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	carv2 "github.com/ipld/go-car/v2"
	"github.com/stretchr/testify/require"

	"peer/node"
	"peer/store"
)

const gwChunk = 256 << 10

func withGateway(o *node.Options) { o.Config.Gateway = "127.0.0.1:0" }

// gwGet sends a GET to the node's gateway with the given headers ("Name: value").
func gwGet(t *testing.T, n *node.Node, path string, headers ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, n.GatewayURL()+path, nil)
	require.NoError(t, err)
	for _, h := range headers {
		k, v, _ := strings.Cut(h, ": ")
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, body
}

// addFile adds b to n's store in 256 KiB leaves and returns its root.
func addFile(t *testing.T, n *node.Node, b []byte) cid.Cid {
	t.Helper()
	f, err := n.Store().Add(t.Context(), bytes.NewReader(b), "data.bin", store.AddOptions{ChunkSize: gwChunk})
	require.NoError(t, err)
	return f.Root
}

func TestGatewayServesAWholeFileAndRanges(t *testing.T) {
	n := repoNode(t, nil, withGateway)
	_, data := writeFile(t, 3*gwChunk+1000, 7)
	root := addFile(t, n, data)
	p := "/ipfs/" + root.String()

	resp, body := gwGet(t, n, p)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, data, body)
	require.Equal(t, fmt.Sprint(len(data)), resp.Header.Get("Content-Length"))
	require.Equal(t, `"`+root.String()+`"`, resp.Header.Get("Etag"))
	require.Equal(t, "public, max-age=29030400, immutable", resp.Header.Get("Cache-Control"))
	require.Equal(t, "bytes", resp.Header.Get("Accept-Ranges"))

	last := len(data) - 1
	for _, r := range []struct{ from, to int }{
		{0, 0},                       // first byte
		{last, last},                 // last byte
		{gwChunk - 10, gwChunk + 10}, // across a leaf boundary
		{2*gwChunk - 1, 3*gwChunk + 5},
	} {
		resp, body := gwGet(t, n, p, fmt.Sprintf("Range: bytes=%d-%d", r.from, r.to))
		require.Equal(t, http.StatusPartialContent, resp.StatusCode, "range %v", r)
		require.Equal(t, data[r.from:r.to+1], body, "range %v", r)
		require.Equal(t, fmt.Sprintf("bytes %d-%d/%d", r.from, r.to, len(data)), resp.Header.Get("Content-Range"))
		require.Equal(t, fmt.Sprint(r.to-r.from+1), resp.Header.Get("Content-Length"))
	}
	resp, _ = gwGet(t, n, p, fmt.Sprintf("Range: bytes=%d-", len(data)+10))
	require.Equal(t, http.StatusRequestedRangeNotSatisfiable, resp.StatusCode)
}

func TestGatewayServesFoldersWithEscapedNames(t *testing.T) {
	n := repoNode(t, nil, withGateway)
	dir := filepath.Join(t.TempDir(), "folder")
	hostile := `<img src=x onerror=alert(1)>.txt`
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "sub"), 0o755))
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "site"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "sub", "a.txt"), []byte("inner file"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, hostile), []byte("x"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "site", "index.html"), []byte("<p>home</p>"), 0o644))
	f, err := n.Store().AddTree(t.Context(), dir, store.AddOptions{})
	require.NoError(t, err)
	base := "/ipfs/" + f.Root.String()

	resp, body := gwGet(t, n, base+"/sub/a.txt")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "inner file", string(body))

	resp, body = gwGet(t, n, base+"/")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Contains(t, resp.Header.Get("Content-Type"), "text/html")
	require.NotContains(t, string(body), "<img src=x")
	require.Contains(t, string(body), "&lt;img src=x onerror=alert(1)&gt;.txt")
	require.Contains(t, string(body), "sub")

	resp, body = gwGet(t, n, base+"/site/")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "<p>home</p>", string(body))
}

func TestGatewayServesRawBlocksAndCARs(t *testing.T) {
	n := repoNode(t, nil, withGateway)
	_, data := writeFile(t, 2*gwChunk+5, 8)
	root := addFile(t, n, data)
	p := "/ipfs/" + root.String()

	for _, req := range [][]string{{p + "?format=raw"}, {p, "Accept: application/vnd.ipld.raw"}} {
		resp, body := gwGet(t, n, req[0], req[1:]...)
		require.Equal(t, http.StatusOK, resp.StatusCode)
		require.Equal(t, "application/vnd.ipld.raw", resp.Header.Get("Content-Type"))
		c, err := root.Prefix().Sum(body)
		require.NoError(t, err)
		require.True(t, c.Equals(root), "the raw body is the root block")
	}

	for _, req := range [][]string{{p + "?format=car"}, {p, "Accept: application/vnd.ipld.car"}} {
		resp, body := gwGet(t, n, req[0], req[1:]...)
		require.Equal(t, http.StatusOK, resp.StatusCode)
		require.Contains(t, resp.Header.Get("Content-Type"), "application/vnd.ipld.car")
		br, err := carv2.NewBlockReader(bytes.NewReader(body))
		require.NoError(t, err)
		require.Equal(t, uint64(1), br.Version)
		require.Equal(t, []cid.Cid{root}, br.Roots)
		var leaves []byte
		count := 0
		for {
			blk, err := br.Next()
			if err == io.EOF {
				break
			}
			require.NoError(t, err)
			count++
			got, err := blk.Cid().Prefix().Sum(blk.RawData())
			require.NoError(t, err)
			require.True(t, got.Equals(blk.Cid()), "block %s verifies", blk.Cid())
			if blk.Cid().Type() == cid.Raw {
				leaves = append(leaves, blk.RawData()...)
			}
		}
		require.Equal(t, 4, count, "the root and its three leaves")
		require.Equal(t, data, leaves, "the leaves, in order, are the file")
	}
}

func TestGatewayFetchesWhatIsNotHeld(t *testing.T) {
	a := repoNode(t, nil)
	path, data := writeFile(t, 3*gwChunk+17, 9)
	f, err := a.Share(t.Context(), path, node.ShareOptions{})
	require.NoError(t, err)
	b := repoNode(t, a, withGateway)
	p := "/ipfs/" + f.Root.String()

	resp, body := gwGet(t, b, p)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, data, body)
	// The fetch finishes (fsync, rename, event) after the last byte went out.
	require.Eventually(t, func() bool {
		held, ok := b.Store().File(f.Root)
		return ok && held.State == store.Complete
	}, 30*time.Second, 10*time.Millisecond, "the streamed file is held")

	c := repoNode(t, a, withGateway)
	resp, body = gwGet(t, c, p, "Range: bytes=10-20")
	require.Equal(t, http.StatusPartialContent, resp.StatusCode)
	require.Equal(t, data[10:21], body)
}

func TestGatewayRefusesOtherHostsAndWrites(t *testing.T) {
	n := repoNode(t, nil, withGateway)
	root := addFile(t, n, []byte("hello"))
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, n.GatewayURL()+"/ipfs/"+root.String(), nil)
	require.NoError(t, err)
	req.Host = "evil.example:8080"
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusForbidden, resp.StatusCode)

	resp, err = http.Post(n.GatewayURL()+"/ipfs/"+root.String(), "text/plain", strings.NewReader("x"))
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)

	resp, _ = gwGet(t, n, "/ipns/example.com")
	require.Equal(t, http.StatusNotFound, resp.StatusCode)

	// The URL file is there while the gateway runs.
	b, err := os.ReadFile(filepath.Join(n.Store().Dir(), node.GatewayFile))
	require.NoError(t, err)
	require.Equal(t, n.GatewayURL()+"\n", string(b))
	require.Equal(t, n.GatewayURL(), n.Status().Gateway)
}

func TestGatewayNeedsAllowRemoteBeyondLoopback(t *testing.T) {
	dir := t.TempDir()
	_, err := store.Init(dir)
	require.NoError(t, err)
	st, err := store.Open(dir)
	require.NoError(t, err)
	t.Cleanup(func() { st.Close() })
	cfg := testConfig()
	cfg.Gateway = "0.0.0.0:0"
	_, err = node.New(node.Options{Config: cfg, Key: newKey(t), Store: st})
	require.ErrorContains(t, err, "--allow-remote-gateway")
	_, err = node.New(node.Options{Config: cfg, Key: newKey(t), Store: st, GatewayAllowRemote: true})
	require.NoError(t, err)
}

func TestGatewayHeadRedirectAndFolderNotHeld(t *testing.T) {
	a := repoNode(t, nil)
	dir := filepath.Join(t.TempDir(), "album")
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "sub"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "sub", "a.txt"), []byte("inner"), 0o644))
	f, err := a.Store().AddTree(t.Context(), dir, store.AddOptions{})
	require.NoError(t, err)
	b := repoNode(t, a, withGateway)

	// A folder that is not held is listed, its blocks fetched as they are read.
	resp, body := gwGet(t, b, "/ipfs/"+f.Root.String()+"/")
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", body)
	require.Contains(t, string(body), "sub")

	a2 := repoNode(t, nil, withGateway)
	f2, err := a2.Store().AddTree(t.Context(), dir, store.AddOptions{})
	require.NoError(t, err)
	base := a2.GatewayURL() + "/ipfs/" + f2.Root.String()

	resp, err = http.Head(base + "/sub/a.txt")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "5", resp.Header.Get("Content-Length"))

	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err = noRedirect.Get(base + "/sub")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusMovedPermanently, resp.StatusCode)
	require.True(t, strings.HasSuffix(resp.Header.Get("Location"), "/sub/"), resp.Header.Get("Location"))
}

// Requests for a root not held share one fetch: a range asked while a whole-file GET streams the
// fetch waits for it and is answered from the repo, instead of failing because the root is
// already being fetched.
func TestGatewayRequestsShareOneFetch(t *testing.T) {
	// The provider sends slowly (8 MiB at 4 MB/s), so the fetch is still running when the
	// range is asked.
	a := repoNode(t, nil, func(o *node.Options) { o.Config.UploadLimit = 4_000_000 })
	path, data := writeFile(t, 8<<20, 10)
	f, err := a.Share(t.Context(), path, node.ShareOptions{})
	require.NoError(t, err)
	b := repoNode(t, a, withGateway)
	p := "/ipfs/" + f.Root.String()

	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, b.GatewayURL()+p, nil)
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	first := make([]byte, 1)
	_, err = io.ReadFull(resp.Body, first)
	require.NoError(t, err)

	type answer struct {
		status int
		body   []byte
	}
	ranged := make(chan answer, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodGet, b.GatewayURL()+p, nil)
		req.Header.Set("Range", fmt.Sprintf("bytes=%d-", len(data)-1000)) // not yet fetched
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			ranged <- answer{}
			return
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		ranged <- answer{resp.StatusCode, body}
	}()

	rest, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, data, append(first, rest...))
	got := <-ranged
	require.Equal(t, http.StatusPartialContent, got.status, "%s", got.body)
	require.Equal(t, data[len(data)-1000:], got.body)
}
