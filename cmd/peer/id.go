package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"peer/node/api"
)

func init() { register(newIDCmd) }

func newIDCmd(app *App) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "id [--json]",
		Short: "print the peer ID and the addresses the daemon listens on",
		Long: `Print the node's peer ID and, when a daemon runs, the addresses it listens on, each with its
/p2p/ID suffix (ready for 'peer connect' or --bootstrap on another node). Without a daemon the
ID comes from the repo's key and there are no addresses.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			id, err := nodeID(cmd, app)
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(app.Out, id)
			}
			fmt.Fprintln(app.Out, id.ID)
			for _, a := range id.Addrs {
				fmt.Fprintln(app.Out, a)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, `print {"id":…,"addrs":[…]}`)
	return cmd
}

// nodeID asks the daemon, else reads the repo's key.
func nodeID(cmd *cobra.Command, app *App) (api.ID, error) {
	c, err := app.daemon(cmd.Context())
	if err != nil {
		return api.ID{}, err
	}
	if c != nil {
		return c.ID(cmd.Context())
	}
	pid, err := peerID(app.Repo())
	if err != nil {
		return api.ID{}, fmt.Errorf("%w (create the repo with `%s`)", err, app.command("init"))
	}
	return api.ID{ID: pid.String(), Addrs: []string{}}, nil
}
