package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"peer/internal/config"
	"peer/node/api"
	"peer/store"
	"peer/store/unixfs"
)

func init() {
	register(newInitCmd)
	register(newAddCmd)
	register(newCatCmd)
	register(newLsCmd)
	register(newRmCmd)
	register(newGCCmd)
	register(newEventsCmd)
}

// openStore opens the repo for an offline command.
func (a *App) openStore() (*store.Store, error) {
	s, err := store.Open(a.Repo())
	if errors.Is(err, store.ErrNotInitialized) {
		return nil, fmt.Errorf("no repo at %s: create it with `%s`", a.Repo(), a.command("init"))
	}
	if err != nil {
		return nil, err
	}
	if rec := s.Recovery(); rec.Cut() {
		fmt.Fprintf(a.Err, "peer: the event log ended in a torn record (%s); cut %d bytes at offset %d\n", rec.Reason, rec.Dropped, rec.TruncatedAt)
	}
	return s, nil
}

// withStore runs fn on the repo opened offline and closes it. Close's error counts: it writes the
// snapshot and releases the lock.
func (a *App) withStore(fn func(*store.Store) error) error {
	s, err := a.openStore()
	if err != nil {
		return err
	}
	return errors.Join(fn(s), s.Close())
}

func parseCID(s string) (cid.Cid, error) { return unixfs.ParseCID(s) }

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// writeJSONLine writes v as one line of JSON.
func writeJSONLine(w io.Writer, v any) error { return json.NewEncoder(w).Encode(v) }

