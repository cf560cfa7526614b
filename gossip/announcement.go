package gossip

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
	mh "github.com/multiformats/go-multihash"

	"peer/internal/names"
)

// Version is the version byte that starts every encoded announcement. A node
// rejects announcements of any other version.
const Version = 1

// MaxMessageSize caps an encoded announcement, and so the data of every
// message on the topic.
const MaxMessageSize = 4 << 10

// Limits of the fields of an announcement. They are part of the protocol: a
// node rejects what exceeds them.
const (
	MaxNameLen       = 255             // bytes of UTF-8
	MaxSize          = uint64(1) << 50 // 1 PiB
	MaxFields        = 16              // optional fields per announcement
	MaxFieldKeyLen   = 64              // bytes; [a-z0-9._-]
	MaxFieldValueLen = 256             // bytes of UTF-8, no control characters
)

// Multicodec codes of the content an announcement may name.
const (
	codecRaw     = 0x55
	codecDagPB   = 0x70
	flagWithdraw = 1 << 0
	knownFlags   = flagWithdraw
)

// Errors of decoding and validation. Every error UnmarshalBinary and Validate
// return wraps one of them; the validator also uses them to count rejections.
var (
	ErrTooLarge   = errors.New("announcement too large")
	ErrMalformed  = errors.New("malformed announcement")
	ErrVersion    = errors.New("unsupported announcement version")
	ErrBadCID     = errors.New("unsupported or invalid CID")
	ErrBadName    = errors.New("invalid file name")
	ErrBadSize    = errors.New("absurd file size")
	ErrBadTime    = errors.New("invalid time")
	ErrFutureTime = errors.New("time too far in the future")
	ErrBadFields  = errors.New("invalid extra fields")
)

// Announcement says that Provider shares (or, with Withdraw, no longer
// shares) the file whose UnixFS root is Root.
type Announcement struct {
	// Root is the root CID of the file: CIDv0 or CIDv1, raw or dag-pb, sha2-256.
	Root cid.Cid
	// Name is a file name: no '/', '\\', NUL, control characters or
	// characters that disguise it (names.Deceptive), not "."
	// or "..", at most MaxNameLen bytes of UTF-8. It may be empty only in a
	// withdrawal.
	Name string
	// Size is the file's length in bytes, at most MaxSize.
	Size uint64
	// Time is the sender's clock when it made the announcement; it travels
	// as unix milliseconds, so it is truncated to the millisecond.
	Time time.Time
	// Withdraw says the sender no longer provides Root.
	Withdraw bool
	// Fields are optional extras such as "mime": at most MaxFields entries,
	// keys of [a-z0-9._-] up to MaxFieldKeyLen bytes, values of UTF-8 up to
	// MaxFieldValueLen bytes without control characters.
	Fields map[string]string
	// Provider is who announced it. It is never encoded: on receipt it is the
	// verified signer of the pubsub message (or of the catalog entry).
	Provider peer.ID
}

// MarshalBinary encodes a in the version 1 wire format:
//
//	version  byte (1)
//	flags    byte (bit 0: withdraw; other bits zero)
//	root     uvarint length, CID bytes
//	name     uvarint length, UTF-8 bytes
//	size     uvarint
//	time     uvarint, unix milliseconds
//	fields   uvarint count, then per field (keys strictly ascending):
//	         uvarint length, key bytes, uvarint length, value bytes
//
// Varints are minimal. MarshalBinary checks only what it must to encode
// (a defined CID, a time after 1970, the size cap); Validate checks the rest.
func (a Announcement) MarshalBinary() ([]byte, error) {
	if !a.Root.Defined() {
		return nil, fmt.Errorf("encoding: %w: undefined", ErrBadCID)
	}
	ms := a.Time.UnixMilli()
	if ms <= 0 {
		return nil, fmt.Errorf("encoding: %w: %v", ErrBadTime, a.Time)
	}
	root := a.Root.Bytes()
	n := 2 + binary.MaxVarintLen64*4 + len(root) + len(a.Name)
	for k, v := range a.Fields {
		n += 2*binary.MaxVarintLen64 + len(k) + len(v)
	}
	if n > 4*MaxMessageSize {
		// Clearly too big: fail before allocating for it.
		return nil, fmt.Errorf("encoding: %w", ErrTooLarge)
	}
	b := make([]byte, 0, n)
	var flags byte
	if a.Withdraw {
		flags |= flagWithdraw
	}
	b = append(b, Version, flags)
	b = appendBytes(b, root)
	b = appendBytes(b, []byte(a.Name))
	b = binary.AppendUvarint(b, a.Size)
	b = binary.AppendUvarint(b, uint64(ms))
	b = binary.AppendUvarint(b, uint64(len(a.Fields)))
	keys := make([]string, 0, len(a.Fields))
	for k := range a.Fields {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		b = appendBytes(b, []byte(k))
		b = appendBytes(b, []byte(a.Fields[k]))
	}
	if len(b) > MaxMessageSize {
		return nil, fmt.Errorf("encoding: %w: %d bytes", ErrTooLarge, len(b))
	}
	return b, nil
}

