package node_test

import (
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"peer/store"
	"peer/transfer"
)

// BenchmarkGatewayHeldFile measures the gateway serving a held 1 GiB file over loopback HTTP:
// throughput and time to the first byte of the body.
//
//	go test -run '^$' -bench GatewayHeldFile -benchtime 1x ./node
func BenchmarkGatewayHeldFile(b *testing.B) {
	const size = 1 << 30
	n := repoNode(b, nil, withGateway)
	f, err := n.Store().Add(b.Context(), io.LimitReader(rand.NewChaCha8([32]byte{42}), size), "big.bin", store.AddOptions{})
	require.NoError(b, err)
	url := n.GatewayURL() + "/ipfs/" + f.Root.String()
	buf := make([]byte, 1<<20)
	var ttfb time.Duration
	b.SetBytes(size)
	b.ResetTimer()
	for range b.N {
		start := time.Now()
		resp, err := http.Get(url)
		require.NoError(b, err)
		require.Equal(b, http.StatusOK, resp.StatusCode)
		k, err := io.ReadFull(resp.Body, buf[:1])
		require.NoError(b, err)
		ttfb += time.Since(start)
		rest, err := io.CopyBuffer(io.Discard, resp.Body, buf)
		resp.Body.Close()
		require.NoError(b, err)
		require.Equal(b, int64(size), int64(k)+rest)
	}
	b.ReportMetric(float64(ttfb.Microseconds())/1000/float64(b.N), "ms-ttfb")
}

// BenchmarkGatewayRangeNotHeld measures a range at the end of a 256 MiB file that the gateway's
// node does not hold (a player asking for an index): the time to the first byte and to the
// whole 1 MiB range, each round from a new node whose fetch of the whole file starts with it.
//
//	go test -run '^$' -bench GatewayRangeNotHeld -benchtime 3x ./node
func BenchmarkGatewayRangeNotHeld(b *testing.B) {
	const size, span = 256 << 20, 1 << 20
	a := repoNode(b, nil)
	f, err := a.Store().Add(b.Context(), io.LimitReader(rand.NewChaCha8([32]byte{43}), size), "big.bin", store.AddOptions{})
	require.NoError(b, err)
	var ttfb, whole time.Duration
	b.SetBytes(span)
	for b.Loop() {
		b.StopTimer()
		n := repoNode(b, a, withGateway)
		require.Eventually(b, func() bool {
			ok, _ := n.Host().Peerstore().SupportsProtocols(a.ID(), transfer.ID)
			return len(ok) > 0
		}, 10*time.Second, time.Millisecond, "connected to the seeder")
		req, err := http.NewRequest(http.MethodGet, n.GatewayURL()+"/ipfs/"+f.Root.String(), nil)
		require.NoError(b, err)
		req.Header.Set("Range", "bytes="+strconv.Itoa(size-span)+"-")
		b.StartTimer()
		start := time.Now()
		resp, err := http.DefaultClient.Do(req)
		require.NoError(b, err)
		require.Equal(b, http.StatusPartialContent, resp.StatusCode)
		one := make([]byte, 1)
		_, err = io.ReadFull(resp.Body, one)
		require.NoError(b, err)
		ttfb += time.Since(start)
		rest, err := io.Copy(io.Discard, resp.Body)
		whole += time.Since(start)
		resp.Body.Close()
		require.NoError(b, err)
		require.Equal(b, int64(span), 1+rest)
		b.StopTimer()
		require.NoError(b, n.Close()) // its fetch behind the range stops: the next round starts alone
		b.StartTimer()
	}
	b.ReportMetric(float64(ttfb.Microseconds())/1000/float64(b.N), "ms-ttfb")
	b.ReportMetric(float64(whole.Microseconds())/1000/float64(b.N), "ms-range")
}
