package store_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/stretchr/testify/require"

	"peer/store"
	"peer/store/eventlog"
	"peer/store/unixfs"
)

func newRepo(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	created, err := store.Init(dir)
	require.NoError(t, err)
	require.True(t, created)
	return dir
}

func open(t *testing.T, dir string) *store.Store {
	t.Helper()
	s, err := store.Open(dir)
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	return s
}

func randomBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, seed))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func catAll(t *testing.T, s *store.Store, root cid.Cid) []byte {
	t.Helper()
	r, err := s.Cat(t.Context(), root)
	require.NoError(t, err)
	defer r.Close()
	b, err := io.ReadAll(r)
	require.NoError(t, err)
	return b
}

func TestInitIsIdempotentAndKeepsIdentity(t *testing.T) {
	dir := newRepo(t)
	k1, err := store.ReadIdentity(dir)
	require.NoError(t, err)
	created, err := store.Init(dir)
	require.NoError(t, err)
	require.False(t, created)
	k2, err := store.ReadIdentity(dir)
	require.NoError(t, err)
	require.Equal(t, k1, k2)
	st, err := os.Stat(filepath.Join(dir, "identity.key"))
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), st.Mode().Perm())
}

func TestOpenRefusesWhatItCannotRead(t *testing.T) {
	_, err := store.Open(t.TempDir())
	require.ErrorIs(t, err, store.ErrNotInitialized)

	dir := newRepo(t)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "version"), []byte("99\n"), 0o600))
	_, err = store.Open(dir)
	require.ErrorIs(t, err, store.ErrNewerVersion)
}

func TestSecondOpenIsRefusedUntilClose(t *testing.T) {
	dir := newRepo(t)
	s, err := store.Open(dir)
	require.NoError(t, err)
	_, err = store.Open(dir)
	require.ErrorIs(t, err, store.ErrLocked)
	require.Contains(t, err.Error(), "pid")
	require.NoError(t, s.Close())
	s2, err := store.Open(dir)
	require.NoError(t, err)
	require.NoError(t, s2.Close())
}

func TestAddThenCatIsByteIdentical(t *testing.T) {
	s := open(t, newRepo(t))
	const chunk = 1024
	sizes := []int{0, 1, chunk - 1, chunk, chunk + 1, 7*chunk + 3, 1500 * chunk}
	r := rand.New(rand.NewPCG(1, 2))
	for range 5 {
		sizes = append(sizes, r.IntN(40*chunk))
	}
	for i, n := range sizes {
		data := randomBytes(uint64(i), n)
		f, err := s.Add(t.Context(), bytes.NewReader(data), "f", store.AddOptions{ChunkSize: chunk})
		require.NoError(t, err)
		require.Equal(t, uint64(n), f.Size)
		require.Equal(t, store.Complete, f.State)
		require.Equal(t, data, catAll(t, s, f.Root), "size %d", n)

		res, err := store.Hash(t.Context(), bytes.NewReader(data), store.AddOptions{ChunkSize: chunk})
		require.NoError(t, err)
		require.Equal(t, f.Root, res.Root, "only-hash gives the same CID")
	}
}

func TestEmptyFileCID(t *testing.T) {
	s := open(t, newRepo(t))
	f, err := s.Add(t.Context(), bytes.NewReader(nil), "empty", store.AddOptions{})
	require.NoError(t, err)
	require.Equal(t, "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku", f.CID)
}

func TestCorruptBlockIsNamed(t *testing.T) {
	dir := newRepo(t)
	s := open(t, dir)
	data := randomBytes(3, 10_000)
	f, err := s.Add(t.Context(), bytes.NewReader(data), "f", store.AddOptions{ChunkSize: 1024})
	require.NoError(t, err)

	// Flip one byte in one stored leaf.
	var victim string
	require.NoError(t, filepath.WalkDir(filepath.Join(dir, "blocks"), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasPrefix(d.Name(), "bafkrei") && victim == "" {
			victim = p
		}
		return err
	}))
	require.NotEmpty(t, victim)
	b, err := os.ReadFile(victim)
	require.NoError(t, err)
	b[len(b)/2] ^= 0x40
	require.NoError(t, os.WriteFile(victim, b, 0o600))

	r, err := s.Cat(t.Context(), f.Root)
	require.NoError(t, err)
	_, err = io.ReadAll(r)
	r.Close()
	require.ErrorIs(t, err, store.ErrCorruptBlock)
	require.Contains(t, err.Error(), filepath.Base(victim))
}

