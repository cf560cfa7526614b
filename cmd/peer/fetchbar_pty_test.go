//go:build unix

package main

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/creack/pty"
	"github.com/ipfs/go-cid"
	"github.com/stretchr/testify/require"

	"peer/node/api"
	"peer/store"
)

// screen is as much of a terminal as the fetch command needs: it prints text, moves to the start
// of the line on \r and to the next on \n, and erases to the end of the line on ESC [ K. Every
// erase ends a redraw of the progress line, so each one is recorded as a frame.
type screen struct {
	mu      sync.Mutex
	lines   [][]rune
	row     int
	col     int
	pending []byte // an incomplete rune or escape sequence
	frames  []string
}

func (s *screen) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pending = append(s.pending, p...)
	for len(s.pending) > 0 {
		b := s.pending
		if b[0] == 0x1b {
			if len(b) < 2 {
				break
			}
			if b[1] != '[' {
				s.pending = b[2:]
				continue
			}
			end := 2
			for end < len(b) && (b[end] < 0x40 || b[end] > 0x7e) {
				end++
			}
			if end == len(b) {
				break // the sequence goes on in the next write
			}
			if b[end] == 'K' {
				s.line()
				s.lines[s.row] = s.lines[s.row][:min(s.col, len(s.lines[s.row]))]
				s.frames = append(s.frames, string(s.lines[s.row]))
			}
			s.pending = b[end+1:]
			continue
		}
		if !utf8.FullRune(b) {
			break
		}
		r, n := utf8.DecodeRune(b)
		s.pending = b[n:]
		switch r {
		case '\r':
			s.col = 0
		case '\n':
			s.row++
			s.col = 0
		default:
			s.line()
			if s.col < len(s.lines[s.row]) {
				s.lines[s.row][s.col] = r
			} else {
				s.lines[s.row] = append(s.lines[s.row], r)
			}
			s.col++
		}
	}
	return len(p), nil
}

func (s *screen) line() {
	for len(s.lines) <= s.row {
		s.lines = append(s.lines, nil)
	}
}

// text is what the screen shows, one string per line.
func (s *screen) text() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, l := range s.lines {
		out = append(out, string(l))
	}
	return out
}

func (s *screen) drawn() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.frames...)
}

// runOnTerminal runs the built binary with a pseudo-terminal as its stdin, stdout and stderr and
// copies what it prints to a screen; wait returns its exit code once it has ended and everything
// it printed is on the screen.
func runOnTerminal(t *testing.T, args ...string) (*screen, func() int) {
	t.Helper()
	cmd := exec.Command(peerBin, args...)
	tty, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 24, Cols: 100})
	require.NoError(t, err)
	scr := &screen{}
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		buf := make([]byte, 4096)
		for {
			n, err := tty.Read(buf)
			_, _ = scr.Write(buf[:n])
			if err != nil {
				return // EIO once the process has ended and its output was read
			}
		}
	}()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
		tty.Close()
	})
	return scr, func() int {
		err := cmd.Wait()
		select {
		case <-copied:
		case <-time.After(10 * time.Second):
			t.Fatal("the terminal's output did not end")
		}
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode()
		}
		require.NoError(t, err)
		return 0
	}
}

