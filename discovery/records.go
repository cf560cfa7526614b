package discovery

import (
	"context"
	"encoding/base32"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	ds "github.com/ipfs/go-datastore"
	dsq "github.com/ipfs/go-datastore/query"
	dssync "github.com/ipfs/go-datastore/sync"
	"github.com/libp2p/go-libp2p/core/peer"
)

// ErrRecordsFull is returned when the DHT's record store is at its size cap, or a provider at
// its quota: the record is not stored, and the DHT drops it.
var ErrRecordsFull = errors.New("DHT record store full")

// recordOverhead is what one stored record costs beyond its key and value bytes (map entry,
// strings, the provider manager's bookkeeping), so the cap bounds real memory.
const recordOverhead = 256

// Limits of the DHT record stores; see RecordLimits.
const (
	DefaultProviderBytes   = 32 << 20
	DefaultProviderPerPeer = 10_000
	DefaultValueBytes      = 8 << 20
)

// records is an in-memory datastore with a cap on the bytes it holds and, for provider
// records (keys /providers/<key>/<peer>), on the records of one provider. kad-dht keeps its
// provider and value records in an unbounded map by default: 20,000 IPNS records of 9 KB from
// one stranger took 366 MiB.
//
// The providers of one key are indexed by it: kad-dht asks for them with a query on the prefix
// /providers/<key> whenever its cache lacks the key (every GET_PROVIDERS of a key not asked for
// lately), and go-datastore's map answers a query by copying out every record it holds before
// filtering: 12 MB of garbage and a scan of all 170,000 records at the provider cap, for each
// question a stranger asks.
type records struct {
	inner   ds.Batching // thread-safe
	maxSize int64
	perPeer int // 0: no per-peer quota

	mu     sync.Mutex
	size   int64
	count  int                 // records held
	byPeer map[string]int      // provider (the key's last segment) -> records
	byKey  map[string][]ds.Key // provider records' parent (/providers/<key>) -> their keys
}

var _ ds.Batching = (*records)(nil)

func newRecords(maxSize int64, perPeer int) *records {
	return &records{
		inner:   dssync.MutexWrap(ds.NewMapDatastore()),
		maxSize: maxSize,
		perPeer: perPeer,
		byPeer:  make(map[string]int),
		byKey:   make(map[string][]ds.Key),
	}
}

// parent returns /providers/<key> for a provider record's key /providers/<key>/<peer>, or "".
func parent(k ds.Key) string {
	s := k.String()
	rest, ok := strings.CutPrefix(s, providersPrefix)
	if !ok {
		return ""
	}
	i := strings.IndexByte(rest, '/')
	if i <= 0 || strings.IndexByte(rest[i+1:], '/') >= 0 || i+1 == len(rest) {
		return ""
	}
	return s[:len(providersPrefix)+i]
}

// providersPrefix begins the keys of kad-dht's provider records.
const providersPrefix = "/providers/"

// provider returns the provider segment of a provider record's key, or "".
func (r *records) provider(k ds.Key) string {
	if r.perPeer == 0 {
		return ""
	}
	s := k.String()
	if !strings.HasPrefix(s, providersPrefix) {
		return ""
	}
	return s[strings.LastIndexByte(s, '/')+1:]
}

// cost is what a record counts against the cap. Computed again from the record rather than
// kept: a map of every record's size cost as much as the index of providers.
func cost(k ds.Key, v []byte) int64 { return int64(len(k.String()) + len(v) + recordOverhead) }

func (r *records) Put(ctx context.Context, k ds.Key, v []byte) error {
	n := cost(k, v)
	r.mu.Lock()
	defer r.mu.Unlock()
	var old int64
	prev, err := r.inner.Get(ctx, k)
	exists := err == nil
	if exists {
		old = cost(k, prev)
	} else if !errors.Is(err, ds.ErrNotFound) {
		return err
	}
	if r.size-old+n > r.maxSize {
		return fmt.Errorf("%w (%d MiB)", ErrRecordsFull, r.maxSize>>20)
	}
	p := r.provider(k)
	if !exists && p != "" && r.byPeer[p] >= r.perPeer {
		who := p
		if b, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(p); err == nil {
			if id, err := peer.IDFromBytes(b); err == nil {
				who = id.String()
			}
		}
		return fmt.Errorf("%w: %s has %d provider records", ErrRecordsFull, who, r.perPeer)
	}
	if err := r.inner.Put(ctx, k, v); err != nil {
		return err
	}
	r.size += n - old
	if !exists {
		r.count++
	}
	if !exists && p != "" {
		r.byPeer[p]++
	}
	if pk := parent(k); !exists && pk != "" {
		r.byKey[pk] = append(r.byKey[pk], k)
	}
	return nil
}

