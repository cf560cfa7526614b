package nettest

import (
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"

	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
)

// HangingListener listens on 127.0.0.1 and accepts connections that it never answers, so every
// dial to it hangs in its handshake until the dialer gives up. It returns its address and a
// function reporting the most connections that were open at once. Cleanup closes it and waits
// for its connections.
func HangingListener(t testing.TB) (ma.Multiaddr, func() int32) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listening: %v", err)
	}
	var open, peak atomic.Int32
	var conns sync.WaitGroup
	t.Cleanup(func() { _ = ln.Close(); conns.Wait() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			peak.Store(max(peak.Load(), open.Add(1)))
			conns.Go(func() { // silent until the dialer gives up
				_, _ = io.Copy(io.Discard, c)
				open.Add(-1)
				_ = c.Close()
			})
		}
	}()
	addr, err := manet.FromNetAddr(ln.Addr())
	if err != nil {
		t.Fatalf("listener address: %v", err)
	}
	return addr, peak.Load
}
