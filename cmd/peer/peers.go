package main

import (
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
)

func init() { register(newPeersCmd) }

func newPeersCmd(app *App) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "peers [--json]",
		Short: "list the connected peers (needs a running daemon)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := app.needDaemon(cmd.Context(), "peers")
			if err != nil {
				return err
			}
			ps, err := c.Peers(cmd.Context())
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(app.Out, ps)
			}
			if len(ps) == 0 {
				fmt.Fprintf(app.Err, "no connected peers (connect with `%s` or start the daemon with --bootstrap)\n", app.command("connect MADDR"))
				return nil
			}
			tw := tabwriter.NewWriter(app.Out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "PEER\tADDRESS\tDIRECTION\tLATENCY")
			for _, p := range ps {
				lat := "-"
				if p.Latency > 0 {
					lat = p.Latency.Round(10 * time.Microsecond).String()
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", p.ID, p.Addr, p.Direction, lat)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}