func newInitCmd(app *App) *cobra.Command {
	var profile string
	var force, asJSON bool
	cmd := &cobra.Command{
		Use:   "init [--profile default|lan|public [--force]] [--json]",
		Short: "create the repo (identity, config, blocks, event log); harmless when it exists",
		Long: `Create the repo: identity key, config.json, blocks and event log, and print the peer ID. On a
repo that exists it changes nothing; a --profile that would change its settings lists the changes
and needs --force to apply them.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runInit(app, profile, force, asJSON)
		},
	}
	cmd.Flags().StringVar(&profile, "profile", "", "settings profile: default, lan (mDNS) or public (IPFS bootstrap, NAT traversal, mDNS)")
	cmd.Flags().BoolVar(&force, "force", false, "apply --profile to an existing repo's settings")
	cmd.Flags().BoolVar(&asJSON, "json", false, `print {"id":…,"repo":…,"created":…}`)
	return cmd
}

// addResult is what `peer add --json` prints for each file, one JSON object a line.
type addResult struct {
	CID  string `json:"cid"`
	Name string `json:"name"`
	Size uint64 `json:"size"`
}

// stdinArg is the argument of add that means standard input.
const stdinArg = "-"

func newAddCmd(app *App) *cobra.Command {
	var quiet, onlyHash, asJSON bool
	var chunk int
	var name string
	cmd := &cobra.Command{
		Use:   "add [--quiet] [--only-hash] [--chunk-size N] [--json] FILE... | - [--name NAME]",
		Short: "import files (or standard input, -) into the repo and print their CIDs",
		Long: `Import files into the repo (a copy of their bytes) and print "added CID NAME" for each.
"-" reads standard input instead of a file; --name names it (by default it has no name, and
the line shows the CID in its place, as ipfs add does).`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if chunk != 0 && (chunk < unixfs.MinChunkSize || chunk > unixfs.MaxChunkSize) {
				return fmt.Errorf("--chunk-size must be between %d and %d bytes", unixfs.MinChunkSize, unixfs.MaxChunkSize)
			}
			stdins := 0
			for _, p := range args {
				if p == stdinArg {
					stdins++
					continue
				}
				if err := checkRegularFile(p); err != nil {
					return err
				}
			}
			if stdins > 1 {
				return errors.New("standard input (-) can be added once per command")
			}
			if cmd.Flags().Changed("name") && stdins == 0 {
				return errors.New("--name names standard input: use it with - (files keep their own names)")
			}
			// addAll imports every input with add (through the daemon, into the repo, or only
			// hashing) and prints what it added.
			addAll := func(add func(in addInput) (addResult, error)) error {
				for _, p := range args {
					in, err := openAddInput(app, p, name)
					if err != nil {
						return err
					}
					r, err := add(in)
					in.Close()
					if err != nil {
						return err
					}
					switch {
					case asJSON:
						if err := writeJSONLine(app.Out, r); err != nil {
							return err
						}
					case quiet:
						fmt.Fprintln(app.Out, r.CID)
					default:
						shown := r.Name
						if shown == "" {
							shown = r.CID
						}
						fmt.Fprintf(app.Out, "added %s %s\n", r.CID, shown)
					}
				}
				return nil
			}
			local := func(s *store.Store) error { // s nil: only hash
				return addAll(func(in addInput) (addResult, error) {
					return addOne(cmd.Context(), app, s, in, store.AddOptions{ChunkSize: chunk})
				})
			}
			if onlyHash {
				return local(nil)
			}
			d, err := app.daemon(cmd.Context())
			if err != nil {
				return err
			}
			if d == nil {
				return app.withStore(local)
			}
			return addAll(func(in addInput) (addResult, error) {
				return addThroughDaemon(cmd.Context(), app, d, in, chunk)
			})
		},
	}
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "print only the CIDs, one per line")
	cmd.Flags().BoolVarP(&onlyHash, "only-hash", "n", false, "compute the CIDs without storing anything")
	cmd.Flags().IntVar(&chunk, "chunk-size", 0, "chunk size in bytes (default 1048576)")
	cmd.Flags().BoolVar(&asJSON, "json", false, `print {"cid":…,"name":…,"size":…} for each file, one per line`)
	cmd.Flags().StringVar(&name, "name", "", "the name of what - reads from standard input")
	return cmd
}

// checkRegularFile gives one clear line for what add cannot import.
func checkRegularFile(p string) error {
	st, err := os.Stat(p)
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("%s: no such file", p)
	}
	if err != nil {
		return err
	}
	if st.IsDir() {
		return fmt.Errorf("%s is a directory; directories are not supported yet: add the files in it", p)
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file", p)
	}
	return nil
}

// addInput is one thing add imports: a file, or standard input.
type addInput struct {
	r     io.Reader
	name  string // "" for unnamed standard input
	label string // for messages: the path, or "standard input"
	size  int64  // -1 when unknown (standard input)
	close func()
}

func (in addInput) Close() { in.close() }

func openAddInput(app *App, path, stdinName string) (addInput, error) {
	if path == stdinArg {
		if f, ok := app.In.(*os.File); ok && isTerminal(f) {
			fmt.Fprintln(app.Err, "reading standard input; end it with Ctrl-D")
		}
		return addInput{r: app.In, name: stdinName, label: "standard input", size: -1, close: func() {}}, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return addInput{}, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return addInput{}, err
	}
	return addInput{r: f, name: filepath.Base(path), label: path, size: st.Size(), close: func() { f.Close() }}, nil
}

// addOne imports one input (or only hashes it when s is nil), with a progress bar on a terminal
// for files large enough to need one.
func addOne(ctx context.Context, app *App, s *store.Store, in addInput, opts store.AddOptions) (addResult, error) {
	bar := newBar(app, in.size, "adding "+in.name)
	if bar != nil {
		opts.Progress = func(n int64) { _ = bar.Set64(n) }
		defer bar.Close()
	}
	if s == nil {
		res, err := store.Hash(ctx, in.r, opts)
		if err != nil {
			return addResult{}, fmt.Errorf("hashing %s: %w", in.label, err)
		}
		return addResult{CID: res.Root.String(), Name: in.name, Size: res.Size}, nil
	}
	file, err := s.Add(ctx, in.r, in.name, opts)
	if err != nil {
		return addResult{}, fmt.Errorf("adding %s: %w", in.label, err)
	}
	return addResult{CID: file.CID, Name: file.Name, Size: file.Size}, nil
}

// addThroughDaemon streams an input to the running daemon, which imports it.
func addThroughDaemon(ctx context.Context, app *App, d *api.Client, in addInput, chunk int) (addResult, error) {
	body := in.r
	if bar := newBar(app, in.size, "adding "+in.name); bar != nil {
		defer bar.Close()
		r := progressbar.NewReader(in.r, bar)
		body = &r
	}
	q := url.Values{"name": {in.name}}
	if chunk > 0 {
		q.Set("chunk_size", strconv.Itoa(chunk))
	}
	resp, err := d.Request(ctx, http.MethodPost, api.PathAdd+"?"+q.Encode(), body, "application/octet-stream")
	if err != nil {
		return addResult{}, fmt.Errorf("adding %s: %w", in.label, err)
	}
	defer resp.Body.Close()
	var file store.File
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&file); err != nil {
		return addResult{}, fmt.Errorf("adding %s: reading the answer: %w", in.label, err)
	}
	if _, err := cid.Decode(file.CID); err != nil {
		return addResult{}, fmt.Errorf("adding %s: the daemon answered no CID: %w", in.label, err)
	}
	return addResult{CID: file.CID, Name: file.Name, Size: file.Size}, nil
}

// newBar returns a byte progress bar on a terminal for work of at least 64 MiB, else nil.
func newBar(app *App, total int64, desc string) *progressbar.ProgressBar {
	if total < 64<<20 || !isTerminal(app.Err) {
		return nil
	}
	return progressbar.NewOptions64(total,
		progressbar.OptionSetWriter(app.Err),
		progressbar.OptionSetDescription(desc),
		progressbar.OptionShowBytes(true),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionClearOnFinish(),
	)
}

func newCatCmd(app *App) *cobra.Command {
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "cat [--timeout D] CID",
		Short: "write a file's bytes to stdout, verifying every block (the daemon fetches what it does not hold)",
		Long: `Write a file's bytes to stdout. With a daemon running, a file the repo does not hold is fetched
while it streams. It fails, with nothing written, when no provider has the file or its first
block does not come within --timeout; a fetch that fails midway stops the output after the bytes
that came (always a prefix of the file) and exits non-zero.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := unixfs.DecodeCID(args[0]) // the store says what a CID of another codec is
			if err != nil {
				return err
			}
			d, err := app.daemon(cmd.Context())
			if err != nil {
				return err
			}
			copyOut := func(r io.ReadCloser, err error) error {
				if err != nil {
					return err
				}
				_, err = io.Copy(app.Out, r)
				return errors.Join(err, r.Close())
			}
			if d != nil {
				return copyOut(d.Cat(cmd.Context(), c, timeout)) // the daemon fetches what it does not hold
			}
			return app.withStore(func(s *store.Store) error { return copyOut(s.Cat(cmd.Context(), c)) })
		},
	}
	cmd.Flags().DurationVar(&timeout, "timeout", 0, "how long the daemon waits for the first block of a file it does not hold (default 1m)")
	return cmd
}

