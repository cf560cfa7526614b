package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

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
	register(newExportCmd)
	register(newImportCmd)
}

// parseExportArg reads export's argument: a CID of any codec, or /ipfs/CID. A path inside the
// DAG (CID/sub/file) is refused: exporting what a path names needs path resolution, which the
// store does not have yet.
func parseExportArg(arg string) (cid.Cid, error) {
	s := strings.TrimPrefix(arg, "/ipfs/")
	if i := strings.IndexByte(s, '/'); i >= 0 {
		if strings.Trim(s[i:], "/") != "" {
			return cid.Undef, fmt.Errorf("%s: exporting a path inside a DAG is not supported yet; export its root (`peer export %s`)", arg, s[:i])
		}
		s = s[:i]
	}
	return unixfs.DecodeCID(s)
}

func newExportCmd(app *App) *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "export CID [-o FILE.car]",
		Short: "write the DAG under a CID as a CARv1 file (as ipfs dag export does)",
		Long: `Write a CARv1 whose root is CID and which holds every block reachable from it, each once,
parents first, as ipfs dag export writes it. It goes to standard output, or to FILE.car with -o
(which must not exist; it appears only once the CAR is whole). The repo must hold the whole DAG:
a missing block is an error before anything is written. Works offline and through the daemon.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			root, err := parseExportArg(args[0])
			if err != nil {
				return err
			}
			var w io.Writer = app.Out
			var commit func() error
			if out != "" {
				f, done, err := createOutput(out)
				if err != nil {
					return err
				}
				w, commit = f, done
				defer f.Close()
				defer os.Remove(f.Name()) // nothing left when the CAR is not whole
			} else if isTerminal(app.Out) {
				return errors.New("refusing to write a CAR (binary) to a terminal: give -o FILE.car or redirect the output")
			}
			d, err := app.daemon(cmd.Context())
			if err != nil {
				return err
			}
			if d != nil {
				rc, err := d.Export(cmd.Context(), root)
				if err != nil {
					return err
				}
				_, err = io.Copy(w, rc)
				if err = errors.Join(err, rc.Close()); err != nil {
					return err
				}
			} else {
				err := app.withStore(func(s *store.Store) error {
					_, err := s.Export(cmd.Context(), root, w)
					return err
				})
				if err != nil {
					return err
				}
			}
			if commit != nil {
				return commit()
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&out, "output", "o", "", "write the CAR to this file instead of standard output")
	return cmd
}

// createOutput opens a temporary file beside path; done makes it path, refusing to replace a
// file that appeared meanwhile.
func createOutput(path string) (*os.File, func() error, error) {
	if _, err := os.Lstat(path); err == nil {
		return nil, nil, fmt.Errorf("%s exists: remove it or choose another name", path)
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return nil, nil, err
	}
	done := func() error {
		if err := f.Sync(); err != nil {
			return err
		}
		if err := f.Close(); err != nil {
			return err
		}
		// A hard link never replaces an existing file, unlike a rename.
		if err := os.Link(f.Name(), path); err != nil {
			if errors.Is(err, os.ErrExist) {
				return fmt.Errorf("%s exists: remove it or choose another name", path)
			}
			return err
		}
		return nil
	}
	return f, done, nil
}

func newImportCmd(app *App) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "import [--json] FILE.car | -",
		Short: "verify and store every block of a CAR file, and hold its roots (as ipfs dag import does)",
		Long: `Read a CAR (v1 or v2; "-" reads standard input), verify every block against its CID and store
it, whatever its codec (dag-pb, raw, dag-cbor, dag-json; identity blocks need no storage). Each root
whose DAG is then complete in the repo is held, like a file added (peer ls lists it). A root whose
DAG misses blocks is reported and not held, and the command exits non-zero. Input that is not a
valid CAR (truncated, a block that does not match its CID, a CARv2 index that lies) is an error,
and nothing of it is kept. Works offline and through the daemon.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if st, err := os.Stat(args[0]); err == nil && st.IsDir() {
				return fmt.Errorf("%s is a directory: give a CAR file", args[0])
			}
			in, err := openAddInput(app, args[0], "")
			if err != nil {
				if errors.Is(err, os.ErrNotExist) {
					return fmt.Errorf("%s: no such file", args[0])
				}
				return err
			}
			defer in.Close()
			r := in.r
			if bar := newBar(app, in.size, "importing "+in.name); bar != nil {
				defer bar.Close()
				pr := progressbar.NewReader(in.r, bar)
				r = &pr
			}
			d, err := app.daemon(cmd.Context())
			if err != nil {
				return err
			}
			var res api.ImportResult
			if d != nil {
				res, err = d.Import(cmd.Context(), r)
			} else {
				err = app.withStore(func(s *store.Store) (err error) {
					sr, err := s.ImportCAR(cmd.Context(), r)
					res = node.APIImportResult(sr)
					return err
				})
			}
			if err != nil {
				return fmt.Errorf("importing %s: %w", in.label, err)
			}
			if asJSON {
				if res.Roots == nil {
					res.Roots = []api.ImportedRoot{}
				}
				if err := writeJSON(app.Out, res); err != nil {
					return err
				}
			} else {
				printImport(app.Out, in.label, res)
			}
			if bad := res.Incomplete(); len(bad) > 0 {
				return fmt.Errorf("%d of %d roots of %s are incomplete: their blocks are stored but not held (peer gc reclaims them)", len(bad), len(res.Roots), in.label)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, `print {"version":…,"blocks":…,"bytes":…,"new":…,"roots":[{"cid":…,"state":…,"size":…}]}`)
	return cmd
}

func printImport(w io.Writer, label string, res api.ImportResult) {
	fmt.Fprintf(w, "imported %d blocks (%s, %d new) from %s\n", res.Blocks, config.FormatSize(res.Bytes), res.New, label)
	for _, r := range res.Roots {
		switch r.State {
		case api.RootAdded:
			fmt.Fprintf(w, "added %s (%s)\n", r.CID, config.FormatSize(r.Size))
		case api.RootHeld:
			fmt.Fprintf(w, "held %s (already held)\n", r.CID)
		default:
			fmt.Fprintf(w, "incomplete %s: block %s is missing\n", r.CID, r.Missing)
		}
	}
}
