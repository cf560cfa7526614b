package api

import (
	"time"

	"github.com/ipfs/go-cid"
)

// FileState says how much of a held file is here.
type FileState string

// The states of a held file.
const (
	FileComplete FileState = "complete" // every block is held and verified
	FilePartial  FileState = "partial"  // a fetch started and has not completed
	FileChanged  FileState = "changed"  // a referenced file was modified: no longer served
)

// File is one file or folder the node holds, as GET /api/v1/ls lists it and add, share, pin
// and unpin answer it. Every field is written, zero or not.
type File struct {
	// Root is CID parsed; the client fills it in, the JSON has only "cid".
	Root  cid.Cid   `json:"-"`
	CID   string    `json:"cid"`
	Name  string    `json:"name"`
	Size  uint64    `json:"size"`
	State FileState `json:"state"`
	Path  string    `json:"path"` // the referenced file; empty when the node owns the blocks
	Added time.Time `json:"added"`
	// Pinned files are kept by rm (without force) and gc; Shared ones are provided and announced.
	Pinned bool   `json:"pinned"`
	Shared bool   `json:"shared"`
	Error  string `json:"error"` // why the last fetch stopped
	// Have is how many bytes of a partial file are here and verified.
	Have uint64 `json:"have"`
	// Source is the file a copy was imported from (a share with copy).
	Source string `json:"source"`
	// Dir says the entry is a folder: Size is then the bytes of every file in it, Files how many.
	Dir   bool   `json:"dir"`
	Files uint64 `json:"files"`
	// Part is the partial file a fetch into Path writes until it completes.
	Part string `json:"part"`
	// ModTime is the referenced file's modification time when it was hashed; null for owned
	// files. Last, where the JSON has always had it.
	ModTime *time.Time `json:"mtime"`
}

// Event is one record of the node's event log, as GET /api/v1/events answers it. Fields that do
// not apply to its type are empty; every field is written.
type Event struct {
	CID  string    `json:"cid"` // the file's root CID, as Root
	Seq  uint64    `json:"seq"`
	Time time.Time `json:"time"`
	Type string    `json:"type"` // FileAdded, FetchStarted, ... (docs/STORE.md lists them)
	Root string    `json:"root"`
	Name string    `json:"name"`
	Size uint64    `json:"size"`
	// Path is where a referenced file lives: the user's file for a share in place, the output of
	// a fetch. Empty when the node owns every block.
	Path   string `json:"path"`
	Source string `json:"src"`  // the file a copy was imported from
	Peer   string `json:"peer"` // who announced, for announcement events
	Error  string `json:"error"`
	Have   uint64 `json:"have"` // bytes a stopped fetch had verified
	Dir    bool   `json:"dir"`
	Files  uint64 `json:"files"`
	Part   string `json:"part"` // the partial file of a fetch
	// Transfer names the daemon's transfer the event is about; Force and Limit are its options.
	Transfer string `json:"transfer"`
	Force    bool   `json:"force"`
	Limit    int64  `json:"limit"`
	// Sub is the entry under Root a transfer fetches (FetchQueued of CID/sub/file), names joined
	// by '/'; left out for the whole of Root.
	Sub string `json:"sub,omitempty"`
	// ModTime is the referenced file's modification time; AnnTime the announcer's clock. Null
	// when unset.
	ModTime *time.Time `json:"mtime"`
	AnnTime *time.Time `json:"atime"`
}

// Offer is one file the network announces, as GET /api/v1/search answers it.
type Offer struct {
	CID       string    `json:"cid"`
	Name      string    `json:"name"`
	Size      uint64    `json:"size"`
	Providers []string  `json:"providers"`
	LastSeen  time.Time `json:"last_seen"`
	// Dir says the announcements name a folder, of Files files (Size is then their bytes).
	Dir   bool   `json:"dir"`
	Files uint64 `json:"files"`
}

// Entry is one entry of a folder, as GET /api/v1/ls?path= answers it.
type Entry struct {
	Name string `json:"name"`
	CID  string `json:"cid"`
	Kind string `json:"kind"` // "file", "dir" or "symlink"
	Size uint64 `json:"size"` // a file's bytes, a symlink's target length; 0 for a folder
}

// GCResult is the answer of POST /api/v1/gc.
type GCResult struct {
	Removed int   `json:"removed"` // blocks removed
	Bytes   int64 `json:"bytes"`   // their bytes on disk
	Kept    int   `json:"kept"`    // blocks a held file needs
}

// The states of a CAR's root after an import.
const (
	RootAdded      = "added"      // recorded as a held file
	RootHeld       = "held"       // already held: left as it was
	RootIncomplete = "incomplete" // the DAG misses blocks: not recorded
)

// ImportedRoot is one root of an imported CAR.
type ImportedRoot struct {
	CID   string `json:"cid"`
	State string `json:"state"` // RootAdded, RootHeld or RootIncomplete
	// Size is the file's size for a UnixFS file, else the bytes of the DAG's blocks (0 when
	// incomplete).
	Size uint64 `json:"size"`
	// Missing is a block of the DAG the repo does not hold (RootIncomplete).
	Missing string `json:"missing,omitempty"`
}

// ImportResult is the answer of POST /api/v1/import: what the CAR held and what was stored.
type ImportResult struct {
	Version int            `json:"version"` // 1 or 2
	Blocks  int            `json:"blocks"`  // sections read
	Bytes   uint64         `json:"bytes"`   // block bytes read
	New     int            `json:"new"`     // blocks stored that were not here
	Roots   []ImportedRoot `json:"roots"`
}

// Incomplete lists the roots whose DAG is not complete in the repo.
func (r ImportResult) Incomplete() []ImportedRoot {
	var out []ImportedRoot
	for _, x := range r.Roots {
		if x.State == RootIncomplete {
			out = append(out, x)
		}
	}
	return out
}
