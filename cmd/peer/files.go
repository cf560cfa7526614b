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
	"sync/atomic"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"peer/internal/config"
	"peer/node"
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

// parseCID reads a root CID, bare or as /ipfs/CID. A path below it is refused: use parsePath
// where one is meant.
func parseCID(s string) (cid.Cid, error) {
	c, names, err := parsePath(s)
	if err != nil {
		return cid.Undef, err
	}
	if len(names) > 0 {
		return cid.Undef, fmt.Errorf("%q: give a CID, not a path into a folder", s)
	}
	return c, nil
}

// parsePath reads an IPFS path: CID, CID/sub/file or /ipfs/CID/sub/file.
func parsePath(s string) (cid.Cid, []string, error) {
	return unixfs.ParsePath(s)
}

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
	CID   string `json:"cid"`
	Name  string `json:"name"`
	Size  uint64 `json:"size"`  // a folder's: the bytes of every file in it
	Dir   bool   `json:"dir"`   // a folder
	Files uint64 `json:"files"` // a folder's file count
}

// stdinArg is the argument of add that means standard input.
const stdinArg = "-"

func newAddCmd(app *App) *cobra.Command {
	var quiet, onlyHash, hidden, asJSON bool
	var chunk int
	var name string
	cmd := &cobra.Command{
		Use:   "add [--quiet] [--only-hash] [--hidden] [--chunk-size N] [--json] PATH... | - [--name NAME]",
		Short: "import files and folders (or standard input, -) into the repo and print their CIDs",
		Long: `Import files and folders into the repo and print "added CID NAME" for each argument. A
folder is imported with everything in it, as ipfs add -r does (the CIDs are the same): empty
folders included, symbolic links stored as links and never followed, names starting with '.'
skipped unless --hidden. -r is accepted and changes nothing. "-" reads standard input instead of
a file; --name names it (by default it has no name, and the line shows the CID in its place, as
ipfs add does).`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if chunk != 0 && (chunk < unixfs.MinChunkSize || chunk > unixfs.MaxChunkSize) {
				return fmt.Errorf("--chunk-size must be between %d and %d bytes", unixfs.MinChunkSize, unixfs.MaxChunkSize)
			}
			stdins := 0
			dirs := make([]bool, len(args))
			for i, p := range args {
				if p == stdinArg {
					stdins++
					continue
				}
				dir, err := checkAddable(p)
				if err != nil {
					return err
				}
				dirs[i] = dir
			}
			if stdins > 1 {
				return errors.New("standard input (-) can be added once per command")
			}
			if cmd.Flags().Changed("name") && stdins == 0 {
				return errors.New("--name names standard input: use it with - (files keep their own names)")
			}
			opts := store.AddOptions{ChunkSize: chunk, Hidden: hidden}
			// addAll imports every argument with add (a file or standard input) or addDir (a
			// folder), through the daemon, into the repo, or only hashing, and prints what it added.
			addAll := func(add func(in addInput) (addResult, error), addDir func(path string) (addResult, error)) error {
				for i, p := range args {
					var r addResult
					if dirs[i] {
						var err error
						if r, err = addDir(p); err != nil {
							return err
						}
					} else {
						in, err := openAddInput(app, p, name)
						if err != nil {
							return err
						}
						r, err = add(in)
						in.Close()
						if err != nil {
							return err
						}
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
					return addOne(cmd.Context(), app, s, in, opts)
				}, func(p string) (addResult, error) {
					return addTree(cmd.Context(), app, s, p, opts)
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
			}, func(p string) (addResult, error) {
				return addTreeThroughDaemon(cmd.Context(), d, p, opts)
			})
		},
	}
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "print only the CIDs, one per argument")
	cmd.Flags().BoolVarP(&onlyHash, "only-hash", "n", false, "compute the CIDs without storing anything")
	cmd.Flags().BoolVar(&hidden, "hidden", false, "include files and folders whose names start with '.'")
	cmd.Flags().BoolP("recursive", "r", false, "accepted for ipfs add habits: folders are always imported whole")
	cmd.Flags().IntVar(&chunk, "chunk-size", 0, "chunk size in bytes (default 1048576)")
	cmd.Flags().BoolVar(&asJSON, "json", false, `print {"cid":…,"name":…,"size":…,"dir":…,"files":…} for each argument, one per line`)
	cmd.Flags().StringVar(&name, "name", "", "the name of what - reads from standard input")
	return cmd
}

