package eventlog_test

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"peer/store/eventlog"
)

const crashEnv = "EVENTLOG_CRASH_CHILD"

const (
	crashWriters    = 4
	crashPerWriter  = 500 // each child stops by itself after crashWriters*crashPerWriter records
	crashTrials     = 10
	crashMaxKillAck = 300
	crashPiece      = 16 // bytes per write call in the child
)

// crashRecord is the payload the child writes as record i of writer w: its name and some padding,
// so records vary in size.
func crashRecord(w, i int) string {
	name := fmt.Sprintf("w%d-%d", w, i)
	return name + ":" + strings.Repeat(".", (w*131+i*17)%300)
}

// TestCrashChild is the child process of TestCrashKill9: it appends with several goroutines and
// prints "ack NAME" once each record is durable. It does nothing in a normal test run.
func TestCrashChild(t *testing.T) {
	path := os.Getenv(crashEnv)
	if path == "" {
		t.Skip("child process of TestCrashKill9")
	}
	l, _, err := eventlog.Open(path, eventlog.Options{})
	if err != nil {
		t.Fatal(err)
	}
	// Write every batch in small pieces, so the kill often lands inside a record and leaves a
	// torn tail for the parent to cut.
	eventlog.WrapWriteAt(l, func(w func([]byte, int64) (int, error)) func([]byte, int64) (int, error) {
		return func(b []byte, off int64) (int, error) {
			done := 0
			for done < len(b) {
				n, err := w(b[done:min(done+crashPiece, len(b))], off+int64(done))
				done += n
				if err != nil {
					return done, err
				}
			}
			return done, nil
		}
	})
	var wg sync.WaitGroup
	for w := range crashWriters {
		wg.Go(func() {
			for i := range crashPerWriter {
				if _, err := l.Append([]byte(crashRecord(w, i))); err != nil {
					t.Error(err)
					return
				}
				// One small write per line; the parent reads lines from a pipe.
				fmt.Fprintf(os.Stdout, "ack w%d-%d\n", w, i)
			}
		})
	}
	wg.Wait()
	_ = l.Close()
}

// TestCrashKill9 runs the test binary as a child that appends in a loop, kills it with SIGKILL
// after a random number of acknowledged appends, and checks on reopen that every acknowledged
// record is there exactly once and the log is whole.
func TestCrashKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	cuts := 0
	for trial := range crashTrials {
		rng := rand.New(rand.NewPCG(uint64(trial), 42))
		killAfter := 1 + rng.IntN(crashMaxKillAck)
		path := filepath.Join(t.TempDir(), "events.log")

		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), crashEnv+"="+path)
		out, err := cmd.StdoutPipe()
		require.NoError(t, err)
		require.NoError(t, cmd.Start())

		acked := map[string]bool{}
		killed := false
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			name, ok := strings.CutPrefix(sc.Text(), "ack ")
			if !ok {
				continue
			}
			acked[name] = true
			if len(acked) == killAfter && !killed {
				require.NoError(t, cmd.Process.Kill()) // SIGKILL
				killed = true
			}
		}
		require.NoError(t, sc.Err())
		_ = cmd.Wait()
		require.True(t, killed, "trial %d: child finished before the kill", trial)

		l, rec, err := eventlog.Open(path, eventlog.Options{})
		require.NoError(t, err, "trial %d", trial)
		present := map[string]bool{}
		require.NoError(t, l.Scan(eventlog.HeaderSize, func(_ int64, r []byte) error {
			name, _, _ := strings.Cut(string(r), ":")
			require.False(t, present[name], "trial %d: %s twice", trial, name)
			var w, i int
			_, err := fmt.Sscanf(name, "w%d-%d", &w, &i)
			require.NoError(t, err)
			require.Equal(t, crashRecord(w, i), string(r))
			present[name] = true
			return nil
		}))
		for name := range acked {
			require.True(t, present[name], "trial %d: acknowledged %s lost", trial, name)
		}
		fi, err := os.Stat(path)
		require.NoError(t, err)
		require.Equal(t, fi.Size(), l.End())
		_, err = l.Append([]byte("after crash"))
		require.NoError(t, err)
		require.NoError(t, l.Close())
		if rec.Cut() {
			cuts++
		}
		t.Logf("trial %d: killed after %d acks; %d records present; recovery %+v", trial, killAfter, len(present), rec)
	}
	t.Logf("%d of %d trials left a torn tail", cuts, crashTrials)
}
