package store

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/ipfs/go-cid"
)

// EventType names what happened. The names are written into the log: they only ever grow.
type EventType string

// WARNING: only append to this list; the log holds these names forever.
const (
	FileAdded      EventType = "FileAdded"      // a file's blocks are durable and it is held
	FileRemoved    EventType = "FileRemoved"    // the user forgot a file; gc may reclaim its blocks
	Pinned         EventType = "Pinned"         // the file is kept by gc and re-provided
	Unpinned       EventType = "Unpinned"       // the pin is lifted
	FetchStarted   EventType = "FetchStarted"   // a download began (or resumed)
	FetchCompleted EventType = "FetchCompleted" // every block is verified and the file is in place
	FetchFailed    EventType = "FetchFailed"    // a download stopped with an error; it can resume
	FileChanged    EventType = "FileChanged"    // a referenced file no longer has the bytes we hashed
	Shared         EventType = "Shared"         // the node provides and announces the file
	Unshared       EventType = "Unshared"       // the node stopped announcing the file
	AnnounceSeen   EventType = "AnnouncementSeen"
	AnnounceGone   EventType = "AnnouncementWithdrawn"
)

// Event is one record of the log. Fields that do not apply to a type are empty.
type Event struct {
	Seq  uint64    `json:"seq"`
	Time time.Time `json:"time"`
	Type EventType `json:"type"`
	Root string    `json:"root,omitempty"` // the file's root CID
	Name string    `json:"name,omitempty"` // file name (announced or imported)
	Size uint64    `json:"size,omitempty"` // file bytes
	// Path is where a referenced file lives: the user's file for a share in place, the output of
	// a fetch. Empty when the node owns every block.
	Path string `json:"path,omitempty"`
	// ModTime and FileSize identify the referenced file's version we hashed (nanoseconds).
	ModTime int64  `json:"mtime,omitempty"`
	Peer    string `json:"peer,omitempty"`  // who announced, for announcement events
	AnnTime int64  `json:"atime,omitempty"` // the announcer's clock, unix ms
	Error   string `json:"error,omitempty"`
	// Have is how many bytes a stopped fetch had verified (FetchFailed).
	Have uint64 `json:"have,omitempty"`
	// Dir says the root is a UnixFS directory (FileAdded, FetchCompleted); Size is then the bytes
	// of every file under it and Files how many files it holds. Absent for a single file.
	Dir   bool   `json:"dir,omitempty"`
	Files uint64 `json:"files,omitempty"`
}

// RootCID parses the event's root.
func (e Event) RootCID() (cid.Cid, error) { return cid.Decode(e.Root) }

func encodeEvent(e Event) ([]byte, error) { return json.Marshal(e) }

// DecodeEvent parses one log record. It never panics on hostile input.
func DecodeEvent(b []byte) (Event, error) {
	var e Event
	if err := json.Unmarshal(b, &e); err != nil {
		return Event{}, fmt.Errorf("decoding event: %w", err)
	}
	if e.Type == "" {
		return Event{}, fmt.Errorf("decoding event: no type")
	}
	if e.Root != "" {
		if _, err := cid.Decode(e.Root); err != nil {
			return Event{}, fmt.Errorf("decoding event %d: bad root: %w", e.Seq, err)
		}
	}
	return e, nil
}