// checkAddable gives one clear line for what add cannot import, and tells whether p is a folder.
// A symbolic link given as an argument is followed.
func checkAddable(p string) (dir bool, err error) {
	st, err := os.Stat(p)
	if errors.Is(err, os.ErrNotExist) {
		return false, fmt.Errorf("%s: no such file or folder", p)
	}
	if err != nil {
		return false, err
	}
	if !st.IsDir() && !st.Mode().IsRegular() {
		return false, fmt.Errorf("%s is not a regular file or a folder", p)
	}
	return st.IsDir(), nil
}

// addTree imports a folder (or only hashes it when s is nil), with a progress bar of bytes and
// files on a terminal.
func addTree(ctx context.Context, app *App, s *store.Store, path string, opts store.AddOptions) (addResult, error) {
	if isTerminal(app.Err) {
		bar := progressbar.NewOptions64(-1,
			progressbar.OptionSetWriter(app.Err),
			progressbar.OptionSetDescription("adding "+filepath.Base(path)),
			progressbar.OptionShowBytes(true),
			progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionClearOnFinish(),
		)
		defer bar.Close()
		var files atomic.Int64
		opts.Progress = func(n int64) { _ = bar.Set64(n) }
		opts.FileDone = func(string, uint64) {
			bar.Describe(fmt.Sprintf("adding %s: %d files", filepath.Base(path), files.Add(1)))
		}
	}
	if s == nil {
		res, err := store.HashTree(ctx, path, opts)
		if err != nil {
			return addResult{}, fmt.Errorf("hashing %s: %w", path, err)
		}
		return addResult{CID: res.Root.String(), Name: filepath.Base(path), Size: res.Size, Dir: res.Dir, Files: res.Files}, nil
	}
	f, err := s.AddTree(ctx, path, opts)
	if err != nil {
		return addResult{}, fmt.Errorf("adding %s: %w", path, err)
	}
	return fileResult(node.APIFile(f)), nil
}

// addTreeThroughDaemon has the daemon, which runs on this machine, import a folder by path.
func addTreeThroughDaemon(ctx context.Context, d *api.Client, path string, opts store.AddOptions) (addResult, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return addResult{}, err
	}
	f, err := d.AddPath(ctx, api.AddPathRequest{Path: abs, Hidden: opts.Hidden, ChunkSize: opts.ChunkSize})
	if err != nil {
		return addResult{}, fmt.Errorf("adding %s: %w", path, err)
	}
	return fileResult(f), nil
}