// TestFetchProgressOnATerminal drives `peer fetch` under a pseudo-terminal, from a seeder capped
// at 4 MB/s, with a third peer connected that has nothing to give. The progress line shows the
// file's size from its first reading, moves through the fetch, counts the one peer that sends
// data, and is still on screen, complete, above the summary when the command exits.
func TestFetchProgressOnATerminal(t *testing.T) {
	dir := t.TempDir()
	seed, leech, idle := filepath.Join(dir, "seed"), filepath.Join(dir, "leech"), filepath.Join(dir, "idle")
	for _, r := range []string{seed, leech, idle} {
		initRepo(t, r)
	}
	_, errOut, code := peerCmd(t, seed, "config", "set", "upload_limit", "4000000")
	require.Zero(t, code, errOut)
	startDaemonProcess(t, seed, "--network", "bar")
	startDaemonProcess(t, leech, "--network", "bar", "--bootstrap", daemonAddr(t, seed))
	startDaemonProcess(t, idle, "--network", "bar", "--bootstrap", daemonAddr(t, leech))

	src := filepath.Join(t.TempDir(), "movie.mkv")
	const size = 12 << 20
	writeRandom(t, src, size, 11)
	out, errOut, code := peerCmd(t, seed, "share", src)
	require.Zero(t, code, errOut)
	root := strings.TrimSpace(out)
	require.Eventually(t, func() bool {
		out, _, code := peerCmd(t, leech, "search", root, "--json")
		return code == 0 && strings.Contains(out, root)
	}, 20*time.Second, 50*time.Millisecond, "the announcement reaches the fetcher")
	require.Eventually(t, func() bool {
		out, _, code := peerCmd(t, leech, "peers", "--json")
		var ps []api.Peer
		return code == 0 && json.Unmarshal([]byte(out), &ps) == nil && len(ps) == 2
	}, 20*time.Second, 50*time.Millisecond, "the fetcher is connected to the seeder and the idle peer")

	target := filepath.Join(t.TempDir(), "movie.mkv")
	scr, wait := runOnTerminal(t, "--repo", leech, "fetch", root, "-o", target)

	// Read the screen while the fetch runs: the line shows a part of the file, of its whole size.
	barRE := regexp.MustCompile(`^\s*(\d+)% \[[#-]{16}\] (.+?) / (.+?)  (.+?/s)  (\d+) peers?(  .*)?$`)
	var during []string
	require.Eventually(t, func() bool {
		lines := scr.text()
		if len(lines) == 0 {
			return false
		}
		cur := lines[len(lines)-1]
		if m := barRE.FindStringSubmatch(cur); m != nil && m[1] != "0" && m[1] != "100" {
			if len(during) == 0 || during[len(during)-1] != cur {
				during = append(during, cur)
			}
		}
		return len(during) >= 3
	}, 60*time.Second, 20*time.Millisecond, "the progress line is on screen during the fetch; screen:\n%s", strings.Join(scr.text(), "\n"))
	for _, l := range during {
		m := barRE.FindStringSubmatch(l)
		require.Equal(t, "12 MiB", m[3], "the total is the file's size: %q", l)
		require.Contains(t, m[6], "left", "time left: %q", l)
		require.Contains(t, m[4], "MB/s", "rate in MB/s: %q", l)
	}

	require.Zero(t, wait(), "screen:\n%s", strings.Join(scr.text(), "\n"))
	frames := scr.drawn()
	sized := 0
	for _, f := range frames {
		m := barRE.FindStringSubmatch(f)
		if m == nil {
			require.Contains(t, f, "waiting for the first block", "every frame is the progress line: %q", f)
			continue
		}
		sized++
		require.Equal(t, "12 MiB", m[3], "the total is the file's size from the first reading: %q", f)
		require.Contains(t, []string{"0", "1"}, m[5], "only the seeder sent data: %q", f)
	}
	require.GreaterOrEqual(t, sized, 4, "frames: %q", frames)

	// At the end the line is still there, complete, and the summary follows it.
	lines := scr.text()
	for len(lines) > 0 && strings.TrimSpace(lines[len(lines)-1]) == "" {
		lines = lines[:len(lines)-1]
	}
	require.GreaterOrEqual(t, len(lines), 2, "screen: %q", lines)
	last, summary := lines[len(lines)-2], lines[len(lines)-1]
	m := barRE.FindStringSubmatch(last)
	require.NotNil(t, m, "the progress line stays on screen: %q", lines)
	require.Equal(t, "100", m[1], last)
	require.Equal(t, "12 MiB / 12 MiB", m[2]+" / "+m[3], last)
	require.Equal(t, "1", m[5], "one peer sent data: %q", last)
	require.Contains(t, last, "  in ", last)
	require.Regexp(t, `^fetched `+root+` `+regexp.QuoteMeta(target)+` \((12|13) MiB from 1 peer in [^,]+, [\d.]+ MB/s\)$`, summary)
	_, err := os.Stat(store.PartPath(target, cid.MustParse(root)))
	require.ErrorIs(t, err, os.ErrNotExist)
}
