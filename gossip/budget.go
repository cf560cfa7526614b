package gossip

import (
	"context"
	"math"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"golang.org/x/time/rate"
)

// Budgets bound what any one peer can make a node take in, beyond the per-author rate limit,
// which costs nothing to dodge: a key per announcement. They count announcements accepted by
// the validator and entries taken from a catalog reply, each of which the node records in its
// event log.
const (
	// Per forwarder (the directly connected peer that handed us a message, msg.ReceivedFrom):
	// 10 announcements a second with bursts of 200, and 2,000 an hour.
	forwarderRate   = 10
	forwarderBurst  = 200
	forwarderHourly = 2000
	// Per author: 2,000 announcements an hour (a directory of 2,000 files announced at once).
	authorHourly = 2000
	// Authors never seen before (not connected, not known from an earlier announcement):
	// 100 an hour through one forwarder or one catalog reply, 1,000 an hour in all.
	newAuthorsPerForwarder = 100
	newAuthorsHourly       = 1000
	// knownFor is how long an author stays known after its last accepted announcement.
	knownFor = 48 * time.Hour
)

// Scoring of forwarders that deliver mostly strangers (authors that are neither connected to
// us, nor the forwarder itself, nor known): each delivery of a stranger counts +1 and of anyone
// else −1 against a running tally that never goes below zero and fades to 1/e in an hour.
// Beyond strangerTolerance, every strangerStep points of the tally cost a point of application
// score, down to −strangerPenaltyMax, which is below the gossip and publish thresholds (no
// gossip, none of our publishes, pruned from the mesh) but above the graylist one: the
// forwarder's RPCs are still read, and the budgets above cap what they bring.
//
// The tolerance is the most new authors an honest node takes in an hour (newAuthorsHourly):
// an honest relay, which applies the same budgets, passes on no more strangers than that, so a
// node next to a flooded one does not score its honest neighbour down for what leaked through.
const (
	strangerTolerance  = newAuthorsHourly
	strangerStep       = 10
	strangerPenaltyMax = 50
	strangerFade       = time.Hour
)

// Reasons counted in Stats.Rejected for messages and catalog entries the budgets leave out.
const (
	reasonForwarderRate = "forwarder rate"
	reasonForwarderHour = "forwarder hourly budget"
	reasonAuthorHour    = "author hourly budget"
	reasonNewAuthors    = "new authors budget"
)

// budgets holds the token buckets of forwarders and authors, the set of known authors, and the
// strangers tally of each forwarder. Its methods are safe for concurrent use and never call out.
type budgets struct {
	mu         sync.Mutex
	fwd        map[peer.ID]*forwarder
	authors    map[peer.ID]*rate.Limiter // hourly
	known      map[peer.ID]time.Time     // author → last accepted
	newAuthors *rate.Limiter
}

type forwarder struct {
	rate, hourly, newAuthors *rate.Limiter
	strangers                float64 // the tally, as of at
	at                       time.Time
}

func perHour(n int) *rate.Limiter { return rate.NewLimiter(rate.Limit(float64(n)/3600), n) }

func newBudgets() *budgets {
	return &budgets{
		fwd:        make(map[peer.ID]*forwarder),
		authors:    make(map[peer.ID]*rate.Limiter),
		known:      make(map[peer.ID]time.Time),
		newAuthors: perHour(newAuthorsHourly),
	}
}

func (b *budgets) forwarderLocked(p peer.ID) *forwarder {
	f := b.fwd[p]
	if f == nil {
		f = &forwarder{
			rate:       rate.NewLimiter(forwarderRate, forwarderBurst),
			hourly:     perHour(forwarderHourly),
			newAuthors: perHour(newAuthorsPerForwarder),
		}
		b.fwd[p] = f
	}
	return f
}

// tallyLocked adds d to f's strangers tally, faded to now, and returns it.
func (f *forwarder) tallyLocked(now time.Time, d float64) float64 {
	if !f.at.IsZero() {
		f.strangers *= math.Exp(-float64(now.Sub(f.at)) / float64(strangerFade))
	}
	// Credit for honest deliveries does not accumulate past zero: it cannot be banked and then
	// spent on strangers.
	f.strangers, f.at = max(f.strangers+d, 0), now
	return f.strangers
}

