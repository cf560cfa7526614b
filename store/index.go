package store

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/ipfs/go-cid"
)

// FileState says how much of a file the node holds.
type FileState string

const (
	Complete FileState = "complete" // every block is held and verified
	Partial  FileState = "partial"  // a fetch started and has not completed
	Changed  FileState = "changed"  // a referenced file was modified: no longer served
)

// File is one entry of the index of held files. Its JSON (the API's, the CLI's and the
// snapshot's) keeps every field, zero or not; mtime is written as an RFC 3339 time (null for
// owned files).
type File struct {
	Root    cid.Cid   `json:"-"`
	CID     string    `json:"cid"`
	Name    string    `json:"name"`
	Size    uint64    `json:"size"`
	State   FileState `json:"state"`
	Path    string    `json:"path"`  // referenced file; empty when blocks are owned
	ModTime int64     `json:"mtime"` // referenced file's modification time when hashed (ns)
	Added   time.Time `json:"added"`
	Pinned  bool      `json:"pinned"`
	Shared  bool      `json:"shared"`
	Error   string    `json:"error"` // why the last fetch stopped
	// Have is how many bytes of a partial file are here and verified (for a fetch in progress, as
	// of now; for a stopped one, when it stopped).
	Have uint64 `json:"have"`
	// Source is the file a copy was imported from (a share with --copy).
	Source string `json:"source"`
	// Dir says the entry is a folder: Size is then the bytes of every file in it, and Files how
	// many files it holds.
	Dir   bool   `json:"dir"`
	Files uint64 `json:"files"`
	// Part is the partial file a fetch into Path writes until it completes (FetchStarted).
	Part string `json:"part"`
}

// Offer is one file the network announces, as the catalog knows it.
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

type offer struct {
	Name      string               `json:"name"`
	Size      uint64               `json:"size"`
	Providers map[string]time.Time `json:"providers"` // peer → when last seen
	Dir       bool                 `json:"dir,omitempty"`
	Files     uint64               `json:"files,omitempty"`
}

// index is the projection of the log: files held and the network catalog. It is rebuilt by
// replaying events through apply, and apply is the only thing that changes it.
type index struct {
	Seq     uint64            `json:"seq"` // last applied event
	Files   map[string]*File  `json:"files"`
	Catalog map[string]*offer `json:"catalog"`
	cat     *catalogBounds    // the catalog's eviction order (catalog.go), derived from Catalog
	// Transfers is the daemon's transfer list (transfers.go), fed by the events that name one.
	Transfers *Transfers `json:"transfers"`
}

func newIndex() *index {
	return &index{Files: map[string]*File{}, Catalog: map[string]*offer{}, Transfers: newTransfers()}
}

// apply folds one event into the index. It must be deterministic: the same events in the same
// order give the same index, which is what makes replay and snapshots correct.
func (ix *index) apply(e Event) {
	ix.Seq = e.Seq
	ix.catalogExpire(e.Time)
	if e.Transfer != "" {
		// A transfer's own events: the download it runs records the file's.
		ix.Transfers.apply(e)
		return
	}
	f := ix.Files[e.Root]
	switch e.Type {
	case FileAdded, FetchCompleted:
		if f == nil {
			f = &File{CID: e.Root, Added: e.Time}
			ix.Files[e.Root] = f
		}
		if e.Name != "" {
			f.Name = e.Name
		}
		f.Size, f.Path, f.ModTime, f.State, f.Error, f.Have, f.Part = e.Size, e.Path, e.ModTime, Complete, "", 0, ""
		if e.Type == FileAdded {
			f.Source = e.Source
		}
		f.Dir, f.Files = e.Dir, e.Files
	case FetchStarted:
		if f == nil {
			f = &File{CID: e.Root, Name: e.Name, Size: e.Size, Added: e.Time, State: Partial}
			ix.Files[e.Root] = f
		} else if f.State != Complete {
			f.State, f.Error = Partial, ""
		}
		if e.Path != "" && f.State == Partial {
			f.Path, f.Part = e.Path, e.Part
		}
	case FetchFailed:
		if f != nil && f.State == Partial {
			f.Error, f.Have = e.Error, e.Have
			if e.Size > 0 {
				f.Size = e.Size
			}
		}
	case FetchAbandoned:
		if f != nil && f.State == Partial {
			delete(ix.Files, e.Root)
		}
	case FileChanged:
		if f != nil && f.Path == e.Path {
			f.State, f.Error = Changed, e.Error
		}
	case FileRemoved:
		delete(ix.Files, e.Root)
	case Pinned, Unpinned:
		if f != nil {
			f.Pinned = e.Type == Pinned
		}
	case Shared, Unshared:
		if f != nil {
			f.Shared = e.Type == Shared
		}
	case AnnounceSeen:
		ix.catalogSeen(e)
	case AnnounceGone:
		ix.catalogGone(e)
	}
}

// files lists held files sorted by time added, then CID.
func (ix *index) files() []File {
	out := make([]File, 0, len(ix.Files))
	for _, f := range ix.Files {
		c := *f
		c.Root, _ = cid.Decode(c.CID)
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Added.Equal(out[j].Added) {
			return out[i].Added.Before(out[j].Added)
		}
		return out[i].CID < out[j].CID
	})
	return out
}

// search lists catalog offers whose name contains term (case-insensitive), or whose CID is term,
// counting only providers seen since cutoff: most providers first, then by name and CID.
func (ix *index) search(term string, cutoff time.Time) []Offer {
	// A term that is a CID, in any base or version, matches the root in the catalog's form.
	asCID := ""
	if c, err := cid.Decode(strings.TrimSpace(term)); err == nil {
		asCID = cid.NewCidV1(c.Type(), c.Hash()).String()
	}
	term = strings.ToLower(term)
	var out []Offer
	for root, o := range ix.Catalog {
		if term != "" && !strings.Contains(strings.ToLower(o.Name), term) && root != asCID {
			continue
		}
		off := Offer{CID: root, Name: o.Name, Size: o.Size, Dir: o.Dir, Files: o.Files}
		for p, seen := range o.Providers {
			if seen.Before(cutoff) {
				continue
			}
			off.Providers = append(off.Providers, p)
			if seen.After(off.LastSeen) {
				off.LastSeen = seen
			}
		}
		if len(off.Providers) == 0 {
			continue
		}
		sort.Strings(off.Providers)
		out = append(out, off)
	}
	sort.Slice(out, func(i, j int) bool {
		if len(out[i].Providers) != len(out[j].Providers) {
			return len(out[i].Providers) > len(out[j].Providers)
		}
		if out[i].Name != out[j].Name {
			return out[i].Name < out[j].Name
		}
		return out[i].CID < out[j].CID
	})
	return out
}

// fileJSON is File without its JSON methods.
type fileJSON File

// MarshalJSON writes every field, mtime as an RFC 3339 time (null for owned files).
func (f File) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		fileJSON
		ModTime *string `json:"mtime"`
	}{fileJSON(f), nanosText(f.ModTime)})
}

// UnmarshalJSON reads what MarshalJSON writes, and mtime as integer nanoseconds (older snapshots).
func (f *File) UnmarshalJSON(b []byte) error {
	aux := struct {
		*fileJSON
		ModTime json.RawMessage `json:"mtime"`
	}{fileJSON: (*fileJSON)(f)}
	if err := json.Unmarshal(b, &aux); err != nil {
		return err
	}
	var err error
	if f.ModTime, err = parseNanos(aux.ModTime, 1); err != nil {
		return fmt.Errorf("mtime: %w", err)
	}
	return nil
}
