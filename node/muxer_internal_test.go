package node

import (
	"context"
	"errors"
	"net"
	"os"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/stretchr/testify/require"
)

// sendable opens a stream from one side of a yamux connection to the other, lets the acceptor
// read its first byte (which grants the stream its window) and then read nothing more, and
// returns how many bytes each side could write before it had to wait for the other to read:
// the receive window of the stream's acceptor, and of its opener.
func sendable(t *testing.T, opener, acceptor network.MuxedConn) (toAcceptor, toOpener int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	out, err := opener.OpenStream(ctx)
	require.NoError(t, err)
	_, err = out.Write([]byte{1})
	require.NoError(t, err)
	in, err := acceptor.AcceptStream()
	require.NoError(t, err)
	_, err = in.Read(make([]byte, 1))
	require.NoError(t, err)
	// A write larger than any window stops where the window ends, at its deadline.
	fill := func(s network.MuxedStream) int {
		require.NoError(t, s.SetWriteDeadline(time.Now().Add(time.Second)))
		n, err := s.Write(make([]byte, 32<<20))
		require.True(t, errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, context.DeadlineExceeded) || isTimeout(err), "%v", err)
		return n
	}
	return fill(out), fill(in)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// The streams this node opens (its fetches) get a 4 MiB receive window; the streams peers open
// to it get yamux's 256 KiB, so a stranger cannot make it buffer more on a stream its handler
// does not read.
func TestMuxerWindowsByWhoOpens(t *testing.T) {
	a, b := net.Pipe()
	m := muxer()
	ca, err := m.NewConn(a, false, nil)
	require.NoError(t, err)
	defer ca.Close()
	cb, err := m.NewConn(b, true, nil)
	require.NoError(t, err)
	defer cb.Close()
	for _, c := range []struct {
		name             string
		opener, acceptor network.MuxedConn
	}{{"client opens", ca, cb}, {"server opens", cb, ca}} {
		toAcceptor, toOpener := sendable(t, c.opener, c.acceptor)
		// Within the byte the acceptor read: the window counts it or not, by who opened.
		require.InDelta(t, 256<<10, toAcceptor, 1, "%s: a stream opened to a node buffers at most 256 KiB there", c.name)
		require.InDelta(t, 4<<20, toOpener, 1, "%s: a stream a node opens takes 4 MiB at once", c.name)
	}
}