func newLsCmd(app *App) *cobra.Command {
	var asJSON bool
	var at string
	cmd := &cobra.Command{
		Use:   "ls [--json] [--at TIME]",
		Short: "list the files held, with their state",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var t time.Time
			if at != "" {
				var err error
				if t, err = parseTime(at); err != nil {
					return err
				}
			}
			d, err := app.daemon(cmd.Context())
			if err != nil {
				return err
			}
			var files []store.File
			switch {
			case d != nil && at != "":
				files, err = d.LsAt(cmd.Context(), t)
			case d != nil:
				files, err = d.Ls(cmd.Context())
			default:
				err = app.withStore(func(s *store.Store) (err error) {
					if at == "" {
						files = s.Files()
						return nil
					}
					files, err = s.FilesAt(t)
					return err
				})
			}
			if err != nil {
				return err
			}
			return printFiles(app.Out, files, asJSON)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.Flags().StringVar(&at, "at", "", "show the index as it was at TIME (RFC 3339, a date, or a duration ago such as 2h or 7d)")
	return cmd
}

// parseTime reads an RFC 3339 time, a date, or a duration meaning that long ago (90m, 2h, 7d).
func parseTime(s string) (time.Time, error) {
	if d, err := config.ParseDuration(s); err == nil {
		return time.Now().Add(-d), nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02 15:04:05", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, s, time.Local); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("%q is not a time: use RFC 3339 (2026-01-02T15:04:05Z), a date, or a duration ago (90m, 7d)", s)
}

func printFiles(w io.Writer, files []store.File, asJSON bool) error {
	if asJSON {
		if files == nil {
			files = []store.File{}
		}
		return writeJSON(w, files)
	}
	t := newTable(w, "CID", "SIZE", "STATE", "NAME", "PATH")
	for _, f := range files {
		state := string(f.State)
		if f.State == store.Partial && f.Size > 0 {
			state = fmt.Sprintf("partial %d%%", f.Have*100/f.Size)
		}
		if f.Pinned {
			state += ", pinned"
		}
		path := f.Path // a referenced file, or where a fetch writes (its .part until complete)
		if f.State == store.Partial && path != "" {
			path = store.PartPath(path)
		}
		t.row(f.CID, config.FormatSize(f.Size), state, f.Name, path)
	}
	return t.flush()
}

func newRmCmd(app *App) *cobra.Command {
	var force, asJSON bool
	cmd := &cobra.Command{
		Use:   "rm [--force] [--json] CID",
		Short: "forget a file: it is no longer served or announced (peer gc reclaims its blocks)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := parseCID(args[0])
			if err != nil {
				return err
			}
			d, err := app.daemon(cmd.Context())
			if err != nil {
				return err
			}
			switch {
			case d != nil && force:
				err = d.RemoveForce(cmd.Context(), c.String())
			case d != nil:
				err = d.Remove(cmd.Context(), c.String()) // also withdraws a shared file
			default:
				err = app.withStore(func(s *store.Store) error {
					if force {
						if _, err := s.Unpin(c); err != nil && !errors.Is(err, store.ErrUnknownFile) {
							return err
						}
					}
					return s.Remove(c)
				})
			}
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(app.Out, rmResult{CID: c.String()})
			}
			fmt.Fprintf(app.Out, "removed %s\n", c)
			return nil
		},
	}
	cmd.Flags().BoolVar(&force, "force", false, "remove a pinned file too")
	cmd.Flags().BoolVar(&asJSON, "json", false, `print {"cid":…} of the removed file`)
	return cmd
}

