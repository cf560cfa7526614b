package node_test

import (
	"io"
	"math/rand/v2"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"peer/store"
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
