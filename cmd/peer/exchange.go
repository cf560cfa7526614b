package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"peer/node/api"
	"peer/store"
)

func init() {
	register(newShareCmd)
	register(newFetchCmd)
	register(newSearchCmd)
}

// daemon returns a client for the running daemon, or nil when none runs (offline commands then
// open the repo themselves).
func (a *App) daemon(ctx context.Context) (*api.Client, error) {
	c, err := a.Client()
	if errors.Is(err, api.ErrNoDaemon) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if err := c.Health(ctx); errors.Is(err, api.ErrNoDaemon) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	return c, nil
}

// needDaemon is daemon for commands that need the network.
func (a *App) needDaemon(ctx context.Context, what string) (*api.Client, error) {
	c, err := a.daemon(ctx)
	if err == nil && c == nil {
		err = fmt.Errorf("%s needs the network: start the node with `peer --repo %s daemon` first", what, a.Repo())
	}
	return c, err
}

func newShareCmd(app *App) *cobra.Command {
	var copyIn, asJSON bool
	cmd := &cobra.Command{
		Use:   "share [--copy] FILE...",
		Short: "share files: import (in place unless --copy), provide on the DHT, announce; print the CIDs",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			for _, p := range args {
				if err := checkRegularFile(p); err != nil {
					return err
				}
			}
			c, err := app.needDaemon(cmd.Context(), "share")
			if err != nil {
				return err
			}
			var files []store.File
			for _, p := range args {
				abs, err := filepath.Abs(p)
				if err != nil {
					return err
				}
				f, err := c.Share(cmd.Context(), api.ShareRequest{Path: abs, Copy: copyIn})
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
	cmd.Flags().BoolVar(&copyIn, "copy", false, "copy the bytes into the repo instead of serving the file where it is")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the shared files as JSON")
	return cmd
}

func newFetchCmd(app *App) *cobra.Command {
	var out string
	var force, asJSON bool
	cmd := &cobra.Command{
		Use:   "fetch CID [-o PATH] [--force]",
		Short: "download a file from every peer that has it, verify every block, write it; resumes",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			root, err := parseCID(args[0])
			if err != nil {
				return err
			}
			req := api.FetchRequest{CID: root.String(), Force: force}
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
			show := fetchProgress(app, asJSON)
			ev, err := c.Fetch(cmd.Context(), req, show)
			show(api.FetchEvent{Type: "end"})
			if err != nil {
				if cmd.Context().Err() != nil {
					return &exitError{code: 130, err: errors.New("fetch interrupted; run the same command again to resume")}
				}
				return fmt.Errorf("fetching %s: %w", args[0], err)
			}
			if asJSON {
				return writeJSONLine(app.Out, ev)
			}
			if ev.Received == 0 && ev.Duration == 0 {
				fmt.Fprintf(app.Out, "already have %s at %s\n", ev.File.CID, ev.Path)
				return nil
			}
			rate := float64(ev.Received) / max(ev.Duration.Seconds(), 1e-9)
			fmt.Fprintf(app.Out, "fetched %s %s (%d bytes from %d peers in %s, %s/s)\n",
				ev.File.CID, ev.Path, ev.File.Size, ev.Peers, ev.Duration.Round(time.Millisecond), humanBytes(rate))
			return nil
		},
	}
	cmd.Flags().StringVarP(&out, "output", "o", "", "file (or directory) to write; default: the announced name in the current directory")
	cmd.Flags().BoolVar(&force, "force", false, "overwrite an existing file")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print progress as one JSON line per second, and the result as JSON")
	return cmd
}

// fetchProgress returns the function that shows fetch events: a bar on a terminal, JSON lines
// once a second with --json, nothing otherwise. An event of type "end" tidies up.
func fetchProgress(app *App, asJSON bool) func(api.FetchEvent) {
	var last time.Time
	if asJSON {
		return func(ev api.FetchEvent) {
			if ev.Type == "progress" && time.Since(last) >= time.Second {
				last = time.Now()
				_ = writeJSONLine(app.Out, ev)
			}
		}
	}
	if !isTerminal(app.Err) {
		return func(api.FetchEvent) {}
	}
	var bar *progressbar.ProgressBar
	return func(ev api.FetchEvent) {
		switch {
		case ev.Type == "end":
			if bar != nil {
				_ = bar.Close()
			}
		case ev.Progress != nil:
			p := ev.Progress
			if bar == nil {
				bar = progressbar.NewOptions64(max(p.Bytes, 1),
					progressbar.OptionSetWriter(app.Err),
					progressbar.OptionShowBytes(true),
					progressbar.OptionShowCount(),
					progressbar.OptionSetPredictTime(true),
					progressbar.OptionThrottle(200*time.Millisecond),
					progressbar.OptionClearOnFinish(),
				)
			}
			if p.Bytes > bar.GetMax64() {
				bar.ChangeMax64(p.Bytes)
			}
			bar.Describe(fmt.Sprintf("fetching from %d peers", p.Peers))
			_ = bar.Set64(p.BytesDone)
		}
	}
}

func humanBytes(n float64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB"}
	i := 0
	for n >= 1024 && i < len(units)-1 {
		n /= 1024
		i++
	}
	return fmt.Sprintf("%.1f %s", n, units[i])
}

func newSearchCmd(app *App) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "search [TERM] [--json]",
		Short: "search what the network announced: name, size, CID, peers, last seen",
		Long: `List the files the network announced whose name contains TERM (any case), or whose CID is
TERM (in any base, CIDv0 or CIDv1); without TERM, every one. Each shows its name, size, CID, the
peers that offer it and when one was last heard.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			term := ""
			if len(args) == 1 {
				term = args[0]
			}
			c, err := app.needDaemon(cmd.Context(), "search")
			if err != nil {
				return err
			}
			offers, err := c.Search(cmd.Context(), term)
			if err != nil {
				return err
			}
			if asJSON {
				if offers == nil {
					offers = []store.Offer{}
				}
				return writeJSON(app.Out, offers)
			}
			if len(offers) == 0 {
				fmt.Fprintf(app.Err, "nothing announced matches %q\n", term)
				return nil
			}
			tw := tabwriter.NewWriter(app.Out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tSIZE\tCID\tPEERS\tLAST SEEN")
			for _, o := range offers {
				fmt.Fprintf(tw, "%s\t%d\t%s\t%d\t%s ago\n", o.Name, o.Size, o.CID, len(o.Providers), time.Since(o.LastSeen).Round(time.Second))
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}