// rmResult is what `peer rm --json` prints.
type rmResult struct {
	CID string `json:"cid"`
}

func newGCCmd(app *App) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "gc [--json]",
		Short: "reclaim blocks that no held file needs",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			d, err := app.daemon(cmd.Context())
			if err != nil {
				return err
			}
			var res store.GCResult
			if d != nil {
				res, err = d.GC(cmd.Context())
			} else {
				err = app.withStore(func(s *store.Store) (err error) {
					res, err = s.GC(cmd.Context())
					return err
				})
			}
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(app.Out, res)
			}
			fmt.Fprintf(app.Out, "removed %d blocks (%d bytes), kept %d\n", res.Removed, res.Bytes, res.Kept)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, `print {"removed":…,"bytes":…,"kept":…}: blocks and bytes freed, blocks kept`)
	return cmd
}

func newEventsCmd(app *App) *cobra.Command {
	var asJSON, follow bool
	cmd := &cobra.Command{
		Use:   "events [--json] [--follow]",
		Short: "show the event log: the history of what this node held",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			show := func(e store.Event) error { return printEvent(app.Out, e, asJSON) }
			d, err := app.daemon(cmd.Context())
			if err != nil {
				return err
			}
			if d != nil && follow {
				err := d.FollowEvents(cmd.Context(), 0, show)
				if errors.Is(err, context.Canceled) {
					return nil // Ctrl-C ends a follow normally
				}
				return err
			}
			if follow {
				return fmt.Errorf("--follow needs a running daemon: start one with `%s`", app.command("daemon"))
			}
			if d != nil {
				evs, err := d.Events(cmd.Context(), 0)
				if err != nil {
					return err
				}
				for _, e := range evs {
					if err := show(e); err != nil {
						return err
					}
				}
				return nil
			}
			return app.withStore(func(s *store.Store) error { return s.Events(0, show) })
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print one JSON object per line")
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing new events as they happen (needs the daemon)")
	return cmd
}

func printEvent(w io.Writer, e store.Event, asJSON bool) error {
	if asJSON {
		b, err := json.Marshal(e)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(w, "%s\n", b)
		return err
	}
	line := fmt.Sprintf("%6d  %s  %-22s %s", e.Seq, e.Time.Local().Format("2006-01-02 15:04:05"), e.Type, e.Root)
	if e.Name != "" {
		line += "  " + e.Name
	}
	if e.Path != "" {
		line += "  " + e.Path
	}
	if e.Peer != "" {
		line += "  from " + e.Peer
	}
	if e.Error != "" {
		line += "  (" + e.Error + ")"
	}
	_, err := fmt.Fprintln(w, line)
	return err
}