func (r *records) Delete(ctx context.Context, k ds.Key) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	prev, err := r.inner.Get(ctx, k)
	if err != nil && !errors.Is(err, ds.ErrNotFound) {
		return err
	}
	if err := r.inner.Delete(ctx, k); err != nil {
		return err
	}
	if err == nil {
		r.size -= cost(k, prev)
		r.count--
		if p := r.provider(k); p != "" {
			if r.byPeer[p]--; r.byPeer[p] <= 0 {
				delete(r.byPeer, p)
			}
		}
		if pk := parent(k); pk != "" {
			ks := slices.DeleteFunc(r.byKey[pk], func(x ds.Key) bool { return x == k })
			if len(ks) == 0 {
				delete(r.byKey, pk)
			} else {
				r.byKey[pk] = ks
			}
		}
	}
	return nil
}

// Size returns the bytes the records take, as counted against the cap.
func (r *records) Size() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.size
}

func (r *records) Get(ctx context.Context, k ds.Key) ([]byte, error) { return r.inner.Get(ctx, k) }
func (r *records) Has(ctx context.Context, k ds.Key) (bool, error)   { return r.inner.Has(ctx, k) }
func (r *records) GetSize(ctx context.Context, k ds.Key) (int, error) {
	return r.inner.GetSize(ctx, k)
}

// Query answers a query on the prefix /providers/<key> from the index, copying out only that
// key's records; any other query goes to the map, which copies out all of them.
func (r *records) Query(ctx context.Context, q dsq.Query) (dsq.Results, error) {
	pk := strings.TrimSuffix(q.Prefix, "/")
	if pk == "" || parent(ds.RawKey(pk+"/x")) != pk {
		return r.inner.Query(ctx, q)
	}
	r.mu.Lock()
	keys := r.byKey[pk]
	entries := make([]dsq.Entry, 0, len(keys))
	for _, k := range keys {
		v, err := r.inner.Get(ctx, k)
		if err != nil { // the index and the map change together, under mu
			continue
		}
		e := dsq.Entry{Key: k.String(), Size: len(v)}
		if !q.KeysOnly {
			e.Value = v
		}
		entries = append(entries, e)
	}
	r.mu.Unlock()
	return dsq.NaiveQueryApply(q, dsq.ResultsWithEntries(q, entries)), nil
}
func (r *records) Sync(context.Context, ds.Key) error { return nil }
func (r *records) Close() error                       { return nil }

// Batch applies its writes through Put and Delete, so they count against the caps. A record
// refused for the caps is skipped, not the rest of the batch: the DHT batches records from many
// peers together, and one over its quota must not lose the others theirs.
func (r *records) Batch(context.Context) (ds.Batch, error) { return &recordBatch{r: r}, nil }

type recordBatch struct {
	r   *records
	ops []batchOp
}

type batchOp struct {
	k   ds.Key
	v   []byte
	del bool
}

func (b *recordBatch) Put(_ context.Context, k ds.Key, v []byte) error {
	b.ops = append(b.ops, batchOp{k: k, v: v})
	return nil
}

func (b *recordBatch) Delete(_ context.Context, k ds.Key) error {
	b.ops = append(b.ops, batchOp{k: k, del: true})
	return nil
}

func (b *recordBatch) Commit(ctx context.Context) error {
	var errs []error
	for _, op := range b.ops {
		var err error
		if op.del {
			err = b.r.Delete(ctx, op.k)
		} else {
			err = b.r.Put(ctx, op.k, op.v)
		}
		if err != nil && !errors.Is(err, ErrRecordsFull) {
			errs = append(errs, err)
		}
	}
	b.ops = nil
	return errors.Join(errs...)
}
