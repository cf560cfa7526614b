package tlsbatch_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/sec"
	libp2ptls "github.com/libp2p/go-libp2p/p2p/security/tls"
	"github.com/stretchr/testify/require"

	"peer/internal/tlsbatch"
)

// countingConn counts the writes that reach the raw connection.
type countingConn struct {
	net.Conn
	writes atomic.Int64
}

func (c *countingConn) Write(b []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(b)
}

type side struct {
	id peer.ID
	t  sec.SecureTransport
}

func newSide(tb testing.TB, batched bool) side {
	tb.Helper()
	key, _, err := crypto.GenerateEd25519Key(rand.Reader)
	require.NoError(tb, err)
	id, err := peer.IDFromPrivateKey(key)
	require.NoError(tb, err)
	var t sec.SecureTransport
	if batched {
		t, err = tlsbatch.New(tlsbatch.ID, key, nil)
	} else {
		t, err = libp2ptls.New(libp2ptls.ID, key, nil)
	}
	require.NoError(tb, err)
	return side{id: id, t: t}
}

// secure joins client and server over loopback TCP and returns both ends and the client's raw
// write counter.
func secure(tb testing.TB, client, server side) (sec.SecureConn, sec.SecureConn, *countingConn) {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(tb, err)
	defer ln.Close()
	ctx, cancel := context.WithTimeout(tb.Context(), 10*time.Second)
	defer cancel()
	type result struct {
		c   sec.SecureConn
		err error
	}
	done := make(chan result, 1)
	go func() {
		raw, err := ln.Accept()
		if err != nil {
			done <- result{err: err}
			return
		}
		c, err := server.t.SecureInbound(ctx, raw, client.id)
		done <- result{c, err}
	}()
	raw, err := net.Dial("tcp", ln.Addr().String())
	require.NoError(tb, err)
	counted := &countingConn{Conn: raw}
	cc, err := client.t.SecureOutbound(ctx, counted, server.id)
	require.NoError(tb, err)
	res := <-done
	require.NoError(tb, res.err)
	tb.Cleanup(func() { cc.Close(); res.c.Close() })
	require.Equal(tb, server.id, cc.RemotePeer())
	require.Equal(tb, client.id, res.c.RemotePeer())
	return cc, res.c, counted
}

// Batched and stock TLS understand each other in both roles and both directions, for writes
// smaller than a record, of exactly a record, and of many records.
func TestInteroperatesWithLibp2pTLS(t *testing.T) {
	for _, tc := range []struct {
		name           string
		client, server bool
	}{
		{"batched to batched", true, true},
		{"batched to stock", true, false},
		{"stock to batched", false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, s, _ := secure(t, newSide(t, tc.client), newSide(t, tc.server))
			for _, size := range []int{1, 16 << 10, 16<<10 + 1, 256<<10 + 12, 3 << 20} {
				for _, dir := range [][2]sec.SecureConn{{c, s}, {s, c}} {
					want := make([]byte, size)
					_, _ = rand.Read(want)
					errc := make(chan error, 1)
					go func() { _, err := dir[0].Write(want); errc <- err }()
					got := make([]byte, size)
					_, err := io.ReadFull(dir[1], got)
					require.NoError(t, err)
					require.NoError(t, <-errc)
					require.True(t, bytes.Equal(want, got), "size %d", size)
				}
			}
		})
	}
}

// One Write of many records is one write to TCP; stock TLS makes one per record.
func TestALargeWriteIsOneTCPWrite(t *testing.T) {
	for _, batched := range []bool{true, false} {
		c, s, raw := secure(t, newSide(t, batched), newSide(t, true))
		go func() { _, _ = io.Copy(io.Discard, s) }()
		before := raw.writes.Load()
		_, err := c.Write(make([]byte, 256<<10))
		require.NoError(t, err)
		writes := raw.writes.Load() - before
		if batched {
			require.EqualValues(t, 1, writes)
		} else {
			require.GreaterOrEqual(t, writes, int64(16), "the stock transport writes every record")
		}
	}
}

// Writes from many goroutines arrive whole and uncorrupted: holding never reorders records.
func TestConcurrentWritesStayOrdered(t *testing.T) {
	c, s, _ := secure(t, newSide(t, true), newSide(t, true))
	const writers, each, size = 4, 20, 40 << 10
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			msg := bytes.Repeat([]byte{byte(w)}, size)
			for range each {
				_, err := c.Write(msg)
				require.NoError(t, err)
			}
		})
	}
	got := make([]byte, size)
	for range writers * each {
		_, err := io.ReadFull(s, got)
		require.NoError(t, err)
		require.Equal(t, bytes.Repeat(got[:1], size), got, "a message interleaved with another")
	}
	wg.Wait()
}

// Closing a connection whose held Write is stuck on a peer that does not read breaks the Write
// at once, as crypto/tls does, instead of waiting out the close_notify alert's 5 s deadline.
func TestCloseBreaksAStuckWrite(t *testing.T) {
	c, _, raw := secure(t, newSide(t, true), newSide(t, true))
	require.NoError(t, raw.Conn.(*net.TCPConn).SetWriteBuffer(16<<10))
	before := raw.writes.Load()
	errc := make(chan error, 1)
	go func() {
		// More than the peer's receive buffer can take: it reads nothing, so this blocks.
		_, err := c.Write(make([]byte, 32<<20))
		errc <- err
	}()
	require.Eventually(t, func() bool { return raw.writes.Load() > before }, 10*time.Second, time.Millisecond,
		"the held records reach the raw connection")
	start := time.Now()
	require.NoError(t, c.Close())
	select {
	case err := <-errc:
		require.Error(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not break the Write")
	}
	require.Less(t, time.Since(start), 2*time.Second)
}

// BenchmarkStream: one secured connection on loopback TCP carrying 256 KiB writes (yamux's
// message size in this project), stock libp2p TLS against batched.
//
//	go test -run '^$' -bench Stream -benchtime 2x ./internal/tlsbatch
func BenchmarkStream(b *testing.B) {
	for _, batched := range []bool{false, true} {
		name := map[bool]string{false: "stock", true: "batched"}[batched]
		b.Run(name, func(b *testing.B) {
			c, s, _ := secure(b, newSide(b, batched), newSide(b, batched))
			const total = 256 << 20
			msg := make([]byte, 256<<10)
			buf := make([]byte, 256<<10)
			b.SetBytes(total)
			b.ResetTimer()
			for range b.N {
				errc := make(chan error, 1)
				go func() {
					for sent := 0; sent < total; sent += len(msg) {
						if _, err := c.Write(msg); err != nil {
							errc <- err
							return
						}
					}
					errc <- nil
				}()
				for got := 0; got < total; {
					n, err := s.Read(buf)
					if err != nil {
						b.Fatal(err)
					}
					got += n
				}
				if err := <-errc; err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
