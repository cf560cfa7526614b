package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/stretchr/testify/require"

	"peer/store"
)

// peerBin is the command built once for the process tests.
var peerBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "peer-bin-")
	if err != nil {
		panic(err)
	}
	peerBin = filepath.Join(dir, "peer")
	build := exec.Command("go", "build", "-o", peerBin, ".")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		panic("building peer: " + err.Error())
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// peerCmd runs the built binary on repo and returns stdout, stderr and the exit code.
func peerCmd(t testing.TB, repo string, args ...string) (string, string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, peerBin, append([]string{"--repo", repo}, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else {
		require.NoError(t, err)
	}
	return out.String(), errb.String(), code
}

func writeRandom(t testing.TB, path string, n int, seed uint64) []byte {
	t.Helper()
	r := rand.NewChaCha8([32]byte{byte(seed)})
	b := make([]byte, n)
	_, _ = r.Read(b)
	require.NoError(t, os.WriteFile(path, b, 0o644))
	return b
}

func TestCLIAddCatLsRmGC(t *testing.T) {
	repo := filepath.Join(t.TempDir(), "repo")
	id1, _, code := peerCmd(t, repo, "init")
	require.Zero(t, code)
	id2, _, code := peerCmd(t, repo, "init")
	require.Zero(t, code)
	require.Equal(t, id1, id2, "init twice prints the same peer ID")
	require.True(t, strings.HasPrefix(id1, "12D3KooW"))

	src := filepath.Join(t.TempDir(), "data.bin")
	data := writeRandom(t, src, 3<<20+5, 1)
	out, _, code := peerCmd(t, repo, "add", src)
	require.Zero(t, code)
	fields := strings.Fields(out)
	require.Equal(t, []string{"added", fields[1], "data.bin"}, fields)
	root := fields[1]

	q, _, code := peerCmd(t, repo, "add", "--quiet", "--only-hash", src)
	require.Zero(t, code)
	require.Equal(t, root+"\n", q)

	catOut, _, code := peerCmd(t, repo, "cat", root)
	require.Zero(t, code)
	require.Equal(t, sha256.Sum256(data), sha256.Sum256([]byte(catOut)))

	ls, _, code := peerCmd(t, repo, "ls", "--json")
	require.Zero(t, code)
	require.Contains(t, ls, root)
	require.Contains(t, ls, `"complete"`)

	_, _, code = peerCmd(t, repo, "rm", root)
	require.Zero(t, code)
	gc, _, code := peerCmd(t, repo, "gc")
	require.Zero(t, code)
	require.Contains(t, gc, "removed 5 blocks")

	ev, _, code := peerCmd(t, repo, "events", "--json")
	require.Zero(t, code)
	require.Equal(t, 2, strings.Count(ev, "\n"))
	require.Contains(t, ev, `"FileRemoved"`)

	past, _, code := peerCmd(t, repo, "ls", "--at", time.Now().Add(-time.Hour).Format(time.RFC3339))
	require.Zero(t, code)
	require.NotContains(t, past, root)
}

func TestCLIErrorsAreOneClearLine(t *testing.T) {
	repo := filepath.Join(t.TempDir(), "repo")
	_, _, code := peerCmd(t, repo, "init")
	require.Zero(t, code)
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"add", "/nonexistent/file"}, "no such file"},
		{[]string{"add", "/dev/null"}, "not a regular file or a folder"},
		{[]string{"cat", "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku/a/../b"}, `".." is not allowed`},
		{[]string{"rm", "/ipfs/bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku/a"}, "not a path"},
		{[]string{"cat", "not-a-cid"}, "not a valid CID"},
		{[]string{"cat", "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"}, "no such file in this repo"},
		{[]string{"rm", "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"}, "no such file in this repo"},
		{[]string{"add", "--chunk-size", "10", "/etc/hostname"}, "--chunk-size"},
		{[]string{"ls", "--at", "yesterday-ish"}, "not a time"},
	}
	for _, tc := range cases {
		_, stderr, code := peerCmd(t, repo, tc.args...)
		require.NotZero(t, code, "%v", tc.args)
		require.Contains(t, stderr, tc.want, "%v", tc.args)
		require.Equal(t, 1, strings.Count(strings.TrimSpace(stderr), "\n")+1, "one line: %q", stderr)
	}

	_, stderr, code := peerCmd(t, filepath.Join(t.TempDir(), "none"), "ls")
	require.NotZero(t, code)
	require.Contains(t, stderr, " init`", "the hint repeats --repo")

	require.NoError(t, os.WriteFile(filepath.Join(repo, "version"), []byte("7\n"), 0o600))
	_, stderr, code = peerCmd(t, repo, "ls")
	require.NotZero(t, code)
	require.Contains(t, stderr, "newer")
}

func TestCLISecondProcessGetsLockError(t *testing.T) {
	repo := filepath.Join(t.TempDir(), "repo")
	_, _, code := peerCmd(t, repo, "init")
	require.Zero(t, code)
	s, err := store.Open(repo) // this process holds the repo, as a long add or a daemon would
	require.NoError(t, err)
	_, stderr, code := peerCmd(t, repo, "ls")
	require.NotZero(t, code)
	require.Contains(t, stderr, "in use")
	require.Contains(t, stderr, "pid")
	require.NoError(t, s.Close())
	_, _, code = peerCmd(t, repo, "ls")
	require.Zero(t, code)
}

