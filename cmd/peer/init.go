package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"peer/internal/config"
	"peer/store"
)

// initResult is what `peer init --json` prints.
type initResult struct {
	ID      string `json:"id"`
	Repo    string `json:"repo"`
	Created bool   `json:"created"`
}

// runInit creates the repo if needed, writes the config with the profile applied, and prints the
// peer ID. It is all or nothing: the profile is checked before anything is written, and a repo it
// began is removed again if a later step fails. On an existing repo a profile changes nothing
// unless force is set; without it, init lists what the profile would change and fails. An init
// that was interrupted before it wrote the config is completed.
func runInit(app *App, profile string, force, asJSON bool) error {
	dir := app.Repo()
	probe := config.Default()
	if err := probe.ApplyProfile(profile); err != nil {
		return err // before anything is made
	}
	made, err := newEntries(dir)
	if err != nil {
		return err
	}
	created, err := store.Init(dir)
	if err != nil {
		return errors.Join(err, made.undo())
	}
	if err := writeInitConfig(app, dir, profile, created, force); err != nil {
		if created {
			err = errors.Join(err, made.undo())
		}
		return err
	}
	id, err := peerID(dir)
	if err != nil {
		return err
	}
	if asJSON {
		abs, err := filepath.Abs(dir)
		if err != nil {
			return err
		}
		return writeJSON(app.Out, initResult{ID: id.String(), Repo: abs, Created: created})
	}
	if created {
		fmt.Fprintf(app.Err, "initialized repo at %s\n", dir)
	}
	fmt.Fprintln(app.Out, id)
	return nil
}

// writeInitConfig writes config.json for a new repo (or one whose config is missing), and applies
// a profile to an existing one only with force.
func writeInitConfig(app *App, dir, profile string, created, force bool) error {
	cfg, err := config.Load(dir)
	if err != nil {
		return err
	}
	_, err = os.Stat(filepath.Join(dir, config.FileName))
	missing := errors.Is(err, os.ErrNotExist)
	if err != nil && !missing {
		return err
	}
	next := cfg
	if err := next.ApplyProfile(profile); err != nil {
		return err
	}
	if created || missing {
		return config.Save(dir, next)
	}
	changes := configChanges(cfg, next)
	if len(changes) == 0 {
		return nil
	}
	if !force {
		fmt.Fprintf(app.Err, "profile %s would change the existing settings in %s:\n", profile, filepath.Join(dir, config.FileName))
		for _, c := range changes {
			fmt.Fprintf(app.Err, "  %s\n", c)
		}
		return fmt.Errorf("the repo exists and nothing was changed: run `peer --repo %s init --profile %s --force` to apply the profile", dir, profile)
	}
	if err := config.Save(dir, next); err != nil {
		return err
	}
	for _, c := range changes {
		fmt.Fprintf(app.Err, "changed %s\n", c)
	}
	return nil
}

// configChanges lists the settings that differ, as "key: old → new".
func configChanges(from, to config.Config) []string {
	var out []string
	for _, k := range config.Keys() {
		a, _ := from.Show(k)
		b, _ := to.Show(k)
		if a != b {
			out = append(out, fmt.Sprintf("%s: %s → %s", k, a, b))
		}
	}
	return out
}

// entries is what a directory held before init, so that what init adds can be taken away again.
type entries struct {
	dir     string
	existed bool            // the directory itself was there
	before  map[string]bool // names in it
}

func newEntries(dir string) (entries, error) {
	e := entries{dir: dir, before: map[string]bool{}}
	st, err := os.Stat(dir)
	if errors.Is(err, os.ErrNotExist) {
		return e, nil
	}
	if err != nil {
		return e, err
	}
	if !st.IsDir() {
		return e, fmt.Errorf("%s is a file, not a repo directory: choose another --repo", dir)
	}
	list, err := os.ReadDir(dir)
	if err != nil {
		return e, err
	}
	e.existed = true
	for _, d := range list {
		e.before[d.Name()] = true
	}
	return e, nil
}

// undo removes what was made since newEntries.
func (e entries) undo() error {
	if !e.existed {
		return os.RemoveAll(e.dir)
	}
	list, err := os.ReadDir(e.dir)
	if err != nil {
		return err
	}
	var errs []error
	for _, d := range list {
		if !e.before[d.Name()] {
			errs = append(errs, os.RemoveAll(filepath.Join(e.dir, d.Name())))
		}
	}
	return errors.Join(errs...)
}

// peerID derives the node's libp2p peer ID from the repo's key.
func peerID(dir string) (peer.ID, error) {
	key, err := store.ReadIdentity(dir)
	if err != nil {
		return "", err
	}
	pk, err := crypto.UnmarshalEd25519PrivateKey(key)
	if err != nil {
		return "", err
	}
	return peer.IDFromPrivateKey(pk)
}
