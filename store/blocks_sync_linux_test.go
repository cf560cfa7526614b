package store

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"

	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multihash"
	"golang.org/x/sys/unix"
)

// BenchmarkBlockSync times only the sync that makes an add's blocks durable, 256 fresh blocks of
// 1 MiB (a 256 MiB add) each round: "fsync" is the store's (an fsync of each file, 16 at a time,
// and of the directories), "syncfs" the one syncfs of the whole file system it replaced. Compare
// them in alternating runs (-bench 'BlockSync/fsync', then 'BlockSync/syncfs', several times), so
// the machine's drift hits both alike; docs/BENCHMARKS.md has the figures.
func BenchmarkBlockSync(b *testing.B) {
	const n, size = 256, 1 << 20
	for _, variant := range []string{"fsync", "syncfs"} {
		b.Run(variant, func(b *testing.B) {
			b.SetBytes(n * size)
			data := make([]byte, size)
			seq := uint64(0)
			for b.Loop() {
				b.StopTimer()
				dir := b.TempDir()
				bf := newBlocks(filepath.Join(dir, "blocks"))
				for range n {
					seq++
					binary.LittleEndian.PutUint64(data, seq)
					binary.LittleEndian.PutUint64(data[size-8:], uint64(os.Getpid()))
					h, err := multihash.Sum(data, multihash.SHA2_256, -1)
					if err != nil {
						b.Fatal(err)
					}
					if err := bf.put(cid.NewCidV1(cid.Raw, h), data); err != nil {
						b.Fatal(err)
					}
				}
				b.StartTimer()
				if variant == "fsync" {
					if err := bf.sync(); err != nil {
						b.Fatal(err)
					}
				} else {
					d, err := os.Open(bf.dir)
					if err != nil {
						b.Fatal(err)
					}
					if err := unix.Syncfs(int(d.Fd())); err != nil {
						b.Fatal(err)
					}
					d.Close()
				}
				b.StopTimer()
				os.RemoveAll(dir)
				b.StartTimer()
			}
		})
	}
}
