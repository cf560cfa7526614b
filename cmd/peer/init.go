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

// runInit creates the repo if needed, writes the config with the profile applied, and prints the
// peer ID. Running it again changes nothing unless a profile is given, or an earlier init was
// interrupted before it wrote the config.
func runInit(app *App, profile string) error {
	dir := app.Repo()
	created, err := store.Init(dir)
	if err != nil {
		return err
	}
	cfg, err := config.Load(dir)
	if err != nil {
		return err
	}
	_, err = os.Stat(filepath.Join(dir, config.FileName))
	if missing := errors.Is(err, os.ErrNotExist); created || missing || profile != "" {
		if err := cfg.ApplyProfile(profile); err != nil {
			return err
		}
		if err := config.Save(dir, cfg); err != nil {
			return err
		}
	}
	id, err := peerID(dir)
	if err != nil {
		return err
	}
	if created {
		fmt.Fprintf(app.Err, "initialized repo at %s\n", dir)
	}
	fmt.Fprintln(app.Out, id)
	return nil
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
