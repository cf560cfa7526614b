package main

import (
	"bytes"
	"encoding/json"
	"os/exec"
	"regexp"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestVersionOf: the module version, revision, uncommitted-changes flag and commit time come
// from the build information; Go version and platform from the runtime.
func TestVersionOf(t *testing.T) {
	info := &debug.BuildInfo{Main: debug.Module{Path: "peer", Version: "v1.2.3"}, Settings: []debug.BuildSetting{
		{Key: "vcs", Value: "git"},
		{Key: "vcs.revision", Value: "0123456789abcdef0123456789abcdef01234567"},
		{Key: "vcs.time", Value: "2026-11-30T10:20:30Z"},
		{Key: "vcs.modified", Value: "true"},
	}}
	v := versionOf(info, true)
	require.Equal(t, "v1.2.3", v.Version)
	require.Equal(t, "0123456789abcdef0123456789abcdef01234567", v.Revision)
	require.True(t, v.Modified)
	require.Equal(t, time.Date(2026, 11, 30, 10, 20, 30, 0, time.UTC), *v.CommitTime)
	require.Equal(t, runtime.Version(), v.Go)
	require.Equal(t, runtime.GOOS+"/"+runtime.GOARCH, v.OS+"/"+v.Arch)
	var b bytes.Buffer
	v.write(&b)
	require.Equal(t, "peer v1.2.3\n"+
		"revision  0123456789abcdef0123456789abcdef01234567 (with uncommitted changes)\n"+
		"committed 2026-11-30T10:20:30Z\n"+
		"go        "+runtime.Version()+"\n"+
		"platform  "+runtime.GOOS+"/"+runtime.GOARCH+"\n", b.String())

	none := versionOf(nil, false)
	require.Equal(t, "(unknown)", none.Version)
	require.Empty(t, none.Revision)
	b.Reset()
	none.write(&b)
	require.Contains(t, b.String(), "revision  unknown")
}

// TestVersionCommand: `peer version` and `peer --version` print the same, and `--json` agrees
// with the build information `go version -m` reads from the same binary.
func TestVersionCommand(t *testing.T) {
	repo := t.TempDir()
	out, errOut, code := peerCmd(t, repo, "version")
	require.Zero(t, code, errOut)
	flag, errOut, code := peerCmd(t, repo, "--version")
	require.Zero(t, code, errOut)
	require.Equal(t, out, flag)
	require.Contains(t, out, "platform  "+runtime.GOOS+"/"+runtime.GOARCH+"\n")

	js, errOut, code := peerCmd(t, repo, "version", "--json")
	require.Zero(t, code, errOut)
	var v buildVersion
	require.NoError(t, json.Unmarshal([]byte(js), &v), js)
	require.Equal(t, runtime.GOOS, v.OS)
	require.Equal(t, runtime.GOARCH, v.Arch)
	require.True(t, strings.HasPrefix(v.Go, "go"), v.Go)
	require.True(t, strings.HasPrefix(out, "peer "+v.Version+"\n"), out)

	m, err := exec.Command("go", "version", "-m", peerBin).Output()
	require.NoError(t, err)
	mod := regexp.MustCompile(`(?m)^\tmod\tpeer\t(\S+)`).FindSubmatch(m)
	require.NotNil(t, mod, "%s", m)
	require.Equal(t, string(mod[1]), v.Version)
	rev := regexp.MustCompile(`(?m)^\tbuild\tvcs\.revision=(\S+)`).FindSubmatch(m)
	if rev == nil {
		require.Empty(t, v.Revision, "no revision recorded (a git worktree, or -buildvcs=false)")
	} else {
		require.Equal(t, string(rev[1]), v.Revision)
		require.Equal(t, bytes.Contains(m, []byte("vcs.modified=true")), v.Modified)
	}
}