func appendBytes(b, v []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(v)))
	return append(b, v...)
}

// UnmarshalBinary decodes the wire format strictly: the right version, no
// unknown flags, minimal varints, a canonical CID, sorted unique field keys
// and no trailing bytes. It does not check the semantic rules (name, size,
// time, CID kind): Validate does. It never panics, whatever b holds. Provider
// is left unset.
func (a *Announcement) UnmarshalBinary(b []byte) error {
	if len(b) > MaxMessageSize {
		return fmt.Errorf("decoding: %w: %d bytes", ErrTooLarge, len(b))
	}
	if len(b) < 2 {
		return fmt.Errorf("decoding: %w: short header", ErrMalformed)
	}
	if b[0] != Version {
		return fmt.Errorf("decoding: %w: %d", ErrVersion, b[0])
	}
	flags := b[1]
	if flags&^knownFlags != 0 {
		return fmt.Errorf("decoding: %w: unknown flags %#x", ErrMalformed, flags)
	}
	d := decoder{b: b[2:]}
	rootBytes := d.bytes("root")
	name := d.bytes("name")
	size := d.uvarint("size")
	ms := d.uvarint("time")
	nfields := d.uvarint("field count")
	if d.err == nil && nfields > MaxFields {
		d.err = fmt.Errorf("%w: %d fields", ErrBadFields, nfields)
	}
	var fields map[string]string
	var prev string
	for i := uint64(0); d.err == nil && i < nfields; i++ {
		k := string(d.bytes("field key"))
		v := string(d.bytes("field value"))
		if d.err != nil {
			break
		}
		if i > 0 && k <= prev {
			d.err = fmt.Errorf("%w: keys not strictly ascending", ErrMalformed)
			break
		}
		prev = k
		if fields == nil {
			fields = make(map[string]string, nfields)
		}
		fields[k] = v
	}
	if d.err == nil && len(d.b) != 0 {
		d.err = fmt.Errorf("%w: %d trailing bytes", ErrMalformed, len(d.b))
	}
	if d.err != nil {
		return fmt.Errorf("decoding: %w", d.err)
	}
	if ms == 0 || ms > 1<<53 {
		return fmt.Errorf("decoding: %w: %d ms", ErrBadTime, ms)
	}
	n, c, err := cid.CidFromBytes(rootBytes)
	if err != nil || n != len(rootBytes) {
		return fmt.Errorf("decoding: %w", ErrBadCID)
	}
	*a = Announcement{
		Root:     c,
		Name:     string(name),
		Size:     size,
		Time:     time.UnixMilli(int64(ms)),
		Withdraw: flags&flagWithdraw != 0,
		Fields:   fields,
	}
	return nil
}

type decoder struct {
	b   []byte
	err error
}

func (d *decoder) uvarint(what string) uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = fmt.Errorf("%w: bad varint for %s", ErrMalformed, what)
		return 0
	}
	// Reject overlong encodings, so that every announcement has exactly one
	// encoding.
	var tmp [binary.MaxVarintLen64]byte
	if binary.PutUvarint(tmp[:], v) != n {
		d.err = fmt.Errorf("%w: non-minimal varint for %s", ErrMalformed, what)
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) bytes(what string) []byte {
	l := d.uvarint(what + " length")
	if d.err != nil {
		return nil
	}
	if l > uint64(len(d.b)) {
		d.err = fmt.Errorf("%w: %s overruns message", ErrMalformed, what)
		return nil
	}
	v := d.b[:l]
	d.b = d.b[l:]
	return v
}

