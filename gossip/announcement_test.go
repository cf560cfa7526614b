package gossip_test

import (
	"bytes"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/binary"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"
	"github.com/stretchr/testify/require"

	"peer/gossip"
)

var now = time.UnixMilli(1_790_000_000_000)

func sha256CID(t testing.TB, version uint64, codec uint64, s string) cid.Cid {
	t.Helper()
	sum := sha256.Sum256([]byte(s))
	m, err := mh.Encode(sum[:], mh.SHA2_256)
	require.NoError(t, err)
	if version == 0 {
		return cid.NewCidV0(m)
	}
	return cid.NewCidV1(codec, m)
}

func valid(t testing.TB) gossip.Announcement {
	return gossip.Announcement{
		Root:   sha256CID(t, 1, cid.Raw, "hello"),
		Name:   "hello.txt",
		Size:   5,
		Time:   now,
		Fields: map[string]string{"mime": "text/plain"},
	}
}

func TestRoundTrip(t *testing.T) {
	cases := map[string]func(*gossip.Announcement){
		"raw leaf":   func(*gossip.Announcement) {},
		"dag-pb":     func(a *gossip.Announcement) { a.Root = sha256CID(t, 1, cid.DagProtobuf, "x") },
		"cidv0":      func(a *gossip.Announcement) { a.Root = sha256CID(t, 0, 0, "x") },
		"no fields":  func(a *gossip.Announcement) { a.Fields = nil },
		"withdrawal": func(a *gossip.Announcement) { a.Withdraw, a.Name, a.Size = true, "", 0 },
		"unicode":    func(a *gossip.Announcement) { a.Name = "résumé – 日本.pdf" },
		"max size":   func(a *gossip.Announcement) { a.Size = gossip.MaxSize },
		"many fields": func(a *gossip.Announcement) {
			a.Fields = map[string]string{}
			for i := range gossip.MaxFields {
				a.Fields[string(rune('a'+i))] = strings.Repeat("v", 200)
			}
		},
	}
	for name, mod := range cases {
		t.Run(name, func(t *testing.T) {
			a := valid(t)
			mod(&a)
			require.NoError(t, a.Validate(now, time.Minute))
			b, err := a.MarshalBinary()
			require.NoError(t, err)
			require.LessOrEqual(t, len(b), gossip.MaxMessageSize)
			require.Equal(t, byte(gossip.Version), b[0])
			var got gossip.Announcement
			require.NoError(t, got.UnmarshalBinary(b))
			require.True(t, a.Time.Equal(got.Time))
			got.Time = a.Time
			require.Equal(t, a, got)
		})
	}
}

func TestEncodingIsCompact(t *testing.T) {
	a := valid(t)
	a.Fields = nil
	b, err := a.MarshalBinary()
	require.NoError(t, err)
	// version, flags, CID (36+1), name (9+1), size (1), time (6), fields (1)
	require.Equal(t, 2+37+10+1+6+1, len(b))
}

func TestTimeTruncatedToMillisecond(t *testing.T) {
	a := valid(t)
	a.Time = now.Add(123456 * time.Nanosecond)
	b, err := a.MarshalBinary()
	require.NoError(t, err)
	var got gossip.Announcement
	require.NoError(t, got.UnmarshalBinary(b))
	require.Equal(t, now.UnixMilli(), got.Time.UnixMilli())
}

func TestMarshalRejectsOversize(t *testing.T) {
	a := valid(t)
	a.Fields = map[string]string{}
	for i := range 10 {
		a.Fields[string(rune('a'+i))] = strings.Repeat("v", 500)
	}
	_, err := a.MarshalBinary()
	require.ErrorIs(t, err, gossip.ErrTooLarge)

	_, err = gossip.Announcement{Time: now}.MarshalBinary()
	require.ErrorIs(t, err, gossip.ErrBadCID)
	_, err = gossip.Announcement{Root: valid(t).Root}.MarshalBinary()
	require.ErrorIs(t, err, gossip.ErrBadTime)
}

