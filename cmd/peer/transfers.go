package main

import (
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/spf13/cobra"

	"peer/node/api"
)

func init() { register(newTransfersCmd) }

func newTransfersCmd(app *App) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "transfers [--json] | watch | pause ID... | resume ID... | cancel [--keep] ID... | top ID...",
		Short: "the daemon's downloads (queued, running, paused, done, failed, canceled) and uploads",
		Long: `List the daemon's transfers: each download of its queue (see peer fetch --detach) and each peer
fetching from this node (an upload), with its ID, name (an upload's: the file it fetches, when this
node holds it, and the peer), direction, state, bytes done of the total, rate, peers and time left. At most max_fetches downloads run at once (config); the others wait in
order. The daemon keeps them across restarts: queued and running ones resume when it starts,
paused ones stay paused.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := app.needDaemon(cmd.Context(), "transfers")
			if err != nil {
				return err
			}
			ts, err := c.Transfers(cmd.Context())
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(app.Out, ts)
			}
			if len(ts) == 0 {
				fmt.Fprintln(app.Err, "no transfers")
				return nil
			}
			return printTransfers(app.Out, ts)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.AddCommand(newTransfersWatchCmd(app))
	for _, action := range []string{"pause", "resume", "cancel", "top"} {
		cmd.AddCommand(newTransferActionCmd(app, action))
	}
	return cmd
}

var transferActionHelp = map[string]string{
	"pause":  "pause transfers: they send no wants; what was received stays, and resume goes on from it",
	"resume": "queue paused, failed or canceled transfers again; they go on from what is here",
	"cancel": "give transfers up and delete what they received (the .part file) unless --keep",
	"top":    "move queued transfers to the front of the queue (the last one named runs first)",
}

func newTransferActionCmd(app *App, action string) *cobra.Command {
	var keep bool
	cmd := &cobra.Command{
		Use:   action + " ID...",
		Short: transferActionHelp[action],
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := app.needDaemon(cmd.Context(), "transfers "+action)
			if err != nil {
				return err
			}
			var errs []error
			for _, id := range args {
				t, err := c.TransferAction(cmd.Context(), id, action, keep)
				if err != nil {
					errs = append(errs, err)
					continue
				}
				fmt.Fprintf(app.Out, "%s %s\n", t.ID, t.State)
			}
			return errors.Join(errs...)
		},
	}
	if action == "cancel" {
		cmd.Flags().BoolVar(&keep, "keep", false, "keep what was received, so that a later fetch resumes from it")
	}
	return cmd
}

func newTransfersWatchCmd(app *App) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "watch [--json]",
		Short: "follow the transfers: one line for each change, until Ctrl-C",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := app.needDaemon(cmd.Context(), "transfers watch")
			if err != nil {
				return err
			}
			err = c.FollowTransfers(cmd.Context(), func(t api.Transfer) error {
				if asJSON {
					return writeJSONLine(app.Out, t)
				}
				_, err := fmt.Fprintln(app.Out, transferLine(t))
				return err
			})
			if cmd.Context().Err() != nil {
				return nil // Ctrl-C
			}
			return err
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print each change as a JSON line")
	return cmd
}

// transferFigures are a transfer's columns after its ID and name: direction, state, done of
// total, rate, peers, time left.
func transferFigures(t api.Transfer) []string {
	done := sizeText(uint64(t.BytesDone))
	if t.Bytes > 0 {
		done = fmt.Sprintf("%s / %s (%d%%)", done, sizeText(uint64(t.Bytes)), t.BytesDone*100/t.Bytes)
	} else if t.Direction == api.Upload {
		done += " sent"
	}
	rate, left := "-", "-"
	if t.State == "running" {
		rate = rateText(t.Rate)
		if t.Bytes > 0 && t.Rate > 0 {
			left = durationText(time.Duration(float64(t.Bytes-t.BytesDone) / t.Rate * float64(time.Second)))
		}
	}
	state := t.State
	if t.Error != "" {
		state += ": " + t.Error
	}
	return []string{t.Direction, state, done, rate, strconv.Itoa(t.Peers), left}
}

// transferName names what a transfer moves: a download's file name; for an upload, the file
// (its name, else its CID) and the peer it goes to.
func transferName(t api.Transfer) string {
	if t.Direction != api.Upload {
		return t.Name
	}
	name := t.Name
	if name == "" {
		name = t.CID
	}
	if name == "" {
		return "to " + t.Peer
	}
	return name + " to " + t.Peer
}

func printTransfers(w io.Writer, ts []api.Transfer) error {
	tb := newTable(w, "ID", "NAME", "DIRECTION", "STATE", "DONE", "RATE", "PEERS", "LEFT")
	for _, t := range ts {
		tb.row(append([]string{t.ID, transferName(t)}, transferFigures(t)...)...)
	}
	return tb.flush()
}

// transferLine is one change for watch: ID, name, then the figures. Control characters (a name
// from the network may hold any) are shown as '?'.
func transferLine(t api.Transfer) string {
	line := t.ID + "  " + transferName(t)
	for _, f := range transferFigures(t) {
		line += "  " + f
	}
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return '?'
		}
		return r
	}, line)
}