// isStrangerLocked says whether author is a stranger in a message from src.
func (b *budgets) isStrangerLocked(src, author peer.ID, connected bool) bool {
	if author == src || connected {
		return false
	}
	_, ok := b.known[author]
	return !ok
}

// admit decides on one announcement by author that src handed us, by gossip (perSecond) or
// in a catalog reply (the per-second rate does not apply; the reply's own caps do). It tallies
// the delivery for src's score, and returns "" if every budget has room (and takes from each),
// or the reason it has not (and takes nothing).
func (b *budgets) admit(src, author peer.ID, connected, perSecond bool, now time.Time) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	f := b.forwarderLocked(src)
	stranger := b.isStrangerLocked(src, author, connected)
	if perSecond {
		d := -1.0
		if stranger {
			d = 1
		}
		f.tallyLocked(now, d)
	}
	_, known := b.known[author]
	newAuthor := !known && !connected && author != src
	a := b.authors[author]
	switch {
	case perSecond && f.rate.TokensAt(now) < 1:
		return reasonForwarderRate
	case f.hourly.TokensAt(now) < 1:
		return reasonForwarderHour
	case a != nil && a.TokensAt(now) < 1:
		return reasonAuthorHour
	case newAuthor && (f.newAuthors.TokensAt(now) < 1 || b.newAuthors.TokensAt(now) < 1):
		return reasonNewAuthors
	}
	if perSecond {
		f.rate.AllowN(now, 1)
	}
	f.hourly.AllowN(now, 1)
	if a == nil {
		a = perHour(authorHourly)
		b.authors[author] = a
	}
	a.AllowN(now, 1)
	if newAuthor {
		f.newAuthors.AllowN(now, 1)
		b.newAuthors.AllowN(now, 1)
	}
	b.known[author] = now
	return ""
}

// isKnown reports whether an announcement by author was accepted before.
func (b *budgets) isKnown(author peer.ID) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	_, ok := b.known[author]
	return ok
}

// fullPenalty is the tally that takes a forwarder's score to −strangerPenaltyMax at once.
const fullPenalty = strangerTolerance + strangerStep*strangerPenaltyMax

// penalize counts n deliveries of strangers against src, for catalog entries it sent beyond
// what a reply may hold.
func (b *budgets) penalize(src peer.ID, n int, now time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.forwarderLocked(src).tallyLocked(now, float64(n))
}

// score is the application-specific score of p (pubsub's PeerScoreParams.AppSpecificScore):
// zero, or below it for a forwarder of strangers.
func (b *budgets) score(p peer.ID) float64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	f := b.fwd[p]
	if f == nil {
		return 0
	}
	t := f.tallyLocked(time.Now(), 0)
	return -min(max(t-strangerTolerance, 0)/strangerStep, strangerPenaltyMax)
}

// sweep forgets what behaves as new: forwarders and authors whose buckets have refilled (and
// whose tally has faded), and authors not heard from for knownFor.
func (b *budgets) sweep(now time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for p, f := range b.fwd {
		if f.rate.TokensAt(now) >= forwarderBurst && f.hourly.TokensAt(now) >= forwarderHourly &&
			f.newAuthors.TokensAt(now) >= newAuthorsPerForwarder && f.tallyLocked(now, 0) < 1 {
			delete(b.fwd, p)
		}
	}
	for p, a := range b.authors {
		if a.TokensAt(now) >= authorHourly {
			delete(b.authors, p)
		}
	}
	for p, t := range b.known {
		if now.Sub(t) >= knownFor {
			delete(b.known, p)
		}
	}
}

func (b *budgets) janitor(ctx context.Context) {
	tick := time.NewTicker(time.Minute)
	defer tick.Stop()
	for {
		select {
		case now := <-tick.C:
			b.sweep(now)
		case <-ctx.Done():
			return
		}
	}
}
