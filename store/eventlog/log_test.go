package eventlog_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"peer/store/eventlog"
)

// entry is a record as Scan saw it.
type entry struct {
	off int64
	rec string
}

func open(t *testing.T, path string, opts eventlog.Options) (*eventlog.Log, eventlog.Recovery) {
	t.Helper()
	l, rec, err := eventlog.Open(path, opts)
	require.NoError(t, err)
	t.Cleanup(func() { _ = l.Close() })
	return l, rec
}

func scanAll(t *testing.T, l *eventlog.Log) []entry {
	t.Helper()
	var out []entry
	require.NoError(t, l.Scan(eventlog.HeaderSize, func(off int64, rec []byte) error {
		out = append(out, entry{off, string(rec)})
		return nil
	}))
	return out
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	require.NoError(t, err)
	return fi.Size()
}

func TestRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.log")
	l, rec := open(t, path, eventlog.Options{})
	require.False(t, rec.Cut())
	require.Equal(t, int64(eventlog.HeaderSize), l.End())
	require.Empty(t, scanAll(t, l))

	big := strings.Repeat("x", eventlog.MaxRecordSize)
	var want []entry
	off, err := l.Append([]byte("first"))
	require.NoError(t, err)
	require.Equal(t, int64(eventlog.HeaderSize), off)
	want = append(want, entry{off, "first"})

	off, err = l.Append([]byte(""), []byte("third"), []byte(big))
	require.NoError(t, err)
	want = append(want, entry{off, ""}, entry{off + 8, "third"}, entry{off + 8 + 8 + 5, big})

	end, err := l.Append()
	require.NoError(t, err)
	require.Equal(t, l.End(), end)
	require.Equal(t, fileSize(t, path), l.End())
	require.Equal(t, want, scanAll(t, l))

	// Scan from the middle, at an offset Append returned.
	var mid []entry
	require.NoError(t, l.Scan(want[2].off, func(off int64, rec []byte) error {
		mid = append(mid, entry{off, string(rec)})
		return nil
	}))
	require.Equal(t, want[2:], mid)
	require.NoError(t, l.Scan(l.End(), func(int64, []byte) error { return errors.New("no records expected") }))
	require.Error(t, l.Scan(l.End()+1, func(int64, []byte) error { return nil }))
	require.Error(t, l.Scan(0, func(int64, []byte) error { return nil }))

	require.NoError(t, l.Close())
	l2, rec := open(t, path, eventlog.Options{})
	require.Equal(t, eventlog.Recovery{}, rec)
	require.Equal(t, want, scanAll(t, l2))
	require.Equal(t, end, l2.End())
}

func TestScanAcrossReadBuffer(t *testing.T) {
	// Records of every size class, several MiB in all, so records straddle the read window.
	path := filepath.Join(t.TempDir(), "events.log")
	l, _ := open(t, path, eventlog.Options{NoSync: true})
	var want []string
	for i := range 12 {
		n := []int{eventlog.MaxRecordSize, 1, eventlog.MaxRecordSize - 3, 700_001}[i%4]
		r := bytes.Repeat([]byte{byte('a' + i)}, n)
		_, err := l.Append(r)
		require.NoError(t, err)
		want = append(want, string(r))
	}
	require.NoError(t, l.Close())
	l2, rec := open(t, path, eventlog.Options{NoSync: true})
	require.False(t, rec.Cut())
	var got []string
	for _, e := range scanAll(t, l2) {
		got = append(got, e.rec)
	}
	require.Equal(t, want, got)
}

func TestAppendTooLarge(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.log")
	l, _ := open(t, path, eventlog.Options{NoSync: true})
	_, err := l.Append([]byte("ok"), make([]byte, eventlog.MaxRecordSize+1))
	require.Error(t, err)
	require.Equal(t, int64(eventlog.HeaderSize), l.End())
	require.Equal(t, int64(eventlog.HeaderSize), fileSize(t, path))
	require.Equal(t, int64(0), eventlog.Flushes(l))
}

