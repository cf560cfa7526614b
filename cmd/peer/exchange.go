package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"peer/internal/config"
	"peer/node"
	"peer/node/api"
	"peer/store"
)

func init() {
	register(newShareCmd)
	register(newFetchCmd)
	register(newSearchCmd)
}

// daemonStartWait is how long a command waits for a daemon that says it is still starting.
var daemonStartWait = 30 * time.Second

// healthTimeout bounds the question "does the daemon answer?".
const healthTimeout = 5 * time.Second

// daemon returns a client for the running daemon, or nil when none runs (offline commands then
// open the repo themselves, whose lock tells them if another process holds it). A daemon that
// is still starting is waited for, up to daemonStartWait.
func (a *App) daemon(ctx context.Context) (*api.Client, error) {
	c, err := a.Client()
	if errors.Is(err, api.ErrNoDaemon) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(daemonStartWait)
	told := false
	for {
		hctx, cancel := context.WithTimeout(ctx, healthTimeout)
		err := c.Health(hctx)
		cancel()
		switch {
		case err == nil:
			return c, nil
		case errors.Is(err, api.ErrNoDaemon):
			return nil, nil
		case ctx.Err() != nil:
			return nil, ctx.Err()
		case errors.Is(err, context.DeadlineExceeded):
			return nil, fmt.Errorf("the daemon at %s does not answer within %s (it may be overloaded or stuck; its log may say why)", c.URL(), healthTimeout)
		case !errors.Is(err, api.ErrStarting):
			return nil, err
		case time.Now().After(deadline):
			return nil, fmt.Errorf("the daemon on repo %s is still starting after %s: try again in a moment (its log says what it waits for)", a.Repo(), daemonStartWait)
		}
		if !told && isTerminal(a.Err) {
			fmt.Fprintln(a.Err, "peer: the daemon is starting; waiting for it…")
			told = true
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// needDaemon is daemon for commands that need the network (what names the command).
func (a *App) needDaemon(ctx context.Context, what string) (*api.Client, error) {
	c, err := a.daemon(ctx)
	if err != nil || c != nil {
		return c, err
	}
	if pid, held := store.LockHolder(a.Repo()); held {
		return nil, fmt.Errorf("%w: %s is held by pid %d, but no daemon API answers there (a daemon still starting, or another command such as a long add): try again in a moment", store.ErrLocked, a.Repo(), pid)
	}
	return nil, fmt.Errorf("%w on repo %s: `peer %s` needs one; start it with `%s`", api.ErrNoDaemon, a.Repo(), what, a.command("daemon"))
}

// command is the command line a hint tells the user to run: `peer --repo DIR ARGS` when the
// user gave --repo, else `peer ARGS`.
func (a *App) command(args string) string {
	if a.repo == "" {
		return "peer " + args
	}
	dir := a.repo
	if strings.ContainsAny(dir, " \t'\"$\\`") {
		dir = strconv.Quote(dir)
	}
	return "peer --repo " + dir + " " + args
}

func newShareCmd(app *App) *cobra.Command {
	var copyIn, hidden, asJSON bool
	cmd := &cobra.Command{
		Use:   "share [--copy] [--hidden] PATH...",
		Short: "share files and folders: import (in place unless --copy), provide on the DHT, announce; print the CIDs",
		Long: `Share files and folders: the daemon imports each (in place: the repo keeps only the small
DAG nodes, and serves the bytes from your files; with --copy, into the repo), provides it on
the DHT and announces it, then prints one CID per argument. A folder is shared with everything
in it, with the CID peer add gives it; names starting with '.' are skipped unless --hidden, and
-r is accepted and changes nothing. A file of a folder shared in place that changes or vanishes
withdraws the whole folder; share it again to offer the new version.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			for _, p := range args {
				if _, err := checkAddable(p); err != nil {
					return err
				}
			}
			c, err := app.needDaemon(cmd.Context(), "share")
			if err != nil {
				return err
			}
			var files []api.File
			for _, p := range args {
				abs, err := filepath.Abs(p)
				if err != nil {
					return err
				}
				f, err := c.Share(cmd.Context(), api.ShareRequest{Path: abs, Copy: copyIn, Hidden: hidden})
				if err != nil {
					return fmt.Errorf("sharing %s: %w", p, err)
				}
				files = append(files, f)
				if !asJSON {
					fmt.Fprintln(app.Out, f.CID)
				}
			}
			if asJSON {
				return writeJSON(app.Out, files)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&copyIn, "copy", false, "copy the bytes into the repo instead of serving the files where they are")
	cmd.Flags().BoolVar(&hidden, "hidden", false, "include files and folders whose names start with '.'")
	cmd.Flags().BoolP("recursive", "r", false, "accepted for ipfs add habits: folders are always shared whole")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the shared files and folders as JSON")
	return cmd
}

func newFetchCmd(app *App) *cobra.Command {
	var out, limit string
	var force, asJSON, detach bool
	cmd := &cobra.Command{
		Use:   "fetch CID[/path] [-o PATH] [--force] [--detach] [--limit RATE]",
		Short: "download a file or folder from every peer that has it, verify every block, write it; resumes",
		Long: `Download a file or folder from every peer that has it, verify every block and write it;
CID/sub/dir or CID/sub/file fetches only that entry of a folder. The fetch is a transfer of the
daemon (see peer transfers): in the foreground this command follows it, shows its progress and
exits 0 once every block is verified; Ctrl-C cancels it and keeps what was received, so the same
command resumes it later. A fetch of a file the daemon is already fetching follows that
transfer. With --detach the transfer is queued and its ID printed at once; the daemon goes on
without the command. A path into a folder is a transfer like any other.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			root, names, err := parsePath(args[0])
			if err != nil {
				return err
			}
			req := api.FetchRequest{CID: strings.Join(append([]string{root.String()}, names...), "/"), Force: force}
			if limit != "" {
				n, err := config.ParseBytes(limit)
				if err != nil {
					return fmt.Errorf("--limit: %w (0 means no cap of its own)", err)
				}
				req.Limit = int64(n)
			}
			if out != "" {
				abs, err := filepath.Abs(out)
				if err != nil {
					return err
				}
				if st, err := os.Stat(abs); err == nil && st.IsDir() {
					req.Dir = abs
				} else {
					req.Output = abs
				}
			} else {
				wd, err := os.Getwd()
				if err != nil {
					return err
				}
				req.Dir = wd
			}
			c, err := app.needDaemon(cmd.Context(), "fetch")
			if err != nil {
				return err
			}
			if detach {
				t, err := c.Queue(cmd.Context(), req)
				if err != nil {
					return err
				}
				if asJSON {
					return writeJSON(app.Out, t)
				}
				fmt.Fprintln(app.Out, t.ID)
				return nil
			}
			show := fetchProgress(app, asJSON)
			ev, err := c.Fetch(cmd.Context(), req, show)
			show(api.FetchEvent{Type: "end"})
			if err != nil {
				if cmd.Context().Err() != nil {
					return &exitError{code: 130, err: errors.New("fetch interrupted; run the same command again to resume")}
				}
				return err // the daemon's error names the file ("fetching CID: …")
			}
			if asJSON {
				return writeJSONLine(app.Out, ev)
			}
			if ev.Received == 0 && ev.Duration == 0 {
				fmt.Fprintf(app.Out, "already have %s at %s\n", ev.File.CID, ev.Path)
				return nil
			}
			fmt.Fprintf(app.Out, "fetched %s %s (%s)\n", ev.File.CID, ev.Path, fetchSummary(ev))
			return nil
		},
	}
	cmd.Flags().StringVarP(&out, "output", "o", "", "file (or directory) to write; default: the announced name in the current directory")
	cmd.Flags().BoolVar(&force, "force", false, "overwrite an existing file")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print progress as one JSON line per second, and the result as JSON")
	cmd.Flags().BoolVarP(&detach, "detach", "d", false, "queue the fetch in the daemon, print its transfer ID and return")
	cmd.Flags().StringVar(&limit, "limit", "", "cap this fetch at RATE bytes per second (10MB, 1.5MiB); the node's download_limit holds too")
	return cmd
}

// fetchSummary says what a completed fetch did: the bytes received this time, from how many
// peers, how fast, and what was already here.
func fetchSummary(ev api.FetchEvent) string {
	if ev.Received == 0 && ev.Resumed > 0 {
		return fmt.Sprintf("all %s were already here; written in %s", sizeText(uint64(ev.Resumed)), durationText(ev.Duration))
	}
	rate := float64(ev.Received) / max(ev.Duration.Seconds(), 1e-9)
	s := fmt.Sprintf("%s from %s in %s, %s", sizeText(uint64(ev.Received)), plural(ev.Peers, "peer"), durationText(ev.Duration), rateText(rate))
	if ev.Resumed > 0 {
		s += fmt.Sprintf("; %s were already here", sizeText(uint64(ev.Resumed)))
	}
	return s
}

// fetchProgress returns the function that shows fetch events: a bar on a terminal, JSON lines
// once a second with --json, nothing otherwise. Whatever the mode, a fetch that resumes says so
// on stderr. An event of type "end" tidies up.
func fetchProgress(app *App, asJSON bool) func(api.FetchEvent) {
	var bar *fetchBar
	if !asJSON && isTerminal(app.Err) {
		bar = &fetchBar{w: app.Err}
	}
	var last time.Time
	told := false
	return func(ev api.FetchEvent) {
		if ev.Type == "queued" && ev.State == "queued" && !asJSON {
			fmt.Fprintf(app.Err, "transfer %s waits in the daemon's queue (at most max_fetches run at once; `peer transfers` lists them)\n", ev.Transfer)
		}
		if p := ev.Progress; p != nil && !told && p.Bytes > 0 {
			told = true
			if p.Resumed > 0 && p.Resumed < p.Bytes { // all of it here is a copy, not a resume
				msg := fmt.Sprintf("resuming: %s of %s already here", sizeText(uint64(p.Resumed)), sizeText(uint64(p.Bytes)))
				if bar != nil {
					bar.note(msg)
				} else {
					fmt.Fprintln(app.Err, msg)
				}
			}
		}
		switch {
		case asJSON:
			if ev.Type == "progress" && time.Since(last) >= time.Second {
				last = time.Now()
				_ = writeJSONLine(app.Out, ev)
			}
		case bar == nil:
		case ev.Type == "progress" && ev.Progress != nil:
			bar.progress(*ev.Progress)
		case ev.Type == "done":
			bar.done(ev)
		case ev.Type == "end":
			bar.end()
		}
	}
}

// searchCatalog asks the running daemon, or with none reads the catalog the repo's event log
// holds: what was heard while a daemon last ran, within the config's catalog_ttl.
func searchCatalog(ctx context.Context, app *App, term string) ([]api.Offer, error) {
	c, err := app.daemon(ctx)
	if err != nil {
		return nil, err
	}
	if c != nil {
		return c.Search(ctx, term)
	}
	cfg, err := loadConfig(app)
	if err != nil {
		return nil, err
	}
	var offers []api.Offer
	err = app.withStore(func(s *store.Store) error {
		offers = node.APIOffers(s.Search(term, time.Duration(cfg.CatalogTTL)))
		return nil
	})
	return offers, err
}

func newSearchCmd(app *App) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "search [TERM] [--json]",
		Short: "search what the network announced: name, size, CID, peers, last seen",
		Long: `List the files the network announced whose name contains TERM (any case), or whose CID is
TERM (in any base, CIDv0 or CIDv1); without TERM, every one. Each shows its name, size, CID, the
peers that offer it and when one was last heard. With no daemon running, the catalog is read from
the repo: what the node heard while it last ran.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			term := ""
			if len(args) == 1 {
				term = args[0]
			}
			offers, err := searchCatalog(cmd.Context(), app, term)
			if err != nil {
				return err
			}
			if asJSON {
				if offers == nil {
					offers = []api.Offer{}
				}
				return writeJSON(app.Out, offers)
			}
			if len(offers) == 0 {
				fmt.Fprintf(app.Err, "nothing announced matches %q\n", term)
				return nil
			}
			return printOffers(app.Out, offers, time.Now())
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

// printOffers writes the search table: sizes in units, columns aligned whatever the names'
// characters.
func printOffers(w io.Writer, offers []api.Offer, now time.Time) error {
	t := newTable(w, "NAME", "SIZE", "CID", "PEERS", "LAST SEEN")
	for _, o := range offers {
		t.row(offerName(o), config.FormatSize(o.Size), o.CID, strconv.Itoa(len(o.Providers)), now.Sub(o.LastSeen).Round(time.Second).String()+" ago")
	}
	return t.flush()
}

// offerName shows a folder as "name/ (N files)".
func offerName(o api.Offer) string {
	if !o.Dir {
		return o.Name
	}
	if o.Files == 1 {
		return o.Name + "/ (1 file)"
	}
	return fmt.Sprintf("%s/ (%d files)", o.Name, o.Files)
}
