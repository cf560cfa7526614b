package transfer

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/multiformats/go-multihash"
	"github.com/stretchr/testify/require"
)

func qcid(t *testing.T, i int) cid.Cid {
	h, err := multihash.Sum(fmt.Appendf(nil, "%d", i), multihash.SHA2_256, -1)
	require.NoError(t, err)
	return cid.NewCidV1(cid.Raw, h)
}

func newTestQueue(max int) *serveQueue {
	return &serveQueue{wake: make(chan struct{}, 1), queued: map[cid.Cid]bool{}, max: max}
}

func drain(q *serveQueue) []cid.Cid {
	var out []cid.Cid
	for {
		c, ok, _ := q.next()
		if !ok {
			return out
		}
		out = append(out, c)
	}
}

func TestServeQueueOrderAndCancel(t *testing.T) {
	a, b, c := qcid(t, 1), qcid(t, 2), qcid(t, 3)
	q := newTestQueue(10)
	require.NoError(t, q.push([]cid.Cid{a, b, c}))
	q.cancel([]cid.Cid{b, qcid(t, 4)}) // b skipped; an unknown CID is ignored
	require.Equal(t, []cid.Cid{a, c}, drain(q))
	q.cancel([]cid.Cid{a}) // nothing queued: no effect on later wants
	require.NoError(t, q.push([]cid.Cid{a}))
	require.Equal(t, []cid.Cid{a}, drain(q))

	// Wanted again after a cancel, before it was skipped: served once, in its place.
	require.NoError(t, q.push([]cid.Cid{a, b}))
	q.cancel([]cid.Cid{a})
	require.NoError(t, q.push([]cid.Cid{c, a}))
	require.Equal(t, []cid.Cid{a, b, c}, drain(q))
}

func TestServeQueueWantsEachCIDOnce(t *testing.T) {
	a, b := qcid(t, 1), qcid(t, 2)
	q := newTestQueue(4)
	many := make([]cid.Cid, 0, 2000)
	for i := range 2000 {
		many = append(many, []cid.Cid{a, b}[i%2])
	}
	// 2,000 wants of two CIDs, in one frame and in many: two entries, within the cap.
	require.NoError(t, q.push(many))
	for range 1000 {
		require.NoError(t, q.push([]cid.Cid{b, a}))
	}
	require.Equal(t, []cid.Cid{a, b}, drain(q))
}

func TestServeQueueCap(t *testing.T) {
	q := newTestQueue(4)
	cids := []cid.Cid{qcid(t, 1), qcid(t, 2), qcid(t, 3), qcid(t, 4)}
	more := []cid.Cid{qcid(t, 5), qcid(t, 6), qcid(t, 7), qcid(t, 8)}
	require.NoError(t, q.push(cids))
	require.ErrorIs(t, q.push(more[:1]), errQueueFull)
	// Canceled entries do not count, up to twice the cap.
	q.cancel(cids)
	require.NoError(t, q.push(more))
	require.ErrorIs(t, q.push([]cid.Cid{qcid(t, 9)}), errQueueFull)
	require.Equal(t, more, drain(q))
	for range 100 { // the queue compacts as it drains
		require.NoError(t, q.push(cids))
		require.Len(t, drain(q), 4)
	}
	require.LessOrEqual(t, cap(q.cids), 16)
}

// levels records the level of every log record.
type levels struct {
	mu  sync.Mutex
	got []slog.Level
}

func (l *levels) Enabled(context.Context, slog.Level) bool { return true }
func (l *levels) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	l.got = append(l.got, r.Level)
	l.mu.Unlock()
	return nil
}
func (l *levels) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *levels) WithGroup(string) slog.Handler      { return l }

// TestRepeatedMisbehaviourLoggedOnce: a peer that misbehaves again while banned is logged at
// debug level, so it cannot flood the log; the callback still hears of every offence.
func TestRepeatedMisbehaviourLoggedOnce(t *testing.T) {
	logs := &levels{}
	calls := 0
	h, err := libp2p.New(libp2p.NoListenAddrs)
	require.NoError(t, err)
	t.Cleanup(func() { _ = h.Close() })
	tr := New(h, nil, WithLogger(slog.New(logs)), WithMisbehaviour(func(peer.ID, error) { calls++ }))
	for range 3 {
		tr.misbehaved("p1", errQueueFull)
	}
	tr.misbehaved("p2", errQueueFull)
	require.Equal(t, []slog.Level{slog.LevelWarn, slog.LevelDebug, slog.LevelDebug, slog.LevelWarn}, logs.got)
	require.Equal(t, 4, calls)
	require.True(t, tr.Banned("p1"))
}

// Freed serving memory goes to the waiting peer that holds least, not to the first in line.
func TestServeMemoryFavoursPeersThatHoldLeast(t *testing.T) {
	m := newServeMemory(4, 4)
	ctx := t.Context()
	require.NoError(t, m.reserve(ctx, "a", 4))
	got := make(chan peer.ID, 2)
	wait := func(p peer.ID) {
		go func() {
			if m.reserve(ctx, p, 1) == nil {
				got <- p
			}
		}()
		require.Eventually(t, func() bool {
			m.mu.Lock()
			defer m.mu.Unlock()
			return len(m.waiters) > 0 && m.waiters[len(m.waiters)-1].p == p
		}, 5*time.Second, time.Millisecond)
	}
	wait("a")
	wait("b")
	m.release("a", 1)
	require.Equal(t, peer.ID("b"), <-got)
	m.release("a", 1)
	require.Equal(t, peer.ID("a"), <-got)
	held, peak, _ := m.stats()
	require.EqualValues(t, 4, held)
	require.EqualValues(t, 4, peak)

	// A waiter whose context ends leaves the line and holds nothing.
	short, cancel := context.WithCancel(ctx)
	cancel()
	require.ErrorIs(t, m.reserve(short, "c", 1), context.Canceled)
	m.mu.Lock()
	require.Empty(t, m.waiters)
	m.mu.Unlock()
}