func TestValidate(t *testing.T) {
	sum512 := sha512.Sum512([]byte("x"))
	m512, err := mh.Encode(sum512[:], mh.SHA2_512)
	require.NoError(t, err)
	idHash, err := mh.Sum([]byte("x"), mh.IDENTITY, -1)
	require.NoError(t, err)
	cases := []struct {
		name string
		mod  func(*gossip.Announcement)
		want error
	}{
		{"undefined cid", func(a *gossip.Announcement) { a.Root = cid.Undef }, gossip.ErrBadCID},
		{"dag-cbor", func(a *gossip.Announcement) { a.Root = sha256CID(t, 1, cid.DagCBOR, "x") }, gossip.ErrBadCID},
		{"sha2-512", func(a *gossip.Announcement) { a.Root = cid.NewCidV1(cid.Raw, m512) }, gossip.ErrBadCID},
		{"identity hash", func(a *gossip.Announcement) { a.Root = cid.NewCidV1(cid.Raw, idHash) }, gossip.ErrBadCID},
		{"empty name", func(a *gossip.Announcement) { a.Name = "" }, gossip.ErrBadName},
		{"dot", func(a *gossip.Announcement) { a.Name = "." }, gossip.ErrBadName},
		{"dotdot", func(a *gossip.Announcement) { a.Name = ".." }, gossip.ErrBadName},
		{"slash", func(a *gossip.Announcement) { a.Name = "a/b" }, gossip.ErrBadName},
		{"backslash", func(a *gossip.Announcement) { a.Name = `a\b` }, gossip.ErrBadName},
		{"nul", func(a *gossip.Announcement) { a.Name = "a\x00b" }, gossip.ErrBadName},
		{"newline", func(a *gossip.Announcement) { a.Name = "a\nb" }, gossip.ErrBadName},
		{"c1 control", func(a *gossip.Announcement) { a.Name = "a\u0085b" }, gossip.ErrBadName},
		{"bad utf-8", func(a *gossip.Announcement) { a.Name = "a\xffb" }, gossip.ErrBadName},
		{"bidi override", func(a *gossip.Announcement) { a.Name = "invoice\u202efdp.exe" }, gossip.ErrBadName},
		{"bidi isolate", func(a *gossip.Announcement) { a.Name = "a\u2066b\u2069" }, gossip.ErrBadName},
		{"zero width", func(a *gossip.Announcement) { a.Name = "pay\u200bpal.pdf" }, gossip.ErrBadName},
		{"byte order mark", func(a *gossip.Announcement) { a.Name = "\ufeffa" }, gossip.ErrBadName},
		{"line separator", func(a *gossip.Announcement) { a.Name = "a\u2028b" }, gossip.ErrBadName},
		{"long name", func(a *gossip.Announcement) { a.Name = strings.Repeat("é", 128) }, gossip.ErrBadName},
		{"absurd size", func(a *gossip.Announcement) { a.Size = gossip.MaxSize + 1 }, gossip.ErrBadSize},
		{"zero time", func(a *gossip.Announcement) { a.Time = time.Time{} }, gossip.ErrBadTime},
		{"future", func(a *gossip.Announcement) { a.Time = now.Add(time.Minute + time.Millisecond) }, gossip.ErrFutureTime},
		{"too many fields", func(a *gossip.Announcement) {
			for i := range gossip.MaxFields + 1 {
				a.Fields[string(rune('a'+i))] = ""
			}
		}, gossip.ErrBadFields},
		{"empty key", func(a *gossip.Announcement) { a.Fields[""] = "x" }, gossip.ErrBadFields},
		{"upper-case key", func(a *gossip.Announcement) { a.Fields["Mime"] = "x" }, gossip.ErrBadFields},
		{"long key", func(a *gossip.Announcement) { a.Fields[strings.Repeat("k", gossip.MaxFieldKeyLen+1)] = "x" }, gossip.ErrBadFields},
		{"long value", func(a *gossip.Announcement) { a.Fields["k"] = strings.Repeat("v", gossip.MaxFieldValueLen+1) }, gossip.ErrBadFields},
		{"control in value", func(a *gossip.Announcement) { a.Fields["k"] = "a\tb" }, gossip.ErrBadFields},
		{"fields too large together", func(a *gossip.Announcement) {
			for i := range gossip.MaxFields - 1 {
				k := string(rune('a'+i)) + strings.Repeat("k", gossip.MaxFieldKeyLen-1)
				a.Fields[k] = strings.Repeat("v", gossip.MaxFieldValueLen)
			}
		}, gossip.ErrTooLarge},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := valid(t)
			c.mod(&a)
			require.ErrorIs(t, a.Validate(now, time.Minute), c.want)
		})
	}
	t.Run("limits accepted", func(t *testing.T) {
		a := valid(t)
		a.Name = strings.Repeat("n", gossip.MaxNameLen)
		a.Time = now.Add(time.Minute)
		a.Size = gossip.MaxSize
		require.NoError(t, a.Validate(now, time.Minute))
		a.Time = now.Add(-24 * 365 * time.Hour)
		require.NoError(t, a.Validate(now, time.Minute), "old announcements are fine")
	})
}

// encode builds a message by hand, to test what MarshalBinary never
// produces.
func encode(version, flags byte, root []byte, name string, size, ms uint64, fields ...string) []byte {
	b := []byte{version, flags}
	b = binary.AppendUvarint(b, uint64(len(root)))
	b = append(b, root...)
	b = binary.AppendUvarint(b, uint64(len(name)))
	b = append(b, name...)
	b = binary.AppendUvarint(b, size)
	b = binary.AppendUvarint(b, ms)
	b = binary.AppendUvarint(b, uint64(len(fields)/2))
	for _, f := range fields {
		b = binary.AppendUvarint(b, uint64(len(f)))
		b = append(b, f...)
	}
	return b
}