func TestReplayEqualsLiveState(t *testing.T) {
	dir := newRepo(t)
	s := open(t, dir)
	var roots []cid.Cid
	for i := range 20 {
		f, err := s.Add(t.Context(), bytes.NewReader(randomBytes(uint64(i), 3000+i)), "f", store.AddOptions{ChunkSize: 1024})
		require.NoError(t, err)
		roots = append(roots, f.Root)
	}
	require.NoError(t, s.Remove(roots[3]))
	require.NoError(t, s.Record(
		store.Event{Type: store.Pinned, Root: roots[4].String()},
		store.Event{Type: store.AnnounceSeen, Root: roots[5].String(), Name: "x.iso", Size: 9, Peer: "p1"},
		store.Event{Type: store.AnnounceSeen, Root: roots[5].String(), Name: "x.iso", Size: 9, Peer: "p2"},
		store.Event{Type: store.AnnounceGone, Root: roots[5].String(), Peer: "p1"},
	))
	files, same, err := s.Replayed()
	require.NoError(t, err)
	require.True(t, same)
	require.Len(t, files, 19)
	require.Equal(t, s.Files(), files)

	offers := s.Search("x.iso", time.Hour)
	require.Len(t, offers, 1)
	require.Equal(t, []string{"p2"}, offers[0].Providers)
}

func TestReopenUsesSnapshotAndIgnoresABadOne(t *testing.T) {
	dir := newRepo(t)
	s, err := store.Open(dir)
	require.NoError(t, err)
	for i := range 100 {
		_, err := s.Add(t.Context(), bytes.NewReader(randomBytes(uint64(i), 100)), "f", store.AddOptions{})
		require.NoError(t, err)
	}
	want := s.Files()
	require.NoError(t, s.Close())
	require.FileExists(t, filepath.Join(dir, "snapshot.json"))

	s = open(t, dir)
	require.Equal(t, want, s.Files())
	require.NoError(t, s.Close())

	// A snapshot that is garbage, or that claims more than the log holds, is only a cache.
	for _, junk := range []string{"{not json", `{"version":1,"offset":99999999,"index":{"seq":5}}`} {
		require.NoError(t, os.WriteFile(filepath.Join(dir, "snapshot.json"), []byte(junk), 0o600))
		s2, err := store.Open(dir)
		require.NoError(t, err)
		require.Equal(t, want, s2.Files())
		require.NoError(t, s2.Close())
	}
}

func TestTornLogTailIsCutAndReported(t *testing.T) {
	dir := newRepo(t)
	s, err := store.Open(dir)
	require.NoError(t, err)
	var roots []cid.Cid
	for i := range 3 {
		f, err := s.Add(t.Context(), bytes.NewReader(randomBytes(uint64(i), 50)), "f", store.AddOptions{})
		require.NoError(t, err)
		roots = append(roots, f.Root)
	}
	require.NoError(t, s.Close())
	os.Remove(filepath.Join(dir, "snapshot.json"))

	// Flip a byte inside the last record: a corrupt tail.
	path := filepath.Join(dir, "events.log")
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	b[len(b)-5] ^= 0xff
	require.NoError(t, os.WriteFile(path, b, 0o600))

	s = open(t, dir)
	require.True(t, s.Recovery().Cut())
	files := s.Files()
	require.Len(t, files, 2)
	require.Equal(t, roots[0], files[0].Root)
	// The log takes appends again, and the re-add completes.
	f, err := s.Add(t.Context(), bytes.NewReader(randomBytes(2, 50)), "f", store.AddOptions{})
	require.NoError(t, err)
	require.Equal(t, roots[2], f.Root)
	require.Len(t, s.Files(), 3)
}

