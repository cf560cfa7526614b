package store

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"peer/internal/fsys"
)

// RepoVersion is the on-disk format this code reads and writes. A repo of a newer version is
// refused rather than misread.
const RepoVersion = 1

// Files and folders inside a repo.
const (
	versionFile  = "version"
	identityFile = "identity.key"
	lockFile     = "lock"
	blocksDir    = "blocks"
	logFile      = "events.log"
	snapshotFile = "snapshot.json"
)

var (
	// ErrNotInitialized means the directory holds no repo; `peer init` creates one.
	ErrNotInitialized = errors.New("no repo here")
	// ErrLocked means another process holds the repo.
	ErrLocked = errors.New("repo is in use by another process")
	// ErrNewerVersion means the repo was written by a newer version of peer.
	ErrNewerVersion = errors.New("repo format is newer than this program")
)

// DefaultDir is $PEER_REPO, else ~/.peer.
func DefaultDir() string {
	if d := os.Getenv("PEER_REPO"); d != "" {
		return d
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return ".peer"
	}
	return filepath.Join(home, ".peer")
}

// Init creates the repo at dir if it does not exist: the folders, the format version and an
// Ed25519 identity key (mode 0600). It is idempotent: an existing repo is left as it is.
// created reports whether anything was made.
func Init(dir string) (created bool, err error) {
	if err := checkVersion(dir); err == nil {
		return false, nil
	} else if !errors.Is(err, ErrNotInitialized) {
		return false, err
	}
	if err := os.MkdirAll(filepath.Join(dir, blocksDir), 0o700); err != nil {
		return false, fmt.Errorf("creating repo: %w", err)
	}
	idPath := filepath.Join(dir, identityFile)
	if _, err := os.Stat(idPath); errors.Is(err, os.ErrNotExist) {
		if err := writeIdentity(idPath); err != nil {
			return false, err
		}
	} else if err != nil {
		return false, fmt.Errorf("checking identity: %w", err)
	}
	// The version file is written last: a repo without it is not a repo yet, so an interrupted
	// init is completed by the next one.
	if err := writeFileAtomic(filepath.Join(dir, versionFile), []byte(strconv.Itoa(RepoVersion)+"\n"), 0o600); err != nil {
		return false, fmt.Errorf("writing version: %w", err)
	}
	return true, nil
}

// writeIdentity writes a new Ed25519 key, PKCS#8 PEM, mode 0600.
func writeIdentity(path string) error {
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return fmt.Errorf("generating identity: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return fmt.Errorf("encoding identity: %w", err)
	}
	b := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	if err := writeFileAtomic(path, b, 0o600); err != nil {
		return fmt.Errorf("writing identity: %w", err)
	}
	return nil
}

func checkVersion(dir string) error {
	b, err := os.ReadFile(filepath.Join(dir, versionFile))
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("%w: %s (run `peer init`)", ErrNotInitialized, dir)
	}
	if err != nil {
		return err
	}
	v, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return fmt.Errorf("repo %s: unreadable version file: %q", dir, b)
	}
	if v > RepoVersion {
		return fmt.Errorf("%w: %s has format %d, this program reads up to %d; upgrade peer", ErrNewerVersion, dir, v, RepoVersion)
	}
	return nil
}

// ReadIdentity reads the repo's private key. It needs no lock: the key never changes.
func ReadIdentity(dir string) (ed25519.PrivateKey, error) {
	b, err := os.ReadFile(filepath.Join(dir, identityFile))
	if err != nil {
		return nil, fmt.Errorf("reading identity: %w", err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, fmt.Errorf("identity %s is not a PEM key", filepath.Join(dir, identityFile))
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("parsing identity: %w", err)
	}
	key, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("identity is a %T, want Ed25519", k)
	}
	return key, nil
}

// repoLock is an exclusive advisory lock on the repo, released when the process ends for any
// reason (the system drops the lock with the last descriptor; see fsys.Lock), so a killed process never
// leaves a stale lock.
type repoLock struct{ f *os.File }

func lockRepo(dir string) (*repoLock, error) {
	path := filepath.Join(dir, lockFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening lock: %w", err)
	}
	if err := fsys.Lock(f); err != nil {
		holder, _ := os.ReadFile(path)
		f.Close()
		if errors.Is(err, fsys.ErrLocked) {
			pid := strings.TrimSpace(string(holder))
			if pid == "" {
				pid = "unknown"
			}
			return nil, fmt.Errorf("%w: %s is held by pid %s (a running daemon or another command); wait for it or stop it", ErrLocked, dir, pid)
		}
		return nil, fmt.Errorf("locking repo: %w", err)
	}
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return &repoLock{f: f}, nil
}

// LockHolder reports the process that holds the repo at dir: its pid, and true while that process
// lives. It only reads the pid the holder wrote into the lock file and asks the system whether
// that process exists, so it never takes the lock, even for a moment, from a process starting
// up. A repo with no lock file, or whose holder is gone, is not held.
func LockHolder(dir string) (int, bool) {
	b, err := os.ReadFile(filepath.Join(dir, lockFile))
	if err != nil {
		return 0, false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0, false
	}
	if !fsys.ProcessRunning(pid) {
		return 0, false
	}
	return pid, true
}

func (l *repoLock) release() error {
	if l == nil || l.f == nil {
		return nil
	}
	_ = l.f.Truncate(0)
	err := fsys.Unlock(l.f)
	return errors.Join(err, l.f.Close())
}

// writeFileAtomic writes data to a temporary file beside path, syncs it and renames it over path.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	name := tmp.Name()
	_, werr := tmp.Write(data)
	if werr == nil {
		werr = tmp.Chmod(perm)
	}
	if werr == nil {
		werr = tmp.Sync()
	}
	if cerr := tmp.Close(); werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Rename(name, path)
	}
	if werr != nil {
		os.Remove(name)
		return werr
	}
	return syncDir(filepath.Dir(path))
}

func syncDir(dir string) error { return fsys.SyncDir(dir) }
