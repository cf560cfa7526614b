package store

import (
	"encoding/json"
	"sort"
	"sync"
	"time"
)

// TransferState is where a transfer of the daemon's queue stands.
type TransferState string

const (
	TransferQueued   TransferState = "queued"   // waiting for a free slot
	TransferRunning  TransferState = "running"  // fetching
	TransferPaused   TransferState = "paused"   // stopped by the user; resumes only when asked
	TransferDone     TransferState = "done"     // every block verified, the file in place
	TransferFailed   TransferState = "failed"   // stopped by an error; can be resumed
	TransferCanceled TransferState = "canceled" // given up by the user
)

// Active reports whether a transfer in this state is still to run or running.
func (s TransferState) Active() bool { return s == TransferQueued || s == TransferRunning }

// Transfer is one download of the daemon's queue, as the log tells it.
type Transfer struct {
	ID     string `json:"id"`
	CID    string `json:"cid"`
	Name   string `json:"name"`
	Output string `json:"output"` // the file it writes
	Force  bool   `json:"force"`  // overwrite an existing output
	Limit  int64  `json:"limit"`  // bytes/s of its own, 0: none
	// Sub is the entry under CID it fetches (names joined by '/'), empty for the whole of CID.
	Sub    string        `json:"sub,omitempty"`
	State  TransferState `json:"state"`
	Error  string        `json:"error"` // why it failed
	Size   uint64        `json:"size"`  // the file's size when known
	Have   uint64        `json:"have"`  // bytes verified when it last stopped
	Queued time.Time     `json:"queued"`
	// Changed is when its state last changed.
	Changed time.Time `json:"changed"`
	// Order places it in the queue: lower runs first. Queuing (or resuming) puts it last, the
	// event's Seq; moving it to the front, before every other, -Seq.
	Order int64 `json:"order"`
}

// keepFinished is how many finished transfers (done, failed, canceled) the list keeps; older
// ones are dropped, oldest first.
const keepFinished = 200

// Transfers is the projection of the log's transfer events: the daemon's queue and what it
// finished. Its own lock guards it, so reading it never waits for the index.
type Transfers struct {
	mu sync.Mutex
	m  map[string]*Transfer
}

func newTransfers() *Transfers { return &Transfers{m: map[string]*Transfer{}} }

// apply folds one event carrying a transfer ID into the list. Deterministic, like index.apply.
func (ts *Transfers) apply(e Event) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	t := ts.m[e.Transfer]
	if e.Type == FetchQueued {
		ts.m[e.Transfer] = &Transfer{ID: e.Transfer, CID: e.Root, Sub: e.Sub, Name: e.Name, Output: e.Path, Force: e.Force,
			Limit: e.Limit, State: TransferQueued, Size: e.Size, Queued: e.Time, Changed: e.Time, Order: int64(e.Seq)}
		return
	}
	if t == nil {
		return
	}
	state := t.State
	switch e.Type {
	case FetchStarted:
		state = TransferRunning
	case FetchPaused:
		state = TransferPaused
	case FetchResumed:
		state, t.Error, t.Order = TransferQueued, "", int64(e.Seq)
	case FetchCanceled:
		state = TransferCanceled
	case FetchPromoted:
		t.Order = -int64(e.Seq)
	case FetchCompleted:
		state, t.Error = TransferDone, ""
	case FetchFailed:
		state, t.Error = TransferFailed, e.Error
	}
	if e.Size > 0 {
		t.Size = e.Size
	}
	if e.Type == FetchPaused || e.Type == FetchCanceled || e.Type == FetchCompleted || e.Type == FetchFailed {
		t.Have = e.Have
	}
	if state != t.State {
		t.State, t.Changed = state, e.Time
		if !state.Active() && state != TransferPaused {
			ts.pruneLocked()
		}
	}
}

// pruneLocked drops the oldest finished transfers beyond keepFinished.
func (ts *Transfers) pruneLocked() {
	var done []*Transfer
	for _, t := range ts.m {
		if !t.State.Active() && t.State != TransferPaused {
			done = append(done, t)
		}
	}
	if len(done) <= keepFinished {
		return
	}
	sort.Slice(done, func(i, j int) bool { return before(done[i].Changed, done[i].ID, done[j].Changed, done[j].ID) })
	for _, t := range done[:len(done)-keepFinished] {
		delete(ts.m, t.ID)
	}
}

func before(a time.Time, aID string, b time.Time, bID string) bool {
	if !a.Equal(b) {
		return a.Before(b)
	}
	return aID < bID
}

// List returns every transfer: the active ones in queue order (running and queued, by Order),
// then the paused and finished ones by when they were queued.
func (ts *Transfers) List() []Transfer {
	ts.mu.Lock()
	out := make([]Transfer, 0, len(ts.m))
	for _, t := range ts.m {
		out = append(out, *t)
	}
	ts.mu.Unlock()
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.State.Active() != b.State.Active() {
			return a.State.Active()
		}
		if a.State.Active() && a.Order != b.Order {
			return a.Order < b.Order
		}
		return before(a.Queued, a.ID, b.Queued, b.ID)
	})
	return out
}

// Get returns one transfer.
func (ts *Transfers) Get(id string) (Transfer, bool) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	t, ok := ts.m[id]
	if !ok {
		return Transfer{}, false
	}
	return *t, true
}

// MarshalJSON writes the list for the snapshot.
func (ts *Transfers) MarshalJSON() ([]byte, error) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return json.Marshal(ts.m)
}

// UnmarshalJSON reads what MarshalJSON writes.
func (ts *Transfers) UnmarshalJSON(b []byte) error {
	m := map[string]*Transfer{}
	if err := json.Unmarshal(b, &m); err != nil {
		return err
	}
	ts.mu.Lock()
	ts.m = m
	ts.mu.Unlock()
	return nil
}

// Transfers is the daemon's transfer list, as the log tells it.
func (j *Journal) Transfers() *Transfers {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.ix.Transfers
}
