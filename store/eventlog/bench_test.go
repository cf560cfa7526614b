package eventlog_test

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"peer/store/eventlog"
)

// benchRecord is about the size of a typical index event.
var benchRecord = []byte(`{"type":"FileAdded","cid":"bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku","size":1}`)

func BenchmarkAppendSync(b *testing.B) {
	l, _, err := eventlog.Open(filepath.Join(b.TempDir(), "events.log"), eventlog.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	b.SetBytes(int64(len(benchRecord)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := l.Append(benchRecord); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAppendParallel runs many appenders at once (32 per core); group commit should make
// fsyncs/op much smaller than 1.
func BenchmarkAppendParallel(b *testing.B) {
	l, _, err := eventlog.Open(filepath.Join(b.TempDir(), "events.log"), eventlog.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	b.SetBytes(int64(len(benchRecord)))
	b.ReportAllocs()
	b.SetParallelism(32)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := l.Append(benchRecord); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(eventlog.Flushes(l))/float64(b.N), "fsyncs/op")
}

// BenchmarkOpen1M opens a log of one million ~100-byte records: ns/op is the open time.
func BenchmarkOpen1M(b *testing.B) {
	path := filepath.Join(b.TempDir(), "events.log")
	data := []byte("PEERLOG\x01")
	for i := range 1_000_000 {
		data = eventlog.AppendRecord(data, fmt.Appendf(benchRecord[:len(benchRecord):len(benchRecord)], "%d", i))
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		l, rec, err := eventlog.Open(path, eventlog.Options{})
		if err != nil || rec.Cut() || l.End() != int64(len(data)) {
			b.Fatalf("open: %v, %+v", err, rec)
		}
		if err := l.Close(); err != nil {
			b.Fatal(err)
		}
	}
}
