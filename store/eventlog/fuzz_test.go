package eventlog_test

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"peer/store/eventlog"
)

func FuzzDecodeRecord(f *testing.F) {
	f.Add([]byte{})
	f.Add(eventlog.AppendRecord(nil, nil))
	f.Add(eventlog.AppendRecord(nil, []byte("payload")))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		rec, n, err := eventlog.DecodeRecord(data)
		if err != nil {
			if !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, eventlog.ErrCorrupt) {
				t.Fatalf("unexpected error kind: %v", err)
			}
		} else if n > len(data) || !bytes.Equal(eventlog.AppendRecord(nil, rec), data[:n]) {
			t.Fatalf("decoded record does not re-encode to its bytes")
		}
		// Any payload round-trips.
		if len(data) <= eventlog.MaxRecordSize {
			enc := eventlog.AppendRecord([]byte("prefix"), data)
			rec, n, err := eventlog.DecodeRecord(enc[len("prefix"):])
			if err != nil || n != len(enc)-len("prefix") || !bytes.Equal(rec, data) {
				t.Fatalf("round trip failed: n=%d err=%v", n, err)
			}
		}
	})
}

// FuzzOpen opens arbitrary files. Open either refuses with ErrCorrupt and leaves the file as it
// was, or keeps a prefix of it made of whole, verified records and can append.
func FuzzOpen(f *testing.F) {
	good := []byte("PEERLOG\x01")
	for _, r := range []string{"", "a", "hello"} {
		good = eventlog.AppendRecord(good, []byte(r))
	}
	f.Add(good)
	f.Add(good[:len(good)-3])
	f.Add(good[:5])
	f.Add(append(bytes.Clone(good), 0, 0, 0, 0))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(t.TempDir(), "events.log")
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		l, rec, err := eventlog.Open(path, eventlog.Options{NoSync: true})
		after, rerr := os.ReadFile(path)
		if rerr != nil {
			t.Fatal(rerr)
		}
		if err != nil {
			if !errors.Is(err, eventlog.ErrCorrupt) {
				t.Fatalf("unexpected error kind: %v", err)
			}
			if !bytes.Equal(after, data) {
				t.Fatal("Open changed a file it refused")
			}
			return
		}
		defer l.Close()
		if len(data) < eventlog.HeaderSize {
			if string(after) != "PEERLOG\x01" {
				t.Fatalf("short file became %q", after)
			}
		} else if !bytes.HasPrefix(data, after) {
			t.Fatal("kept bytes are not a prefix of the file")
		}
		if int64(len(after)) != l.End() || rec.Cut() != (len(data) > 0 && len(after) != len(data)) {
			t.Fatalf("end %d, file %d -> %d, recovery %+v", l.End(), len(data), len(after), rec)
		}
		reenc := []byte("PEERLOG\x01")
		if err := l.Scan(eventlog.HeaderSize, func(_ int64, r []byte) error {
			reenc = eventlog.AppendRecord(reenc, r)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(reenc, after) {
			t.Fatal("records do not re-encode to the kept file")
		}
		if _, err := l.Append([]byte("x")); err != nil {
			t.Fatal(err)
		}
	})
}