func TestMidLogCorruptionIsAnErrorThatChangesNothing(t *testing.T) {
	dir := newRepo(t)
	s, err := store.Open(dir)
	require.NoError(t, err)
	for i := range 3 {
		_, err := s.Add(t.Context(), bytes.NewReader(randomBytes(uint64(i), 50)), "f", store.AddOptions{})
		require.NoError(t, err)
	}
	require.NoError(t, s.Close())
	path := filepath.Join(dir, "events.log")
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	b[eventlog.HeaderSize+20] ^= 0xff
	require.NoError(t, os.WriteFile(path, b, 0o600))
	_, err = store.Open(dir)
	require.ErrorIs(t, err, eventlog.ErrCorrupt)
	after, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, b, after)
}

func TestFilesAtShowsThePast(t *testing.T) {
	s := open(t, newRepo(t))
	a, err := s.Add(t.Context(), bytes.NewReader([]byte("a")), "a", store.AddOptions{})
	require.NoError(t, err)
	var evs []store.Event
	require.NoError(t, s.Events(0, func(e store.Event) error { evs = append(evs, e); return nil }))
	require.Len(t, evs, 1)
	mid := evs[0].Time
	// Later events carry later times; wait on the clock rather than guess.
	require.Eventually(t, func() bool { return time.Now().After(mid.Add(time.Millisecond)) }, time.Second, time.Millisecond)
	_, err = s.Add(t.Context(), bytes.NewReader([]byte("b")), "b", store.AddOptions{})
	require.NoError(t, err)
	require.NoError(t, s.Remove(a.Root))

	past, err := s.FilesAt(mid)
	require.NoError(t, err)
	require.Len(t, past, 1)
	require.Equal(t, "a", past[0].Name)
	now := s.Files()
	require.Len(t, now, 1)
	require.Equal(t, "b", now[0].Name)
}

func TestGCReclaimsOnlyUnneededBlocks(t *testing.T) {
	s := open(t, newRepo(t))
	keep, err := s.Add(t.Context(), bytes.NewReader(randomBytes(1, 5000)), "keep", store.AddOptions{ChunkSize: 1024})
	require.NoError(t, err)
	drop, err := s.Add(t.Context(), bytes.NewReader(randomBytes(2, 5000)), "drop", store.AddOptions{ChunkSize: 1024})
	require.NoError(t, err)
	res, err := s.GC(t.Context())
	require.NoError(t, err)
	require.Zero(t, res.Removed)

	require.NoError(t, s.Remove(drop.Root))
	res, err = s.GC(t.Context())
	require.NoError(t, err)
	require.Equal(t, 6, res.Removed) // five leaves and the root
	require.Equal(t, randomBytes(1, 5000), catAll(t, s, keep.Root))
	_, err = s.Cat(t.Context(), drop.Root)
	require.ErrorIs(t, err, store.ErrUnknownFile)
}

func TestReferencedFileIsServedInPlaceAndChangesAreDetected(t *testing.T) {
	dir := newRepo(t)
	s := open(t, dir)
	data := randomBytes(9, 10_000)
	path := filepath.Join(t.TempDir(), "shared.bin")
	require.NoError(t, os.WriteFile(path, data, 0o644))
	in, err := os.Open(path)
	require.NoError(t, err)
	f, err := s.Add(t.Context(), in, "shared.bin", store.AddOptions{ChunkSize: 1024, Reference: true, Path: path})
	in.Close()
	require.NoError(t, err)
	require.Equal(t, path, f.Path)
	require.Equal(t, data, catAll(t, s, f.Root))

	// Only the root is owned: the repo holds no copy of the bytes.
	var owned int
	require.NoError(t, filepath.WalkDir(filepath.Join(dir, "blocks"), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			owned++
		}
		return err
	}))
	require.Equal(t, 1, owned)

	// The user edits the file: the changed leaf is refused and the file marked changed.
	data[5000] ^= 1
	require.NoError(t, os.WriteFile(path, data, 0o644))
	r, err := s.Cat(t.Context(), f.Root)
	require.NoError(t, err)
	_, err = io.ReadAll(r)
	r.Close()
	require.Error(t, err)
	got, ok := s.File(f.Root)
	require.True(t, ok)
	require.Equal(t, store.Changed, got.State)
}