func TestConcurrentAppenders(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.log")
	l, _ := open(t, path, eventlog.Options{})
	const writers, each = 8, 50
	var (
		mu   sync.Mutex
		offs = map[string]int64{}
		wg   sync.WaitGroup
	)
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				recs := [][]byte{fmt.Appendf(nil, "w%d-%d-a", w, i), fmt.Appendf(nil, "w%d-%d-b", w, i)}
				off, err := l.Append(recs...)
				if !assertNoError(t, err) {
					return
				}
				mu.Lock()
				offs[string(recs[0])] = off
				offs[string(recs[1])] = off + 8 + int64(len(recs[0]))
				mu.Unlock()
			}
		})
	}
	// Scans run beside the appends and always see whole records.
	wg.Go(func() {
		for range 20 {
			if !assertNoError(t, l.Scan(eventlog.HeaderSize, func(int64, []byte) error { return nil })) {
				return
			}
		}
	})
	wg.Wait()
	require.NoError(t, l.Close())

	l2, rec := open(t, path, eventlog.Options{})
	require.False(t, rec.Cut())
	got := scanAll(t, l2)
	require.Len(t, got, writers*each*2)
	seen := map[string]bool{}
	for _, e := range got {
		require.False(t, seen[e.rec], "duplicate %q", e.rec)
		seen[e.rec] = true
		require.Equal(t, offs[e.rec], e.off, "offset of %q", e.rec)
	}
	t.Logf("%d appends in %d fsyncs", writers*each, eventlog.Flushes(l))
}

func assertNoError(t *testing.T, err error) bool {
	t.Helper()
	if err != nil {
		t.Errorf("unexpected error: %v", err)
		return false
	}
	return true
}

// appendBehindHeldSync starts n concurrent appends while the first fsync is held, and returns
// once every record is queued; release lets the fsync go on, and wg waits for the appenders.
func appendBehindHeldSync(t *testing.T, l *eventlog.Log, n int) (release func(), wg *sync.WaitGroup) {
	t.Helper()
	held := make(chan struct{})
	var once sync.Once
	eventlog.WrapSync(l, func(sync func() error) func() error {
		return func() error {
			once.Do(func() { <-held })
			return sync()
		}
	})
	wg = &sync.WaitGroup{}
	for i := range n {
		wg.Go(func() {
			_, err := l.Append(fmt.Appendf(nil, "rec-%d", i))
			assertNoError(t, err)
		})
	}
	require.Eventually(t, func() bool { return eventlog.Accepted(l) == int64(n) }, 10*time.Second, time.Millisecond)
	return func() { close(held) }, wg
}

func TestGroupCommit(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.log")
	l, _ := open(t, path, eventlog.Options{})
	// Hold the first fsync until every appender has queued its record behind it.
	const n = 64
	release, wg := appendBehindHeldSync(t, l, n)
	release()
	wg.Wait()
	// One fsync for the first leader's batch, one for all the records queued behind it.
	require.LessOrEqual(t, eventlog.Flushes(l), int64(2))
	require.Len(t, scanAll(t, l), n)
}

// cutLog builds a small log and returns its bytes and the offsets where its records end.
func cutLog(t *testing.T) (data []byte, recs []string, ends []int64) {
	path := filepath.Join(t.TempDir(), "events.log")
	l, _ := open(t, path, eventlog.Options{NoSync: true})
	recs = []string{"", "a", "hello, log", strings.Repeat("z", 40), "end"}
	for _, r := range recs {
		_, err := l.Append([]byte(r))
		require.NoError(t, err)
		ends = append(ends, l.End())
	}
	require.NoError(t, l.Close())
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	return data, recs, ends
}

