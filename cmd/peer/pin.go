package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"peer/node"
	"peer/node/api"
	"peer/store"
)

func init() {
	register(newPinCmd)
	register(newUnpinCmd)
}

func newPinCmd(app *App) *cobra.Command   { return pinCmd(app, true) }
func newUnpinCmd(app *App) *cobra.Command { return pinCmd(app, false) }

// pinCmd is `peer pin CID` (pin true) or `peer unpin CID`: through the daemon when one runs,
// else on the repo.
func pinCmd(app *App, pin bool) *cobra.Command {
	var asJSON bool
	use, short, done := "pin CID", "pin a held file: rm refuses it (without --force) and gc keeps it", "pinned"
	if !pin {
		use, short, done = "unpin CID", "lift a file's pin", "unpinned"
	}
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
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
			var f api.File
			switch {
			case d != nil && pin:
				f, err = d.Pin(cmd.Context(), c.String())
			case d != nil:
				f, err = d.Unpin(cmd.Context(), c.String())
			default:
				err = app.withStore(func(s *store.Store) (err error) {
					var sf store.File
					if pin {
						sf, err = s.Pin(c)
					} else {
						sf, err = s.Unpin(c)
					}
					f = node.APIFile(sf)
					return err
				})
			}
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(app.Out, f)
			}
			fmt.Fprintf(app.Out, "%s %s %s\n", done, f.CID, f.Name)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the file as JSON")
	return cmd
}
