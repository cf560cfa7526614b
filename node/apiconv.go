package node

import (
	"time"

	"peer/node/api"
	"peer/store"
)

// The API's types are its own (node/api); these turn the store's values into them. The JSON
// they give is the JSON the store's types gave before the API had types of its own
// (apiconv_test.go pins it).

// APIFile is f as the API shows it.
func APIFile(f store.File) api.File {
	return api.File{Root: f.Root, CID: f.CID, Name: f.Name, Size: f.Size, State: api.FileState(f.State), Path: f.Path,
		Added: f.Added, Pinned: f.Pinned, Shared: f.Shared, Error: f.Error, Have: f.Have, Source: f.Source,
		Dir: f.Dir, Files: f.Files, Part: f.Part, ModTime: nanosTime(f.ModTime)}
}

// APIFiles is fs as the API shows them: never nil.
func APIFiles(fs []store.File) []api.File {
	out := make([]api.File, len(fs))
	for i, f := range fs {
		out[i] = APIFile(f)
	}
	return out
}

// APIEvent is e as the API shows it.
func APIEvent(e store.Event) api.Event {
	return api.Event{CID: e.Root, Seq: e.Seq, Time: e.Time, Type: string(e.Type), Root: e.Root, Name: e.Name,
		Size: e.Size, Path: e.Path, Source: e.Source, Peer: e.Peer, Error: e.Error, Have: e.Have, Dir: e.Dir,
		Files: e.Files, Part: e.Part, Transfer: e.Transfer, Force: e.Force, Limit: e.Limit, Sub: e.Sub,
		ModTime: nanosTime(e.ModTime), AnnTime: nanosTime(e.AnnTime * int64(time.Millisecond))}
}

// APIOffers is os as the API shows them: never nil.
func APIOffers(os []store.Offer) []api.Offer {
	out := make([]api.Offer, len(os))
	for i, o := range os {
		out[i] = api.Offer{CID: o.CID, Name: o.Name, Size: o.Size, Providers: o.Providers, LastSeen: o.LastSeen,
			Dir: o.Dir, Files: o.Files}
	}
	return out
}

// APIEntries is es as the API shows them: never nil.
func APIEntries(es []store.Entry) []api.Entry {
	out := make([]api.Entry, len(es))
	for i, e := range es {
		out[i] = api.Entry{Name: e.Name, CID: e.CID, Kind: e.Kind, Size: e.Size}
	}
	return out
}

// APIGCResult is r as the API shows it.
func APIGCResult(r store.GCResult) api.GCResult {
	return api.GCResult{Removed: r.Removed, Bytes: r.Bytes, Kept: r.Kept}
}

// APIImportResult is r as the API shows it.
func APIImportResult(r store.ImportResult) api.ImportResult {
	out := api.ImportResult{Version: r.Version, Blocks: r.Blocks, Bytes: r.Bytes, New: r.New}
	if r.Roots != nil {
		out.Roots = make([]api.ImportedRoot, len(r.Roots))
		for i, x := range r.Roots {
			out.Roots[i] = api.ImportedRoot{CID: x.CID, State: x.State, Size: x.Size, Missing: x.Missing}
		}
	}
	return out
}

// nanosTime is a time given in nanoseconds since 1970, in UTC; nil for 0.
func nanosTime(ns int64) *time.Time {
	if ns == 0 {
		return nil
	}
	t := time.Unix(0, ns).UTC()
	return &t
}