func TestTruncateAtEveryOffset(t *testing.T) {
	data, recs, ends := cutLog(t)
	dir := t.TempDir()
	for cut := range len(data) + 1 {
		path := filepath.Join(dir, fmt.Sprintf("cut-%d.log", cut))
		require.NoError(t, os.WriteFile(path, data[:cut], 0o644))

		l, rec, err := eventlog.Open(path, eventlog.Options{NoSync: true})
		require.NoError(t, err, "cut at %d", cut)

		// The valid log is the header and the whole records before the cut.
		keep, valid := 0, int64(eventlog.HeaderSize)
		for keep < len(ends) && ends[keep] <= int64(cut) {
			valid = ends[keep]
			keep++
		}
		switch {
		case cut == 0:
			require.Equal(t, eventlog.Recovery{}, rec, "cut at %d", cut)
		case cut < eventlog.HeaderSize:
			require.True(t, rec.Cut(), "cut at %d", cut)
			require.Equal(t, int64(cut), rec.Dropped)
		case int64(cut) == valid:
			require.Equal(t, eventlog.Recovery{}, rec, "cut at %d", cut)
		default:
			require.Equal(t, eventlog.Recovery{TruncatedAt: valid, Dropped: int64(cut) - valid, Reason: "torn record"}, rec, "cut at %d", cut)
		}
		require.Equal(t, valid, l.End())
		require.Equal(t, valid, fileSize(t, path))
		got := []string{}
		for _, e := range scanAll(t, l) {
			got = append(got, e.rec)
		}
		require.Equal(t, recs[:keep], got, "cut at %d", cut)

		// The log takes appends again, and they survive a reopen.
		_, err = l.Append([]byte("after"))
		require.NoError(t, err)
		require.NoError(t, l.Close())
		l2, rec2, err := eventlog.Open(path, eventlog.Options{NoSync: true})
		require.NoError(t, err)
		require.False(t, rec2.Cut())
		all := scanAll(t, l2)
		require.Len(t, all, keep+1)
		require.Equal(t, "after", all[keep].rec)
		require.NoError(t, l2.Close())
	}
}

func TestFlippedByte(t *testing.T) {
	data, recs, ends := cutLog(t)
	dir := t.TempDir()
	last := len(recs) - 1
	lastStart := ends[last-1]
	t.Run("last record is cut", func(t *testing.T) {
		for i := lastStart; i < ends[last]; i++ {
			path := filepath.Join(dir, fmt.Sprintf("last-%d.log", i))
			bad := bytes.Clone(data)
			bad[i] ^= 0x40
			require.NoError(t, os.WriteFile(path, bad, 0o644))
			l, rec, err := eventlog.Open(path, eventlog.Options{NoSync: true})
			require.NoError(t, err, "flip at %d", i)
			require.True(t, rec.Cut(), "flip at %d", i)
			require.Equal(t, lastStart, rec.TruncatedAt)
			require.Equal(t, ends[last]-lastStart, rec.Dropped)
			require.NotEmpty(t, rec.Reason)
			require.Len(t, scanAll(t, l), last)
			require.Equal(t, lastStart, fileSize(t, path))
			require.NoError(t, l.Close())
		}
	})
	t.Run("middle record is corruption", func(t *testing.T) {
		mid := 2
		for i := ends[mid-1]; i < ends[mid]; i++ {
			path := filepath.Join(dir, fmt.Sprintf("mid-%d.log", i))
			bad := bytes.Clone(data)
			bad[i] ^= 0x40
			require.NoError(t, os.WriteFile(path, bad, 0o644))
			_, _, err := eventlog.Open(path, eventlog.Options{NoSync: true})
			require.ErrorIs(t, err, eventlog.ErrCorrupt, "flip at %d", i)
			var ce *eventlog.CorruptError
			require.ErrorAs(t, err, &ce)
			require.Equal(t, ends[mid-1], ce.Offset)
			require.Contains(t, err.Error(), fmt.Sprintf("offset %d", ends[mid-1]))
			after, rerr := os.ReadFile(path)
			require.NoError(t, rerr)
			require.Equal(t, bad, after, "file must be unchanged")
		}
	})
	t.Run("header is corruption", func(t *testing.T) {
		for i := range eventlog.HeaderSize {
			path := filepath.Join(dir, fmt.Sprintf("head-%d.log", i))
			bad := bytes.Clone(data)
			bad[i] ^= 0x01
			require.NoError(t, os.WriteFile(path, bad, 0o644))
			_, _, err := eventlog.Open(path, eventlog.Options{NoSync: true})
			require.ErrorIs(t, err, eventlog.ErrCorrupt)
			after, rerr := os.ReadFile(path)
			require.NoError(t, rerr)
			require.Equal(t, bad, after)
		}
	})
}