func TestUnmarshalStrict(t *testing.T) {
	root := valid(t).Root.Bytes()
	ms := uint64(now.UnixMilli())
	good := encode(1, 0, root, "a", 1, ms, "k", "v")
	var a gossip.Announcement
	require.NoError(t, a.UnmarshalBinary(good))

	nonMinimal := []byte{1, 0}
	nonMinimal = append(nonMinimal, byte(len(root))|0x80, 0x00) // overlong length
	nonMinimal = append(nonMinimal, encode(1, 0, root, "a", 1, ms)[3:]...)

	cases := []struct {
		name string
		b    []byte
		want error
	}{
		{"empty", nil, gossip.ErrMalformed},
		{"one byte", []byte{1}, gossip.ErrMalformed},
		{"version 0", encode(0, 0, root, "a", 1, ms), gossip.ErrVersion},
		{"version 2", encode(2, 0, root, "a", 1, ms), gossip.ErrVersion},
		{"unknown flag", encode(1, 2, root, "a", 1, ms), gossip.ErrMalformed},
		{"trailing byte", append(bytes.Clone(good), 0), gossip.ErrMalformed},
		{"truncated", good[:len(good)-1], gossip.ErrMalformed},
		{"non-minimal varint", nonMinimal, gossip.ErrMalformed},
		{"length overrun", encode(1, 0, root, "a", 1, ms)[:10], gossip.ErrMalformed},
		{"bad cid", encode(1, 0, []byte{1, 2, 3}, "a", 1, ms), gossip.ErrBadCID},
		{"cid with trailing bytes", encode(1, 0, append(bytes.Clone(root), 0), "a", 1, ms), gossip.ErrBadCID},
		{"zero time", encode(1, 0, root, "a", 1, 0), gossip.ErrBadTime},
		{"duplicate keys", encode(1, 0, root, "a", 1, ms, "k", "v", "k", "w"), gossip.ErrMalformed},
		{"unsorted keys", encode(1, 0, root, "a", 1, ms, "z", "v", "a", "w"), gossip.ErrMalformed},
		{"too many fields", encode(1, 0, root, "a", 1, ms, strings.Split(strings.Repeat("k,v,", gossip.MaxFields+1), ",")[:2*(gossip.MaxFields+1)]...), gossip.ErrBadFields},
		{"oversized", append(bytes.Clone(good), make([]byte, gossip.MaxMessageSize)...), gossip.ErrTooLarge},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var a gossip.Announcement
			err := a.UnmarshalBinary(c.b)
			require.Error(t, err)
			require.True(t, errors.Is(err, c.want), "got %v, want %v", err, c.want)
		})
	}
}

// FuzzUnmarshalBinary checks that decoding never panics, and that whatever
// decodes re-encodes to the same bytes (the encoding is canonical).
func FuzzUnmarshalBinary(f *testing.F) {
	for _, mod := range []func(*gossip.Announcement){
		func(*gossip.Announcement) {},
		func(a *gossip.Announcement) { a.Withdraw, a.Fields = true, nil },
		func(a *gossip.Announcement) { a.Root = sha256CID(f, 0, 0, "v0"); a.Name = "日本" },
	} {
		a := valid(f)
		mod(&a)
		b, err := a.MarshalBinary()
		require.NoError(f, err)
		f.Add(b)
	}
	f.Add([]byte{1, 0})
	f.Add([]byte{1, 1, 0x80})
	f.Fuzz(func(t *testing.T, b []byte) {
		var a gossip.Announcement
		if err := a.UnmarshalBinary(b); err != nil {
			return
		}
		out, err := a.MarshalBinary()
		if err != nil {
			t.Fatalf("decoded %x but cannot re-encode: %v", b, err)
		}
		if !bytes.Equal(out, b) {
			t.Fatalf("re-encoding differs:\n in %x\nout %x", b, out)
		}
		_ = a.Validate(time.Now(), time.Minute)
	})
}

func BenchmarkMarshal(b *testing.B) {
	a := valid(b)
	n, err := a.MarshalBinary()
	require.NoError(b, err)
	b.SetBytes(int64(len(n)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := a.MarshalBinary(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkUnmarshalValidate(b *testing.B) {
	enc, err := valid(b).MarshalBinary()
	require.NoError(b, err)
	b.SetBytes(int64(len(enc)))
	b.ReportAllocs()
	for b.Loop() {
		var a gossip.Announcement
		if err := a.UnmarshalBinary(enc); err != nil {
			b.Fatal(err)
		}
		if err := a.Validate(now, time.Minute); err != nil {
			b.Fatal(err)
		}
	}
}