// TestCrashDuringAdd kills `peer add` at random moments and checks the repo each time: it opens,
// no file is listed complete without its blocks, and the same add then completes.
func TestCrashDuringAdd(t *testing.T) {
	repo := filepath.Join(t.TempDir(), "repo")
	_, _, code := peerCmd(t, repo, "init")
	require.Zero(t, code)
	dir := t.TempDir()
	var files []string
	for i := range 3 {
		p := filepath.Join(dir, "f"+string(rune('a'+i)))
		writeRandom(t, p, 32<<20+i*4099, uint64(i+10))
		files = append(files, p)
	}
	r := rand.New(rand.NewPCG(7, 7))
	const trials = 20
	killed := 0
	for trial := range trials {
		cmd := exec.Command(peerBin, append([]string{"--repo", repo, "add", "--chunk-size", "65536"}, files...)...)
		require.NoError(t, cmd.Start())
		delay := time.Duration(r.IntN(100)) * time.Millisecond
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-time.After(delay):
			_ = cmd.Process.Kill()
			if err := <-done; err != nil {
				killed++
			}
		case <-done: // finished before the kill
		}

		s, err := store.Open(repo)
		require.NoError(t, err, "trial %d", trial)
		for _, f := range s.Files() {
			if f.State != store.Complete {
				continue
			}
			rc, err := s.Cat(t.Context(), f.Root)
			require.NoError(t, err, "trial %d: %s listed complete", trial, f.CID)
			n, err := io.Copy(io.Discard, rc)
			rc.Close()
			require.NoError(t, err, "trial %d: %s listed complete but unreadable", trial, f.CID)
			require.Equal(t, int64(f.Size), n)
		}
		_, same, err := s.Replayed()
		require.NoError(t, err)
		require.True(t, same, "trial %d: replay differs from live state", trial)
		require.NoError(t, s.Close())
	}
	t.Logf("%d of %d adds were killed mid-way", killed, trials)
	require.GreaterOrEqual(t, killed, trials/2, "the kills must land while add runs")
	out, stderr, code := peerCmd(t, repo, "add", "--quiet", "--chunk-size", "65536", files[0], files[1], files[2])
	require.Zero(t, code, stderr)
	for i, c := range strings.Fields(out) {
		got, _, code := peerCmd(t, repo, "cat", c)
		require.Zero(t, code)
		want, err := os.ReadFile(files[i])
		require.NoError(t, err)
		require.True(t, bytes.Equal(want, []byte(got)))
	}
}

// An init interrupted after the repo was made but before config.json was written is completed
// by the next init.
func TestInitWritesAMissingConfig(t *testing.T) {
	repo := filepath.Join(t.TempDir(), "repo")
	var out, errb bytes.Buffer
	require.Zero(t, run(t.Context(), []string{"--repo", repo, "init"}, nil, &out, &errb), errb.String())
	cfgPath := filepath.Join(repo, "config.json")
	require.FileExists(t, cfgPath)
	require.NoError(t, os.Remove(cfgPath))
	out.Reset()
	require.Zero(t, run(t.Context(), []string{"--repo", repo, "init"}, nil, &out, &errb), errb.String())
	require.FileExists(t, cfgPath)
}

// TestCLIPartialFetchIsListedWithItsPathAndRmDeletesIt makes a partial fetch in one repo, then
// checks that `peer ls` shows where its bytes are and `peer rm` deletes them.
func TestCLIPartialFetchIsListedWithItsPathAndRmDeletesIt(t *testing.T) {
	srcRepo, repo := filepath.Join(t.TempDir(), "src"), filepath.Join(t.TempDir(), "repo")
	initRepo(t, srcRepo)
	initRepo(t, repo)
	file := filepath.Join(t.TempDir(), "data.bin")
	writeRandom(t, file, 3<<20, 4)
	out, errOut, code := peerCmd(t, srcRepo, "add", "--quiet", file)
	require.Zero(t, code, errOut)
	root, err := cid.Decode(strings.TrimSpace(out))
	require.NoError(t, err)

	// One leaf of three arrives, then the fetch stops.
	target := filepath.Join(t.TempDir(), "data.bin")
	src, err := store.Open(srcRepo)
	require.NoError(t, err)
	dst, err := store.Open(repo)
	require.NoError(t, err)
	d, err := dst.StartDownload(root, "data.bin", target)
	require.NoError(t, err)
	b, err := src.GetBlock(t.Context(), root)
	require.NoError(t, err)
	kids, err := d.Expand(root, b)
	require.NoError(t, err)
	require.NoError(t, d.Deliver(root, b))
	leaf, err := src.GetBlock(t.Context(), kids[0])
	require.NoError(t, err)
	require.NoError(t, d.Deliver(kids[0], leaf))
	require.NoError(t, d.Fail(errors.New("interrupted")))
	require.NoError(t, src.Close())
	require.NoError(t, dst.Close())

	out, errOut, code = peerCmd(t, repo, "ls")
	require.Zero(t, code, errOut)
	require.Regexp(t, root.String()+`\s+3 MiB\s+partial 33%\s+data.bin\s+`+regexp.QuoteMeta(store.PartPath(target, root))+`\n`, out)
	_, err = os.Stat(store.PartPath(target, root))
	require.NoError(t, err)

	_, errOut, code = peerCmd(t, repo, "rm", root.String())
	require.Zero(t, code, errOut)
	_, err = os.Stat(store.PartPath(target, root))
	require.ErrorIs(t, err, os.ErrNotExist, "rm deletes the partial file")
	out, errOut, code = peerCmd(t, repo, "ls")
	require.Zero(t, code, errOut)
	require.NotContains(t, out, root.String())
}