func TestGarbageTail(t *testing.T) {
	data, recs, ends := cutLog(t)
	for _, tail := range [][]byte{
		make([]byte, 4096),                                // zeroed blocks past the end
		[]byte("\xff\xff\xff\xff\x00\x00"),                // impossible length
		[]byte(`{"type":"FileAdded","cid":`),              // text
		{5, 0, 0, 0, 1, 2, 3, 4, 'a', 'b', 'c', 'd', 'e'}, // whole record, wrong checksum
	} {
		path := filepath.Join(t.TempDir(), "events.log")
		require.NoError(t, os.WriteFile(path, append(bytes.Clone(data), tail...), 0o644))
		l, rec, err := eventlog.Open(path, eventlog.Options{NoSync: true})
		require.NoError(t, err)
		require.Equal(t, ends[len(ends)-1], rec.TruncatedAt)
		require.Equal(t, int64(len(tail)), rec.Dropped)
		require.Len(t, scanAll(t, l), len(recs))
		require.NoError(t, l.Close())
	}
}

func TestFailedAppendIsUndone(t *testing.T) {
	fail := errors.New("disk on fire")
	for _, tc := range []struct {
		name string
		set  func(l *eventlog.Log, failing *bool)
	}{
		{"write", func(l *eventlog.Log, failing *bool) {
			eventlog.WrapWriteAt(l, func(w func([]byte, int64) (int, error)) func([]byte, int64) (int, error) {
				return func(b []byte, off int64) (int, error) {
					if *failing {
						n, _ := w(b[:len(b)/2], off) // a partial write, then failure
						return n, fail
					}
					return w(b, off)
				}
			})
		}},
		{"sync", func(l *eventlog.Log, failing *bool) {
			eventlog.WrapSync(l, func(s func() error) func() error {
				return func() error {
					if *failing {
						return fail
					}
					return s()
				}
			})
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "events.log")
			l, _ := open(t, path, eventlog.Options{})
			failing := false
			tc.set(l, &failing)
			_, err := l.Append([]byte("one"))
			require.NoError(t, err)
			end := l.End()

			failing = true
			_, err = l.Append([]byte("two"), []byte("three"))
			require.ErrorIs(t, err, fail)
			require.Equal(t, end, l.End())
			require.Equal(t, end, fileSize(t, path))

			failing = false
			off, err := l.Append([]byte("four"))
			require.NoError(t, err)
			require.Equal(t, end, off)
			require.NoError(t, l.Close())

			l2, rec := open(t, path, eventlog.Options{})
			require.False(t, rec.Cut())
			require.Equal(t, []entry{{eventlog.HeaderSize, "one"}, {end, "four"}}, scanAll(t, l2))
		})
	}
}

func TestSecondOpenFails(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.log")
	l, _ := open(t, path, eventlog.Options{NoSync: true})
	_, _, err := eventlog.Open(path, eventlog.Options{NoSync: true})
	require.Error(t, err)
	require.NoError(t, l.Close())
	l2, _ := open(t, path, eventlog.Options{NoSync: true})
	require.NoError(t, l2.Close())
}

func TestClose(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.log")
	l, _, err := eventlog.Open(path, eventlog.Options{NoSync: true})
	require.NoError(t, err)
	require.NoError(t, l.Close())
	require.NoError(t, l.Close())
	_, err = l.Append([]byte("late"))
	require.ErrorIs(t, err, eventlog.ErrClosed)
	require.ErrorIs(t, l.Scan(eventlog.HeaderSize, func(int64, []byte) error { return nil }), eventlog.ErrClosed)
}

func TestScanStopsAtCallbackError(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.log")
	l, _ := open(t, path, eventlog.Options{NoSync: true})
	_, err := l.Append([]byte("a"), []byte("b"), []byte("c"))
	require.NoError(t, err)
	stop := errors.New("stop")
	calls := 0
	err = l.Scan(eventlog.HeaderSize, func(int64, []byte) error {
		calls++
		if calls == 2 {
			return stop
		}
		return nil
	})
	require.ErrorIs(t, err, stop)
	require.Equal(t, 2, calls)
}