// Validate runs the checks every node applies before it accepts or forwards
// an announcement: a supported CID, a sane name, size and fields, an encoding
// within MaxMessageSize, and a time no more than maxSkew after now. It does
// not check Provider or the rate of announcements.
func (a Announcement) Validate(now time.Time, maxSkew time.Duration) error {
	if err := checkCID(a.Root); err != nil {
		return err
	}
	if a.Name != "" || !a.Withdraw {
		if err := checkName(a.Name); err != nil {
			return err
		}
	}
	if a.Size > MaxSize {
		return fmt.Errorf("%w: %d bytes", ErrBadSize, a.Size)
	}
	if a.Time.UnixMilli() <= 0 {
		return fmt.Errorf("%w: %v", ErrBadTime, a.Time)
	}
	if a.Time.After(now.Add(maxSkew)) {
		return fmt.Errorf("%w: %v is %v ahead", ErrFutureTime, a.Time, a.Time.Sub(now).Round(time.Millisecond))
	}
	if err := checkFields(a.Fields); err != nil {
		return err
	}
	// The limits above allow more than fits in one message (many long
	// fields): check what the encoding would weigh.
	if n := a.encodedLen(); n > MaxMessageSize {
		return fmt.Errorf("%w: %d bytes encoded", ErrTooLarge, n)
	}
	return nil
}

// encodedLen is the length of MarshalBinary's result.
func (a Announcement) encodedLen() int {
	uv := func(v uint64) int {
		var tmp [binary.MaxVarintLen64]byte
		return binary.PutUvarint(tmp[:], v)
	}
	n := 2 + uv(uint64(a.Root.ByteLen())) + a.Root.ByteLen() + uv(uint64(len(a.Name))) + len(a.Name) +
		uv(a.Size) + uv(uint64(max(a.Time.UnixMilli(), 0))) + uv(uint64(len(a.Fields)))
	for k, v := range a.Fields {
		n += uv(uint64(len(k))) + len(k) + uv(uint64(len(v))) + len(v)
	}
	return n
}

func checkCID(c cid.Cid) error {
	if !c.Defined() {
		return fmt.Errorf("%w: undefined", ErrBadCID)
	}
	p := c.Prefix()
	switch p.Version {
	case 0, 1:
	default:
		return fmt.Errorf("%w: version %d", ErrBadCID, p.Version)
	}
	if p.Codec != codecRaw && p.Codec != codecDagPB {
		return fmt.Errorf("%w: codec %#x", ErrBadCID, p.Codec)
	}
	if p.MhType != mh.SHA2_256 || p.MhLength != 32 {
		return fmt.Errorf("%w: multihash %#x/%d", ErrBadCID, p.MhType, p.MhLength)
	}
	return nil
}

func checkName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("%w: empty", ErrBadName)
	case len(name) > MaxNameLen:
		return fmt.Errorf("%w: %d bytes", ErrBadName, len(name))
	case name == "." || name == "..":
		return fmt.Errorf("%w: %q", ErrBadName, name)
	case !utf8.ValidString(name):
		return fmt.Errorf("%w: not UTF-8", ErrBadName)
	case strings.ContainsAny(name, "/\\"):
		return fmt.Errorf("%w: contains a path separator", ErrBadName)
	case strings.ContainsFunc(name, unicode.IsControl):
		return fmt.Errorf("%w: contains a control character", ErrBadName)
	case strings.ContainsFunc(name, names.Deceptive):
		return fmt.Errorf("%w: contains an invisible or direction-changing character", ErrBadName)
	}
	return nil
}

func checkFields(fields map[string]string) error {
	if len(fields) > MaxFields {
		return fmt.Errorf("%w: %d fields", ErrBadFields, len(fields))
	}
	for k, v := range fields {
		if k == "" || len(k) > MaxFieldKeyLen {
			return fmt.Errorf("%w: key of %d bytes", ErrBadFields, len(k))
		}
		for i := 0; i < len(k); i++ {
			c := k[i]
			if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
				return fmt.Errorf("%w: key %q", ErrBadFields, k)
			}
		}
		if len(v) > MaxFieldValueLen || !utf8.ValidString(v) || strings.ContainsFunc(v, unicode.IsControl) {
			return fmt.Errorf("%w: value of %q", ErrBadFields, k)
		}
	}
	return nil
}

// reason names the rule an error broke, for counters and logs.
func reason(err error) string {
	for _, e := range []error{ErrTooLarge, ErrVersion, ErrMalformed, ErrBadCID, ErrBadName, ErrBadSize, ErrBadTime, ErrFutureTime, ErrBadFields} {
		if errors.Is(err, e) {
			return e.Error()
		}
	}
	return "other"
}
