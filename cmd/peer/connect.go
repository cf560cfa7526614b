package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

func init() { register(newConnectCmd) }

func newConnectCmd(app *App) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "connect MADDR",
		Short: "connect the daemon to a peer, e.g. /ip4/192.0.2.7/tcp/4040/p2p/12D3Koo…",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := app.needDaemon(cmd.Context(), "connect")
			if err != nil {
				return err
			}
			p, err := c.Connect(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(app.Out, p)
			}
			fmt.Fprintf(app.Out, "connected to %s\n", p.ID)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}
