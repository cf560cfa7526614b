package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"peer/store"
)

// App is what every command shares: where the repo is and where output goes.
type App struct {
	repo string
	In   io.Reader
	Out  io.Writer
	Err  io.Writer
}

// Repo is the repo directory: --repo, else $PEER_REPO, else ~/.peer.
func (a *App) Repo() string {
	if a.repo != "" {
		return a.repo
	}
	return store.DefaultDir()
}

// commands holds the constructors of every subcommand; each command's file registers its own in
// an init function, so adding a command touches no shared file.
var commands []func(*App) *cobra.Command

func register(f func(*App) *cobra.Command) { commands = append(commands, f) }

// exitError carries a specific exit code out of a command.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func newRoot(app *App) *cobra.Command {
	root := &cobra.Command{
		Use:           "peer",
		Short:         "peer-to-peer file sharing: add, share, find and fetch files by content ID",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().StringVar(&app.repo, "repo", "", "repo directory (default $PEER_REPO, else ~/.peer)")
	setVersionFlag(root)
	root.SetIn(app.In)
	root.SetOut(app.Out)
	root.SetErr(app.Err)
	for _, f := range commands {
		root.AddCommand(f(app))
	}
	return root
}

// run executes one command line and returns the process exit code.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	app := &App{In: stdin, Out: stdout, Err: stderr}
	root := newRoot(app)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	fmt.Fprintln(stderr, "peer:", oneLine(err))
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	if errors.Is(err, context.Canceled) {
		return 130
	}
	return 1
}

// oneLine is err's message on one line: joined errors and libp2p's per-address dial errors come
// on several.
func oneLine(err error) string {
	lines := strings.Fields(strings.ReplaceAll(err.Error(), "\n", " ; "))
	return strings.ReplaceAll(strings.Join(lines, " "), " ; ", "; ")
}

// isTerminal reports whether w is a terminal (progress bars only go to terminals).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
