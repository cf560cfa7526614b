package transfer_test

import (
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
	"github.com/stretchr/testify/require"

	"peer/transfer"
)

// delayProxy forwards TCP connections to target, delaying every byte by
// delay in each direction without limiting how many bytes are in flight:
// a long fat pipe on loopback.
func delayProxy(t *testing.T, target ma.Multiaddr, delay time.Duration) ma.Multiaddr {
	t.Helper()
	dst, err := manet.ToNetAddr(target)
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		_ = ln.Close()
		mu.Lock()
		for _, c := range conns {
			_ = c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			out, err := net.Dial("tcp", dst.String())
			if err != nil {
				_ = in.Close()
				continue
			}
			mu.Lock()
			conns = append(conns, in, out)
			mu.Unlock()
			wg.Go(func() { delayCopy(out, in, delay) })
			wg.Go(func() { delayCopy(in, out, delay) })
		}
	})
	addr, err := manet.FromNetAddr(ln.Addr())
	require.NoError(t, err)
	return addr
}

func delayCopy(dst, src net.Conn, delay time.Duration) {
	type chunk struct {
		b  []byte
		at time.Time
	}
	ch := make(chan chunk, 4096)
	go func() {
		defer close(ch)
		for {
			buf := make([]byte, 64<<10)
			n, err := src.Read(buf)
			if n > 0 {
				ch <- chunk{buf[:n], time.Now().Add(delay)}
			}
			if err != nil {
				return
			}
		}
	}()
	for c := range ch {
		time.Sleep(time.Until(c.at))
		if _, err := dst.Write(c.b); err != nil {
			break
		}
	}
	_ = dst.Close()
	for range ch { // let the reader finish
	}
	_, _ = io.Copy(io.Discard, src)
}

// TestWindowGrowsOnLongLinks fetches over a link with a 50 ms round trip,
// starting from a 256 KiB window: at that window the fetch would take over
// 6 s; the window must grow towards bandwidth x RTT. How far it grows follows
// the machine's speed, so the test asks only that it grew well past the start.
func TestWindowGrowsOnLongLinks(t *testing.T) {
	const size = 32 << 20
	d := buildDAG(t, size, 64<<10, 1024, 20)
	src := newSeeder(t, d.store)
	proxy := delayProxy(t, src.h.Addrs()[0], 25*time.Millisecond)

	h := newHost(t)
	tr := transfer.New(h, nil, transfer.WithWindow(256<<10, 64<<20))
	t.Cleanup(func() { _ = tr.Close() })
	require.NoError(t, h.Connect(t.Context(), peer.AddrInfo{ID: src.h.ID(), Addrs: []ma.Multiaddr{proxy}}))

	got := newCollector()
	st, err := tr.Fetch(t.Context(), request(d, []peer.ID{src.h.ID()}, got))
	require.NoError(t, err)
	requireComplete(t, d, got)
	t.Logf("32 MiB over a 50 ms RTT link in %v (%.1f MB/s)", st.Duration, size/st.Duration.Seconds()/1e6)
	w := st.Peers[src.h.ID()].MaxWindow
	t.Logf("window grew from 256 KiB to %d KiB", w>>10)
	require.GreaterOrEqual(t, w, int64(1<<20))
}