// fetchFrom plays the transfer layer: it walks the DAG from a source store into a download, the
// way the scheduler does, stopping after limit deliveries.
func fetchFrom(t *testing.T, src *store.Store, d *store.Download, limit int) (delivered int) {
	t.Helper()
	ctx := context.Background()
	queue := []cid.Cid{d.Root()}
	for len(queue) > 0 {
		c := queue[0]
		queue = queue[1:]
		var block []byte
		if ok, _ := d.Has(ctx, c); ok {
			b, err := d.Get(ctx, c)
			require.NoError(t, err)
			block = b
		} else {
			if delivered == limit {
				return delivered
			}
			b, err := src.GetBlock(ctx, c)
			require.NoError(t, err)
			require.NoError(t, d.Deliver(c, b))
			delivered++
			block = b
		}
		kids, err := d.Expand(c, block)
		require.NoError(t, err)
		queue = append(queue, kids...)
	}
	return delivered
}

func TestDownloadWritesOnceAndResumes(t *testing.T) {
	src := open(t, newRepo(t))
	data := randomBytes(4, 20*1024+17)
	data = append(data, make([]byte, 3*1024)...) // repeated zero chunks: one CID at several offsets
	f, err := src.Add(t.Context(), bytes.NewReader(data), "movie.mkv", store.AddOptions{ChunkSize: 1024})
	require.NoError(t, err)

	dir := newRepo(t)
	dst := open(t, dir)
	out := filepath.Join(t.TempDir(), "movie.mkv")
	d, err := dst.StartDownload(f.Root, "movie.mkv", out)
	require.NoError(t, err)
	got := fetchFrom(t, src, d, 10)
	require.Equal(t, 10, got)
	live := dst.Files()
	require.Len(t, live, 1)
	require.Equal(t, uint64(len(data)), live[0].Size, "the size is known once the root is here")
	require.Equal(t, uint64(9*1024), live[0].Have, "how far a running download is: nine leaves")
	require.NoError(t, d.Fail(errors.New("interrupted")))
	fl, _ := dst.File(f.Root)
	require.Equal(t, store.Partial, fl.State)
	require.Equal(t, uint64(9*1024), fl.Have, "how far it got is recorded when it stops")
	require.NoFileExists(t, out)

	// Resume: only the missing blocks are fetched.
	d, err = dst.StartDownload(f.Root, "movie.mkv", out)
	require.NoError(t, err)
	rest := fetchFrom(t, src, d, -1)
	require.Less(t, rest, 24-10+1+2)
	require.NoError(t, d.Complete())
	b, err := os.ReadFile(out)
	require.NoError(t, err)
	require.Equal(t, data, b)
	fl, _ = dst.File(f.Root)
	require.Equal(t, store.Complete, fl.State)
	require.Equal(t, out, fl.Path)
	// The node serves it from the output file.
	require.Equal(t, data, catAll(t, dst, f.Root))
	_, same, err := dst.Replayed()
	require.NoError(t, err)
	require.True(t, same)
	_ = unixfs.DefaultChunkSize
}

