package node_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"mime/multipart"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"peer/node"
	"peer/node/api"
	"peer/store"
)

// startDaemon runs a node on a fresh repo with its API on a free loopback port.
func startDaemon(t *testing.T) (*node.Node, *api.Client) {
	t.Helper()
	dir := t.TempDir()
	_, err := store.Init(dir)
	require.NoError(t, err)
	st, err := store.Open(dir)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, st.Close()) })
	key, err := store.ReadIdentity(dir)
	require.NoError(t, err)
	cfg := testConfig()
	cfg.API = "127.0.0.1:0"
	n := startNode(t, node.Options{Config: cfg, Key: key, Store: st})
	c, err := api.ForRepo(dir)
	require.NoError(t, err)
	return n, c
}

func TestAPIIDPeersConnect(t *testing.T) {
	a, ca := startDaemon(t)
	b, cb := startDaemon(t)

	id, err := ca.ID(t.Context())
	require.NoError(t, err)
	require.Equal(t, a.ID().String(), id.ID)
	require.NotEmpty(t, id.Addrs)
	for _, addr := range id.Addrs {
		require.True(t, strings.HasSuffix(addr, "/p2p/"+id.ID), addr)
	}

	ps, err := cb.Peers(t.Context())
	require.NoError(t, err)
	require.Empty(t, ps)

	p, err := cb.Connect(t.Context(), id.Addrs[0])
	require.NoError(t, err)
	require.Equal(t, id.ID, p.ID)
	require.Equal(t, "outbound", p.Direction)
	ps, err = cb.Peers(t.Context())
	require.NoError(t, err)
	require.Len(t, ps, 1)
	require.Equal(t, a.ID().String(), ps[0].ID)

	_, err = cb.Connect(t.Context(), "nonsense")
	var se *api.StatusError
	require.ErrorAs(t, err, &se)
	require.Equal(t, http.StatusBadRequest, se.Code)

	st, err := cb.Status(t.Context())
	require.NoError(t, err)
	require.Equal(t, b.ID().String(), st.ID)
	require.Equal(t, 1, st.Peers)
	require.Equal(t, "/ipfs/kad/1.0.0", st.DHT.Protocol)
	require.Equal(t, "server", st.DHT.Mode)
	require.NotEmpty(t, st.Uptime)
}

func TestAPIMetrics(t *testing.T) {
	_, c := startDaemon(t)
	m, err := c.Metrics(t.Context())
	require.NoError(t, err)
	for _, name := range []string{
		"peer_peers ", "peer_dht_routing_table_peers ", "peer_network_received_bytes_total ",
		"peer_network_sent_bytes_total ", "peer_blocks_sent_total ", "peer_blocks_received_total ",
		"peer_fetches_total{", "peer_files ",
		"libp2p_rcmgr_", // the resource manager's
		"go_goroutines ", "process_resident_memory_bytes ",
	} {
		require.Contains(t, m, name)
	}
	// Unauthenticated scrapes are refused.
	_, err = api.NewClient(c.URL(), "").Metrics(t.Context())
	var se *api.StatusError
	require.ErrorAs(t, err, &se)
	require.Equal(t, http.StatusUnauthorized, se.Code)
}

func TestAPIConnectBodyCap(t *testing.T) {
	_, c := startDaemon(t)
	big := `{"addr":"` + strings.Repeat("a", 2<<20) + `"}`
	resp, err := c.Request(t.Context(), http.MethodPost, api.PathConnect, strings.NewReader(big), "application/json")
	if err == nil {
		resp.Body.Close()
	}
	var se *api.StatusError
	require.ErrorAs(t, err, &se)
	require.Equal(t, http.StatusRequestEntityTooLarge, se.Code)
	require.Contains(t, se.Message, "limit")
}

func TestAPIAddLsCatEvents(t *testing.T) {
	_, c := startDaemon(t)
	ctx := t.Context()

	// Follow the log from the start while we add.
	fctx, cancel := context.WithCancel(ctx)
	defer cancel()
	followed := make(chan api.Event, 16)
	followDone := make(chan error, 1)
	go func() {
		followDone <- c.FollowEvents(fctx, 0, func(e api.Event) error { followed <- e; return nil })
	}()

	data := make([]byte, 3<<20+123)
	_, err := rand.Read(data)
	require.NoError(t, err)
	f, err := c.Add(ctx, bytes.NewReader(data), "blob.bin")
	require.NoError(t, err)
	require.Equal(t, "blob.bin", f.Name)
	require.EqualValues(t, len(data), f.Size)
	require.True(t, f.Root.Defined())

	// Multipart upload of a second file.
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	fw, err := mw.CreateFormFile("file", "hello.txt")
	require.NoError(t, err)
	_, _ = fw.Write([]byte("hello\n"))
	require.NoError(t, mw.Close())
	resp, err := c.Request(ctx, http.MethodPost, api.PathAdd, &body, mw.FormDataContentType())
	require.NoError(t, err)
	resp.Body.Close()

	files, err := c.Ls(ctx)
	require.NoError(t, err)
	names := map[string]bool{}
	for _, f := range files {
		names[f.Name] = true
	}
	require.True(t, names["blob.bin"] && names["hello.txt"], "%v", names)

	rc, err := c.Cat(ctx, f.Root, 0)
	require.NoError(t, err)
	got, err := io.ReadAll(rc)
	rc.Close()
	require.NoError(t, err)
	require.Equal(t, data, got)

	evs, err := c.Events(ctx, 0)
	require.NoError(t, err)
	require.Len(t, evs, 2)
	require.Equal(t, string(store.FileAdded), evs[0].Type)
	require.Equal(t, f.CID, evs[0].Root)

	for i := range 2 {
		select {
		case e := <-followed:
			require.Equal(t, evs[i].Seq, e.Seq)
		case <-time.After(10 * time.Second):
			t.Fatalf("followed event %d did not arrive", i)
		}
	}
	cancel()
	require.ErrorIs(t, <-followDone, context.Canceled)
}

// A client that stops reading while thousands of events are recorded (far more than the live
// stream buffers) still gets every event once, in order: the daemon refills the gap from the log.
func TestAPIEventStreamMissesNothingForASlowClient(t *testing.T) {
	n, c := startDaemon(t)
	st := n.Store()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	const burst = 5000
	first := make(chan struct{})
	resume := make(chan struct{})
	var got []uint64
	done := make(chan error, 1)
	go func() {
		done <- c.FollowEvents(ctx, 0, func(e api.Event) error {
			if len(got) == 0 {
				close(first)
				<-resume // stop reading while the burst is recorded
			}
			got = append(got, e.Seq)
			if len(got) == burst+1 {
				cancel()
			}
			return nil
		})
	}()
	empty := "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"
	require.NoError(t, st.Record(store.Event{Type: store.Unshared, Root: empty}))
	<-first
	evs := make([]store.Event, burst)
	for i := range evs {
		evs[i] = store.Event{Type: store.Unshared, Root: empty}
	}
	for i := 0; i < burst; i += 500 { // in groups, as gossip records announcements
		require.NoError(t, st.Record(evs[i:i+500]...))
	}
	close(resume)
	select {
	case err := <-done:
		require.ErrorIs(t, err, context.Canceled)
	case <-time.After(30 * time.Second):
		t.Fatalf("the stream stalled after %d events", len(got))
	}
	require.Len(t, got, burst+1)
	for i, seq := range got {
		require.EqualValues(t, i+1, seq, "event %d", i)
	}
}
