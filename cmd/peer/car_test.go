package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	carv2 "github.com/ipld/go-car/v2"
	"github.com/ipld/go-car/v2/storage"
	"github.com/ipld/go-ipld-prime/codec/dagcbor"
	"github.com/ipld/go-ipld-prime/datamodel"
	"github.com/ipld/go-ipld-prime/fluent/qp"
	cidlink "github.com/ipld/go-ipld-prime/linking/cid"
	"github.com/ipld/go-ipld-prime/node/basicnode"
	mh "github.com/multiformats/go-multihash"
	"github.com/stretchr/testify/require"

	"peer/store"
)

// peerCmdIn is peerCmd with stdin.
func peerCmdIn(t testing.TB, repo string, stdin []byte, args ...string) (string, string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, peerBin, append([]string{"--repo", repo}, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdin, cmd.Stdout, cmd.Stderr = bytes.NewReader(stdin), &out, &errb
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else {
		require.NoError(t, err)
	}
	return out.String(), errb.String(), code
}

// cborCAR is a CAR of a dag-cbor root that links to a raw block, written with go-car.
func cborCAR(t *testing.T) (cid.Cid, []byte) {
	t.Helper()
	leaf := []byte("a leaf under a dag-cbor root")
	leafCID, err := cid.Prefix{Version: 1, Codec: cid.Raw, MhType: mh.SHA2_256, MhLength: -1}.Sum(leaf)
	require.NoError(t, err)
	n, err := qp.BuildMap(basicnode.Prototype.Any, 2, func(ma datamodel.MapAssembler) {
		qp.MapEntry(ma, "title", qp.String("not a file"))
		qp.MapEntry(ma, "leaf", qp.Link(cidlink.Link{Cid: leafCID}))
	})
	require.NoError(t, err)
	var enc bytes.Buffer
	require.NoError(t, dagcbor.Encode(n, &enc))
	root, err := cid.Prefix{Version: 1, Codec: cid.DagCBOR, MhType: mh.SHA2_256, MhLength: -1}.Sum(enc.Bytes())
	require.NoError(t, err)
	var car bytes.Buffer
	w, err := storage.NewWritable(&car, []cid.Cid{root}, carv2.WriteAsCarV1(true))
	require.NoError(t, err)
	require.NoError(t, w.Put(t.Context(), root.KeyString(), enc.Bytes()))
	require.NoError(t, w.Put(t.Context(), leafCID.KeyString(), leaf))
	return root, car.Bytes()
}

// requireCARRoot reads a CAR with go-car (verifying every block) and checks its one root.
func requireCARRoot(t *testing.T, car []byte, root string) int {
	t.Helper()
	br, err := carv2.NewBlockReader(bytes.NewReader(car))
	require.NoError(t, err)
	require.Len(t, br.Roots, 1)
	require.Equal(t, root, br.Roots[0].String())
	n := 0
	for {
		_, err := br.Next()
		if errors.Is(err, io.EOF) {
			return n
		}
		require.NoError(t, err)
		n++
	}
}

// exportImport runs export and import between repos a and b, offline or through their daemons
// (the commands are the same; the caller starts the daemons).
func exportImport(t *testing.T, a, b string, daemons bool) {
	dir := t.TempDir()
	src := filepath.Join(dir, "clip.bin")
	data := writeRandom(t, src, 3<<20+4321, 41)
	out, errOut, code := peerCmd(t, a, "add", "-q", src)
	require.Zero(t, code, errOut)
	root := strings.TrimSpace(out)

	carPath := filepath.Join(dir, "clip.car")
	_, errOut, code = peerCmd(t, a, "export", root, "-o", carPath)
	require.Zero(t, code, errOut)
	car, err := os.ReadFile(carPath)
	require.NoError(t, err)
	require.Equal(t, 5, requireCARRoot(t, car, root), "four leaves and the root")
	stdout, errOut, code := peerCmd(t, a, "export", "/ipfs/"+root)
	require.Zero(t, code, errOut)
	require.Equal(t, car, []byte(stdout), "to stdout, the same CAR")

	_, errOut, code = peerCmd(t, a, "export", root, "-o", carPath)
	require.NotZero(t, code)
	require.Contains(t, errOut, "clip.car exists")
	_, errOut, code = peerCmd(t, a, "export", root+"/sub/file")
	require.NotZero(t, code)
	require.Contains(t, errOut, "exporting a path inside a DAG is not supported yet")
	requireCleanError(t, errOut, "export", "path")
	_, errOut, code = peerCmd(t, a, "export", "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku", "-o", filepath.Join(dir, "none.car"))
	require.NotZero(t, code)
	require.Contains(t, errOut, "is not in this repo")
	requireCleanError(t, errOut, "export", "unknown")
	_, err = os.Stat(filepath.Join(dir, "none.car"))
	require.ErrorIs(t, err, os.ErrNotExist, "a failed export leaves no file")
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Len(t, entries, 2, "no temporary file left beside the CAR")

	out, errOut, code = peerCmd(t, b, "import", carPath)
	require.Zero(t, code, errOut)
	require.Contains(t, out, "imported 5 blocks")
	require.Contains(t, out, "added "+root+" (3 MiB)")
	got, errOut, code := peerCmd(t, b, "cat", root)
	require.Zero(t, code, errOut)
	require.Equal(t, data, []byte(got), "cat identical")
	out, errOut, code = peerCmd(t, b, "ls")
	require.Zero(t, code, errOut)
	require.Contains(t, out, root)

	out, errOut, code = peerCmdIn(t, b, car, "import", "--json", "-")
	require.Zero(t, code, errOut)
	var res store.ImportResult
	require.NoError(t, json.Unmarshal([]byte(out), &res))
	require.Equal(t, []store.ImportedRoot{{CID: root, State: store.RootHeld, Size: uint64(len(data))}}, res.Roots)
	require.Zero(t, res.New)

	// A dag-cbor DAG: held, listed, exported whole; cat says it is not a file.
	cbor, cborBytes := cborCAR(t)
	out, errOut, code = peerCmdIn(t, b, cborBytes, "import", "-")
	require.Zero(t, code, errOut)
	require.Contains(t, out, "added "+cbor.String())
	out, errOut, code = peerCmd(t, b, "ls")
	require.Zero(t, code, errOut)
	require.Contains(t, out, cbor.String())
	_, errOut, code = peerCmd(t, b, "cat", cbor.String())
	require.NotZero(t, code)
	require.Contains(t, errOut, "is a dag-cbor (0x71) block, not a file")
	requireCleanError(t, errOut, "cat", "dag-cbor")
	stdout, errOut, code = peerCmd(t, b, "export", cbor.String())
	require.Zero(t, code, errOut)
	require.Equal(t, cborBytes, []byte(stdout), "go-car and we write the same CAR of the same DAG")

	// Bad input: one clear line, nothing held.
	trunc := filepath.Join(dir, "trunc.car")
	require.NoError(t, os.WriteFile(trunc, car[:len(car)-500], 0o644))
	_, errOut, code = peerCmd(t, b, "import", trunc)
	require.NotZero(t, code)
	require.Contains(t, errOut, "importing "+trunc+": not a valid CAR file: section 5 at byte")
	require.Contains(t, errOut, "(truncated)")
	requireCleanError(t, errOut, "import", "truncated")
	_, errOut, code = peerCmd(t, b, "import", filepath.Join(dir, "nothing.car"))
	require.NotZero(t, code)
	require.Contains(t, errOut, "nothing.car: no such file")
	_, errOut, code = peerCmd(t, b, "import", dir)
	require.NotZero(t, code)
	require.Contains(t, errOut, dir+" is a directory: give a CAR file")

	// A root whose DAG is not all there is reported, and the command fails.
	_, _, code = peerCmd(t, b, "rm", root)
	require.Zero(t, code)
	_, _, code = peerCmd(t, b, "gc")
	require.Zero(t, code)
	br, err := carv2.NewBlockReader(bytes.NewReader(car))
	require.NoError(t, err)
	var partial bytes.Buffer
	w, err := storage.NewWritable(&partial, br.Roots, carv2.WriteAsCarV1(true))
	require.NoError(t, err)
	for i := 0; i < 3; i++ { // the root and two leaves
		blk, err := br.Next()
		require.NoError(t, err)
		require.NoError(t, w.Put(t.Context(), blk.Cid().KeyString(), blk.RawData()))
	}
	out, errOut, code = peerCmdIn(t, b, partial.Bytes(), "import", "-")
	require.NotZero(t, code)
	require.Contains(t, out, "incomplete "+root+": block ")
	require.Contains(t, errOut, "1 of 1 roots of standard input are incomplete")
	out, _, _ = peerCmd(t, b, "ls")
	require.NotContains(t, out, root)

	// A leaf that rots on disk passes export's check (which only sees that it is there) and
	// fails when it is read: the command fails, one line, and leaves no CAR behind.
	br, err = carv2.NewBlockReader(bytes.NewReader(car))
	require.NoError(t, err)
	var leaf blocks.Block
	for range 4 { // the root, then leaves: the third leaf fails after a MiB of the CAR went out
		leaf, err = br.Next()
		require.NoError(t, err)
	}
	k := leaf.Cid().String()
	leafPath := filepath.Join(a, "blocks", k[len(k)-3:len(k)-1], k)
	rotten := bytes.Clone(leaf.RawData())
	rotten[0] ^= 0xff
	require.NoError(t, os.WriteFile(leafPath, rotten, 0o600))
	rotCAR := filepath.Join(dir, "rot.car")
	_, errOut, code = peerCmd(t, a, "export", root, "-o", rotCAR)
	require.NotZero(t, code)
	requireCleanError(t, errOut, "export", "rotten")
	if daemons { // the CAR was under way: the stream breaks
		require.Contains(t, errOut, "the daemon broke off the CAR of "+root)
	} else {
		require.Contains(t, errOut, "stored block is corrupt: "+leaf.Cid().String())
	}
	_, err = os.Stat(rotCAR)
	require.ErrorIs(t, err, os.ErrNotExist, "no short CAR is left")
	entries, err = os.ReadDir(dir)
	require.NoError(t, err)
	for _, e := range entries {
		require.NotContains(t, e.Name(), ".tmp-", "no temporary file is left")
	}
}

func TestCLIExportImportOffline(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	initRepo(t, a)
	initRepo(t, b)
	exportImport(t, a, b, false)
}

func TestCLIExportImportThroughTheDaemon(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	initRepo(t, a)
	initRepo(t, b)
	startDaemonProcess(t, a)
	startDaemonProcess(t, b)
	exportImport(t, a, b, true)
}