func FuzzDecodeEvent(f *testing.F) {
	f.Add([]byte(`{"seq":1,"time":"2026-01-01T00:00:00Z","type":"FileAdded","root":"bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku","name":"x","size":0}`))
	f.Add([]byte(`{"type":"FileRemoved","root":"bafy"}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := store.DecodeEvent(b)
		if err != nil {
			return
		}
		if e.Type == "" {
			t.Fatal("decoded an event without a type")
		}
	})
}

// Events from a point reads from the nearest mark (the snapshot, or one Record left) and returns
// exactly the events from there on, before and after a reopen.
func TestEventsFromAMark(t *testing.T) {
	dir := newRepo(t)
	s, err := store.Open(dir)
	require.NoError(t, err)
	record := func(s *store.Store, n int) {
		for i := 0; i < n; i += 100 {
			evs := make([]store.Event, 100)
			for j := range evs {
				evs[j] = store.Event{Type: store.Pinned, Root: "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"}
			}
			require.NoError(t, s.Record(evs...))
		}
	}
	// check reads the events from from on: the first few must be from, from+1, ..., and the
	// reading can stop there (a full read of each would make the test slow).
	enough := errors.New("enough")
	check := func(s *store.Store, from, last uint64) {
		t.Helper()
		want := from
		err := s.Events(from, func(e store.Event) error {
			require.Equal(t, want, e.Seq)
			if want++; want == from+3 {
				return enough
			}
			return nil
		})
		if want < from+3 {
			require.NoError(t, err)
			require.Equal(t, last+1, want, "events from %d", from)
		} else {
			require.ErrorIs(t, err, enough)
		}
	}
	// Records come in batches of 100, and marks fall on a batch's first event: try every
	// batch's first event and the one before it.
	edges := func(last uint64) []uint64 {
		out := []uint64{1}
		for b := uint64(100); b < last; b += 100 {
			out = append(out, b, b+1)
		}
		return append(out, last, last+1)
	}
	record(s, 3000)
	for _, from := range edges(3000) {
		check(s, from, 3000)
	}
	require.NoError(t, s.Close())

	s = open(t, dir) // the snapshot written on Close is a mark now
	record(s, 2000)
	for _, from := range edges(5000) {
		check(s, from, 5000)
	}
}

// A snapshot whose marks point between events (damaged, yet plausible) costs Events its shortcut,
// not its answer.
func TestEventsWithADamagedMark(t *testing.T) {
	dir := newRepo(t)
	s, err := store.Open(dir)
	require.NoError(t, err)
	for range 30 {
		evs := make([]store.Event, 100)
		for j := range evs {
			evs[j] = store.Event{Type: store.Pinned, Root: "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"}
		}
		require.NoError(t, s.Record(evs...))
	}
	require.NoError(t, s.Close())

	path := filepath.Join(dir, "snapshot.json")
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	var sn map[string]any
	require.NoError(t, json.Unmarshal(b, &sn))
	marks := sn["marks"].([]any)
	require.Greater(t, len(marks), 1, "the snapshot keeps marks")
	m := marks[1].(map[string]any)
	m["off"] = m["off"].(float64) + 7
	b, err = json.Marshal(sn)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(path, b, 0o600))

	s = open(t, dir)
	from := uint64(m["seq"].(float64))
	want := from
	require.NoError(t, s.Events(from, func(e store.Event) error {
		require.Equal(t, want, e.Seq)
		want++
		return nil
	}))
	require.EqualValues(t, 3001, want)
}

// A follower that does not read while many more events are recorded than the live stream
// buffers gets every one of them, once and in order, and Follow ends with the store.
func TestFollowRefillsWhatASlowFollowerMissed(t *testing.T) {
	s := open(t, newRepo(t))
	empty := "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"
	require.NoError(t, s.Record(store.Event{Type: store.Unshared, Root: empty}))
	const burst = 5000
	first, resume := make(chan struct{}), make(chan struct{})
	var got []uint64
	done := make(chan error, 1)
	go func() {
		done <- s.Follow(t.Context(), 1, func(e store.Event) error {
			if len(got) == 0 {
				close(first)
				<-resume
			}
			got = append(got, e.Seq)
			if len(got) == burst+1 {
				return io.EOF
			}
			return nil
		})
	}()
	<-first
	evs := make([]store.Event, burst)
	for i := range evs {
		evs[i] = store.Event{Type: store.Unshared, Root: empty}
	}
	require.NoError(t, s.Record(evs...)) // one group: the live stream drops most of it
	close(resume)
	select {
	case err := <-done:
		require.ErrorIs(t, err, io.EOF)
	case <-time.After(30 * time.Second):
		t.Fatalf("Follow stalled after %d events", len(got))
	}
	require.Len(t, got, burst+1)
	for i, seq := range got {
		require.EqualValues(t, i+1, seq)
	}

	ended := make(chan error, 1)
	go func() { ended <- s.Follow(context.Background(), 0, func(store.Event) error { return nil }) }()
	require.NoError(t, s.Close())
	require.ErrorIs(t, <-ended, store.ErrStoreClosed)
}
