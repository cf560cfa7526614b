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
	Pinned         EventType = "Pinned"         // the file is protected: rm refuses it (without --force)
	Unpinned       EventType = "Unpinned"       // the pin is lifted
	FetchStarted   EventType = "FetchStarted"   // a download began (or resumed)
	FetchCompleted EventType = "FetchCompleted" // every block is verified and the file is in place
	FetchFailed    EventType = "FetchFailed"    // a download stopped with an error; it can resume
	FileChanged    EventType = "FileChanged"    // a referenced file no longer has the bytes we hashed
	Shared         EventType = "Shared"         // the node provides and announces the file
	Unshared       EventType = "Unshared"       // the node stopped announcing the file
	AnnounceSeen   EventType = "AnnouncementSeen"
	AnnounceGone   EventType = "AnnouncementWithdrawn"
	FetchAbandoned EventType = "FetchAbandoned" // a download stopped before any byte of the file was here: no partial entry is left
	BlockCorrupt   EventType = "BlockCorrupt"   // an owned block no longer matches its CID (Root: the block); moved aside, no longer served
	FetchQueued    EventType = "FetchQueued"    // a transfer joined the daemon's queue
	FetchPaused    EventType = "FetchPaused"    // a transfer was paused: what was received stays
	FetchResumed   EventType = "FetchResumed"   // a paused (or stopped) transfer joined the queue again
	FetchCanceled  EventType = "FetchCanceled"  // a transfer was given up
	FetchPromoted  EventType = "FetchPromoted"  // a queued transfer moved to the front of the queue
)

// Event is one record of the log. Fields that do not apply to a type are empty. Its JSON for
// people and scripts (the API, `peer events --json`) keeps every field, gives the root CID also
// under "cid", and writes mtime and atime as RFC 3339 times (null when unset); the log itself
// keeps them as integers (see encodeEvent). Decoding reads both forms.
type Event struct {
	Seq  uint64    `json:"seq"`
	Time time.Time `json:"time"`
	Type EventType `json:"type"`
	Root string    `json:"root"` // the file's root CID
	Name string    `json:"name"` // file name (announced or imported)
	Size uint64    `json:"size"` // file bytes
	// Path is where a referenced file lives: the user's file for a share in place, the output of
	// a fetch. Empty when the node owns every block.
	Path string `json:"path"`
	// Source is the file a copy was imported from, when the importer named it (a share with
	// --copy), so that sharing the same path again can replace it.
	Source string `json:"src"`
	// ModTime and FileSize identify the referenced file's version we hashed (nanoseconds).
	ModTime int64  `json:"mtime"`
	Peer    string `json:"peer"`  // who announced, for announcement events
	AnnTime int64  `json:"atime"` // the announcer's clock, unix ms
	Error   string `json:"error"`
	// Have is how many bytes a stopped fetch had verified (FetchFailed).
	Have uint64 `json:"have"`
	// Dir says the root is a UnixFS directory (FileAdded, FetchCompleted, and AnnounceSeen when
	// the announcement said so); Size is then the bytes of every file under it and Files how many
	// files it holds. False and 0 for a single file.
	Dir   bool   `json:"dir"`
	Files uint64 `json:"files"`
	// Part is the partial file a fetch writes until it completes (FetchStarted with a Path).
	Part string `json:"part"`
	// Transfer names the daemon's transfer an event is about (transfers.go); events with one
	// change the transfer list and not the index of files. Force and Limit are the transfer's
	// options (FetchQueued).
	Transfer string `json:"transfer"`
	Force    bool   `json:"force"`
	Limit    int64  `json:"limit"` // bytes/s, 0: no cap of its own
	// Sub is the entry under Root that a transfer fetches (FetchQueued of CID/sub/file): its
	// names joined by '/'. Empty when the transfer fetches the whole of Root.
	Sub string `json:"sub,omitempty"`
}

// RootCID parses the event's root.
func (e Event) RootCID() (cid.Cid, error) { return cid.Decode(e.Root) }

// logEvent is Event without its JSON methods: the log's own encoding, with times as integers.
type logEvent Event

func encodeEvent(e Event) ([]byte, error) { return json.Marshal(logEvent(e)) }

// MarshalJSON writes the event for people and scripts: see Event.
func (e Event) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		CID string `json:"cid"`
		logEvent
		ModTime *string `json:"mtime"`
		AnnTime *string `json:"atime"`
	}{e.Root, logEvent(e), nanosText(e.ModTime), nanosText(e.AnnTime * int64(time.Millisecond))})
}

// UnmarshalJSON reads an event in either form: the log's (integer times) or MarshalJSON's.
func (e *Event) UnmarshalJSON(b []byte) error {
	aux := struct {
		*logEvent
		ModTime json.RawMessage `json:"mtime"`
		AnnTime json.RawMessage `json:"atime"`
	}{logEvent: (*logEvent)(e)}
	if err := json.Unmarshal(b, &aux); err != nil {
		return err
	}
	var err error
	if e.ModTime, err = parseNanos(aux.ModTime, 1); err != nil {
		return fmt.Errorf("mtime: %w", err)
	}
	if e.AnnTime, err = parseNanos(aux.AnnTime, int64(time.Millisecond)); err != nil {
		return fmt.Errorf("atime: %w", err)
	}
	return nil
}

// nanosText writes a time given in nanoseconds since 1970 as RFC 3339 in UTC; nil for 0.
func nanosText(ns int64) *string {
	if ns == 0 {
		return nil
	}
	s := time.Unix(0, ns).UTC().Format(time.RFC3339Nano)
	return &s
}

// parseNanos reads a time as an integer in units of unit nanoseconds, an RFC 3339 string, or null
// (0), and returns it in units of unit.
func parseNanos(raw json.RawMessage, unit int64) (int64, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return 0, nil
	}
	if raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return 0, err
		}
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return 0, err
		}
		return t.UnixNano() / unit, nil
	}
	var n int64
	err := json.Unmarshal(raw, &n)
	return n, err
}

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
