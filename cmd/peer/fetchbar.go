package main

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"peer/internal/config"
	"peer/node/api"
)

// fetchBar draws a fetch's progress as one line on a terminal, redrawn in place (carriage return,
// then erase to the end of the line), and leaves it on screen when the fetch ends. The line
// fits in 80 columns for any figures short of terabytes and hours, so that it does not wrap on a
// common terminal (a wrapped line cannot be redrawn in place).
type fetchBar struct {
	w     io.Writer
	last  time.Time // when the line was last drawn
	drawn bool      // a line is on screen and not ended
	line  string    // what it shows
}

// barEvery is how often the line is redrawn at most.
const barEvery = 100 * time.Millisecond

// progress redraws the line for p, unless it was drawn less than barEvery ago.
func (b *fetchBar) progress(p api.FetchProgress) {
	if b.drawn && time.Since(b.last) < barEvery {
		return
	}
	var left string
	if p.Bytes > 0 && p.Rate > 0 {
		left = durationText(time.Duration(float64(p.Bytes-p.BytesDone)/p.Rate*float64(time.Second))) + " left"
	} else if p.Bytes > 0 {
		left = "-- left"
	}
	b.draw(folderLine(p, barLine(p.Bytes, p.BytesDone, p.Rate, p.Peers, left)))
}

// done draws the final line of a fetch that completed: the whole file, the average rate of what
// this fetch received, the peers it came from and the time it took.
func (b *fetchBar) done(ev api.FetchEvent) {
	if ev.Received == 0 && ev.Duration == 0 {
		return // the file was already in place: nothing was fetched
	}
	size := int64(0)
	if ev.File != nil {
		size = int64(ev.File.Size)
	}
	rate := float64(ev.Received) / max(ev.Duration.Seconds(), 1e-9)
	b.draw(barLine(size, size, rate, ev.Peers, "in "+durationText(ev.Duration)))
}

// end leaves the line on screen and moves to the next one.
func (b *fetchBar) end() {
	if b.drawn {
		fmt.Fprint(b.w, "\n")
		b.drawn = false
	}
}

// note prints a line of its own above the bar.
func (b *fetchBar) note(s string) {
	if b.drawn {
		fmt.Fprintf(b.w, "\r\x1b[K%s\n%s", s, b.line)
		return
	}
	fmt.Fprintln(b.w, s)
}

func (b *fetchBar) draw(line string) {
	b.line = line
	fmt.Fprintf(b.w, "\r%s\x1b[K", line)
	b.drawn, b.last = true, time.Now()
}

// barLine is `41% [######----------] 430 MiB / 1 GiB  40.1 MB/s  2 peers  16s left`, or,
// before the file's size is known, `fetching: waiting for the first block…`.
func barLine(size, done int64, rate float64, peers int, tail string) string {
	if size <= 0 {
		return "fetching: waiting for the first block from a peer…"
	}
	const width = 16
	done = min(max(done, 0), size)
	pct := int(done * 100 / size)
	fill := int(done * width / size)
	bar := strings.Repeat("#", fill) + strings.Repeat("-", width-fill)
	s := fmt.Sprintf("%3d%% [%s] %s / %s  %s  %s", pct, bar, sizeText(uint64(done)), sizeText(uint64(size)), rateText(rate), plural(peers, "peer"))
	if tail != "" {
		s += "  " + tail
	}
	return s
}

// sizeText gives a size in binary units: 512 B, 1.5 KiB, 645 MiB, 1 GiB.
func sizeText(n uint64) string { return config.FormatSize(n) }

// rateText gives a rate in decimal units, the family every rate the command prints uses:
// 850 kB/s, 40.1 MB/s, 1.2 GB/s.
func rateText(bps float64) string {
	switch {
	case bps >= 1e9:
		return fmt.Sprintf("%.1f GB/s", bps/1e9)
	case bps >= 1e6:
		return fmt.Sprintf("%.1f MB/s", bps/1e6)
	default:
		return fmt.Sprintf("%.0f kB/s", bps/1e3)
	}
}

// durationText rounds a duration for people: 850ms, 14s, 3m05s, 2h10m.
func durationText(d time.Duration) string {
	switch {
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	case d < 10*time.Second:
		return d.Round(100 * time.Millisecond).String()
	case d < time.Minute:
		return d.Round(time.Second).String()
	case d < time.Hour:
		d = d.Round(time.Second)
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	default:
		d = d.Round(time.Minute)
		return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	}
}

// plural gives "1 peer", "2 peers", "0 peers".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// folderLine is the line for a folder: while its blocks come (its size is known only once they
// are all here) `fetching: 430 MiB  40.1 MB/s  2 peers`, then while its files are written
// `writing: 1,024/10,000 files of 1 GiB`; otherwise line, a file's.
func folderLine(p api.FetchProgress, line string) string {
	switch {
	case p.Files > 0:
		return fmt.Sprintf("writing: %s of %s", filesText(p.FilesDone, p.Files), sizeText(uint64(p.Bytes)))
	case p.Bytes <= 0 && p.BytesDone > 0:
		return fmt.Sprintf("fetching: %s  %s  %s", sizeText(uint64(p.BytesDone)), rateText(p.Rate), plural(p.Peers, "peer"))
	}
	return line
}

// filesText is a folder's files written out of all: "1,024/10,000 files".
func filesText(done, total uint64) string {
	return fmt.Sprintf("%s/%s files", groupDigits(done), groupDigits(total))
}

// groupDigits writes n with a comma between groups of three digits.
func groupDigits(n uint64) string {
	s := strconv.FormatUint(n, 10)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