func TestBadHeader(t *testing.T) {
	for name, content := range map[string]string{
		"wrong magic":     "PEERLOX\x01",
		"newer version":   "PEERLOG\x02",
		"short non-magic": "PXX",
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "events.log")
			require.NoError(t, os.WriteFile(path, []byte(content), 0o644))
			_, _, err := eventlog.Open(path, eventlog.Options{NoSync: true})
			require.ErrorIs(t, err, eventlog.ErrCorrupt)
			after, rerr := os.ReadFile(path)
			require.NoError(t, rerr)
			require.Equal(t, content, string(after))
		})
	}
}

func TestDecodeRecord(t *testing.T) {
	good := eventlog.AppendRecord(nil, []byte("payload"))
	rec, n, err := eventlog.DecodeRecord(append(bytes.Clone(good), "next"...))
	require.NoError(t, err)
	require.Equal(t, "payload", string(rec))
	require.Equal(t, len(good), n)

	for i := range len(good) {
		_, _, err := eventlog.DecodeRecord(good[:i])
		require.ErrorIs(t, err, io.ErrUnexpectedEOF, "prefix %d", i)
	}
	badCRC := bytes.Clone(good)
	badCRC[len(badCRC)-1] ^= 1
	_, _, err = eventlog.DecodeRecord(badCRC)
	require.ErrorIs(t, err, eventlog.ErrCorrupt)

	tooLong := []byte{0x01, 0x00, 0x10, 0x00, 0, 0, 0, 0} // MaxRecordSize + 1
	_, _, err = eventlog.DecodeRecord(tooLong)
	require.ErrorIs(t, err, eventlog.ErrCorrupt)
}

func TestCloseWaitsForQueuedAppends(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.log")
	l, _, err := eventlog.Open(path, eventlog.Options{})
	require.NoError(t, err)
	const n = 10
	release, wg := appendBehindHeldSync(t, l, n)
	closed := make(chan error)
	go func() { closed <- l.Close() }()
	// Close has begun (the log refuses new work) while the queued appends still wait on the fsync.
	require.Eventually(t, func() bool {
		return errors.Is(l.Scan(eventlog.HeaderSize, func(int64, []byte) error { return nil }), eventlog.ErrClosed)
	}, 10*time.Second, time.Millisecond)
	_, err = l.Append([]byte("late"))
	require.ErrorIs(t, err, eventlog.ErrClosed)
	release()
	require.NoError(t, <-closed)
	wg.Wait()

	l2, rec := open(t, path, eventlog.Options{})
	require.False(t, rec.Cut())
	require.Len(t, scanAll(t, l2), n)
}

func TestUndoFailureMakesLogUnusable(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.log")
	l, _ := open(t, path, eventlog.Options{})
	_, err := l.Append([]byte("one"))
	require.NoError(t, err)
	end := l.End()

	fail := errors.New("disk on fire")
	eventlog.WrapWriteAt(l, func(w func([]byte, int64) (int, error)) func([]byte, int64) (int, error) {
		return func(b []byte, off int64) (int, error) {
			n, _ := w(b[:len(b)/2], off)
			return n, fail
		}
	})
	eventlog.SetTruncate(l, func(int64) error { return errors.New("cannot truncate") })
	_, err = l.Append([]byte("two"))
	require.ErrorIs(t, err, fail)
	require.ErrorContains(t, err, "cannot truncate")
	_, err = l.Append([]byte("three"))
	require.ErrorContains(t, err, "unusable")
	require.Equal(t, end, l.End())
	require.NoError(t, l.Close())

	// The half-written record is a torn tail for the next Open.
	l2, rec := open(t, path, eventlog.Options{})
	require.True(t, rec.Cut())
	require.Equal(t, end, rec.TruncatedAt)
	require.Equal(t, []entry{{eventlog.HeaderSize, "one"}}, scanAll(t, l2))
}