func fileResult(f api.File) addResult {
	return addResult{CID: f.CID, Name: f.Name, Size: f.Size, Dir: f.Dir, Files: f.Files}
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
	var file api.File
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
		Use:   "cat [--timeout D] CID[/path]",
		Short: "write a file's bytes to stdout, verifying every block; CID/sub/file reads a file of a folder",
		Long: `Write a file's bytes to stdout; CID/sub/file (or /ipfs/CID/sub/file) reads one file of a
folder. With a daemon running, a file the repo does not hold is fetched while it streams. It
fails, with nothing written, when no provider has the file or its first block does not come
within --timeout; a fetch that fails midway stops the output after the bytes that came (always
a prefix of the file) and exits non-zero.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, names, err := parsePath(args[0])
			if err != nil {
				// A CID of another codec (dag-cbor, say): the store says what it is.
				if dc, derr := unixfs.DecodeCID(args[0]); derr == nil {
					c, names, err = dc, nil, nil
				}
			}
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
			if d != nil && len(names) > 0 {
				return copyOut(d.CatPath(cmd.Context(), c, names))
			}
			if d != nil {
				return copyOut(d.Cat(cmd.Context(), c, timeout)) // the daemon fetches what it does not hold
			}
			return app.withStore(func(s *store.Store) error {
				c, err := s.Resolve(cmd.Context(), c, names)
				if err != nil {
					return fmt.Errorf("%s: %w", args[0], err)
				}
				return copyOut(s.Cat(cmd.Context(), c))
			})
		},
	}
	cmd.Flags().DurationVar(&timeout, "timeout", 0, "how long the daemon waits for the first block of a file it does not hold (default 1m)")
	return cmd
}

func newLsCmd(app *App) *cobra.Command {
	var asJSON bool
	var at string
	cmd := &cobra.Command{
		Use:   "ls [--json] [--at TIME] [CID[/path]]",
		Short: "list the files and folders held, with their state; with a CID, list a folder's entries",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				if at != "" {
					return errors.New("--at lists the index; it does not go with a folder")
				}
				return lsDir(cmd.Context(), app, args[0], asJSON)
			}
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
			var files []api.File
			switch {
			case d != nil && at != "":
				files, err = d.LsAt(cmd.Context(), t)
			case d != nil:
				files, err = d.Ls(cmd.Context())
			default:
				err = app.withStore(func(s *store.Store) (err error) {
					if at == "" {
						files = node.APIFiles(s.Files())
						return nil
					}
					fs, err := s.FilesAt(t)
					files = node.APIFiles(fs)
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

// lsDir lists the entries of the folder an IPFS path names.
func lsDir(ctx context.Context, app *App, path string, asJSON bool) error {
	root, names, err := parsePath(path)
	if err != nil {
		return err
	}
	d, err := app.daemon(ctx)
	if err != nil {
		return err
	}
	var es []api.Entry
	if d != nil {
		es, err = d.LsDir(ctx, path)
	} else {
		err = app.withStore(func(s *store.Store) error {
			c, err := s.Resolve(ctx, root, names)
			if err != nil {
				return fmt.Errorf("%s: %w", path, err)
			}
			ses, err := s.ListDir(ctx, c)
			es = node.APIEntries(ses)
			if err != nil {
				return fmt.Errorf("%s: %w", path, err)
			}
			return nil
		})
	}
	if err != nil {
		return err
	}
	if asJSON {
		if es == nil {
			es = []api.Entry{}
		}
		return writeJSON(app.Out, es)
	}
	t := newTable(app.Out, "CID", "SIZE", "KIND", "NAME")
	for _, e := range es {
		size, name := config.FormatSize(e.Size), e.Name
		if e.Kind == "dir" {
			size, name = "-", name+"/"
		}
		t.row(e.CID, size, e.Kind, name)
	}
	return t.flush()
}

// parseTime reads an RFC 3339 time, a date, or a duration meaning that long ago.
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

func printFiles(w io.Writer, files []api.File, asJSON bool) error {
	if asJSON {
		if files == nil {
			files = []api.File{}
		}
		return writeJSON(w, files)
	}
	t := newTable(w, "CID", "SIZE", "STATE", "NAME", "PATH")
	for _, f := range files {
		state := string(f.State)
		if f.State == api.FilePartial && f.Size > 0 {
			state = fmt.Sprintf("partial %d%%", f.Have*100/f.Size)
		}
		if f.Pinned {
			state += ", pinned"
		}
		name := f.Name
		if f.Dir {
			name = fmt.Sprintf("%s/ (%d files)", name, f.Files)
		}
		path := f.Path // a referenced file, or where a fetch writes (its partial file until complete)
		if f.State == api.FilePartial && f.Part != "" {
			path = f.Part
		}
		t.row(f.CID, config.FormatSize(f.Size), state, name, path)
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
			var res api.GCResult
			if d != nil {
				res, err = d.GC(cmd.Context())
			} else {
				err = app.withStore(func(s *store.Store) (err error) {
					sr, err := s.GC(cmd.Context())
					res = node.APIGCResult(sr)
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
			show := func(e api.Event) error { return printEvent(app.Out, e, asJSON) }
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
			return app.withStore(func(s *store.Store) error {
				return s.Events(0, func(e store.Event) error { return show(node.APIEvent(e)) })
			})
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print one JSON object per line")
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing new events as they happen (needs the daemon)")
	return cmd
}

func printEvent(w io.Writer, e api.Event, asJSON bool) error {
	if asJSON {
		b, err := json.Marshal(e)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(w, "%s\n", b)
		return err
	}
	root := e.Root
	if e.Sub != "" {
		root += "/" + e.Sub
	}
	line := fmt.Sprintf("%6d  %s  %-22s %s", e.Seq, e.Time.Local().Format("2006-01-02 15:04:05"), e.Type, root)
	if e.Transfer != "" {
		line += "  transfer " + e.Transfer
	}
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
