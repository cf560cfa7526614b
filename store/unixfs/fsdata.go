package unixfs

import (
	"errors"
	"fmt"
)

// DataType is the UnixFS node type. The values are wire values.
type DataType int32

// UnixFS node types. WARNING: wire values; only append.
const (
	Raw       DataType = 0
	Directory DataType = 1
	File      DataType = 2
	Metadata  DataType = 3
	Symlink   DataType = 4
	HAMTShard DataType = 5
)

func (t DataType) String() string {
	switch t {
	case Raw:
		return "raw"
	case Directory:
		return "directory"
	case File:
		return "file"
	case Metadata:
		return "metadata"
	case Symlink:
		return "symlink"
	case HAMTShard:
		return "HAMT shard"
	}
	return fmt.Sprintf("DataType(%d)", int32(t))
}

// FSData is the UnixFS Data message carried in a dag-pb node's Data field.
// The fields files, directories and HAMT shards need are kept; mode and mtime
// are accepted on decode and dropped.
type FSData struct {
	Type        DataType
	Data        []byte // nil when absent; aliases the decoded bytes
	FileSize    uint64
	HasFileSize bool
	BlockSizes  []uint64
	HashType    uint64 // HAMT shards: the multicodec of the name hash; 0 when absent
	Fanout      uint64 // HAMT shards: slots per node; 0 when absent
}

// UnixFS Data field numbers.
const (
	fsFieldType       = 1
	fsFieldData       = 2
	fsFieldFileSize   = 3
	fsFieldBlockSizes = 4
	fsFieldHashType   = 5
	fsFieldFanout     = 6
	fsFieldMode       = 7
	fsFieldMtime      = 8
)

// DecodeFSData decodes a UnixFS Data message. Type is required and must be a
// known type; Type, Data and filesize may appear at most once; blocksizes may
// be packed or not. Other fields are checked for a sane wire type and skipped.
func DecodeFSData(b []byte) (FSData, error) {
	nbs, err := scanFSData(b)
	if err != nil {
		return FSData{}, fmt.Errorf("unixfs data: %w", err)
	}
	var d FSData
	if nbs > 0 {
		d.BlockSizes = make([]uint64, 0, nbs)
	}
	for i := 0; i < len(b); {
		field, wire, n, _ := readTag(b[i:]) // validated by scanFSData
		i += n
		switch {
		case field == fsFieldType:
			v, n, _ := readUvarint(b[i:])
			i += n
			d.Type = DataType(v)
		case field == fsFieldData:
			v, n, _ := readBytes(b[i:])
			i += n
			d.Data = v
		case field == fsFieldFileSize:
			v, n, _ := readUvarint(b[i:])
			i += n
			d.FileSize, d.HasFileSize = v, true
		case field == fsFieldBlockSizes && wire == wireVarint:
			v, n, _ := readUvarint(b[i:])
			i += n
			d.BlockSizes = append(d.BlockSizes, v)
		case field == fsFieldHashType:
			v, n, _ := readUvarint(b[i:])
			i += n
			d.HashType = v
		case field == fsFieldFanout:
			v, n, _ := readUvarint(b[i:])
			i += n
			d.Fanout = v
		case field == fsFieldBlockSizes:
			v, n, _ := readBytes(b[i:])
			i += n
			for j := 0; j < len(v); {
				x, n, _ := readUvarint(v[j:])
				j += n
				d.BlockSizes = append(d.BlockSizes, x)
			}
		default:
			n, _ := skipField(b[i:], wire)
			i += n
		}
	}
	return d, nil
}

// scanFSData validates a UnixFS Data message and counts its blocksizes.
func scanFSData(b []byte) (int, error) {
	var haveType, haveData, haveFileSize, haveHashType, haveFanout bool
	nbs := 0
	for i := 0; i < len(b); {
		field, wire, n, err := readTag(b[i:])
		if err != nil {
			return 0, fmt.Errorf("reading field tag at byte %d: %w", i, err)
		}
		i += n
		want := -1 // wire type the field must have, or -1 for any
		switch field {
		case fsFieldType, fsFieldFileSize, fsFieldHashType, fsFieldFanout, fsFieldMode:
			want = wireVarint
		case fsFieldData, fsFieldMtime:
			want = wireBytes
		case fsFieldBlockSizes:
			if wire != wireVarint && wire != wireBytes {
				return 0, fmt.Errorf("blocksizes has wire type %d", wire)
			}
		}
		if want >= 0 && wire != uint64(want) {
			return 0, fmt.Errorf("field %d has wire type %d, want %d", field, wire, want)
		}
		switch field {
		case fsFieldType:
			if haveType {
				return 0, errors.New("duplicate Type field")
			}
			haveType = true
			v, _, err := readUvarint(b[i:])
			if err != nil {
				return 0, fmt.Errorf("reading Type: %w", err)
			}
			if v > uint64(HAMTShard) {
				return 0, fmt.Errorf("unknown Type %d", v)
			}
		case fsFieldData:
			if haveData {
				return 0, errors.New("duplicate Data field")
			}
			haveData = true
		case fsFieldFileSize:
			if haveFileSize {
				return 0, errors.New("duplicate filesize field")
			}
			haveFileSize = true
		case fsFieldHashType:
			if haveHashType {
				return 0, errors.New("duplicate hashType field")
			}
			haveHashType = true
		case fsFieldFanout:
			if haveFanout {
				return 0, errors.New("duplicate fanout field")
			}
			haveFanout = true
		case fsFieldBlockSizes:
			if wire == wireVarint {
				nbs++
				break
			}
			v, _, err := readBytes(b[i:])
			if err != nil {
				return 0, fmt.Errorf("reading packed blocksizes: %w", err)
			}
			for j := 0; j < len(v); {
				_, n, err := readUvarint(v[j:])
				if err != nil {
					return 0, fmt.Errorf("reading packed blocksizes: %w", err)
				}
				j += n
				nbs++
			}
		}
		n, err = skipField(b[i:], wire)
		if err != nil {
			return 0, fmt.Errorf("reading field %d: %w", field, err)
		}
		i += n
	}
	if !haveType {
		return 0, errors.New("missing Type field")
	}
	return nbs, nil
}

// Encode encodes d as boxo does: Type, Data if not nil, filesize if
// HasFileSize, each blocksize as its own (unpacked) field, then hashType and
// fanout if not zero.
func (d FSData) Encode() []byte {
	size := 1 + uvarintLen(uint64(int64(d.Type)))
	if d.Data != nil {
		size += 1 + uvarintLen(uint64(len(d.Data))) + len(d.Data)
	}
	if d.HasFileSize {
		size += 1 + uvarintLen(d.FileSize)
	}
	for _, s := range d.BlockSizes {
		size += 1 + uvarintLen(s)
	}
	if d.HashType != 0 {
		size += 1 + uvarintLen(d.HashType)
	}
	if d.Fanout != 0 {
		size += 1 + uvarintLen(d.Fanout)
	}
	return d.appendTo(make([]byte, 0, size))
}

func (d FSData) appendTo(b []byte) []byte {
	b = append(b, fsFieldType<<3|wireVarint)
	b = appendUvarint(b, uint64(int64(d.Type)))
	if d.Data != nil {
		b = append(b, fsFieldData<<3|wireBytes)
		b = appendUvarint(b, uint64(len(d.Data)))
		b = append(b, d.Data...)
	}
	if d.HasFileSize {
		b = append(b, fsFieldFileSize<<3|wireVarint)
		b = appendUvarint(b, d.FileSize)
	}
	for _, s := range d.BlockSizes {
		b = append(b, fsFieldBlockSizes<<3|wireVarint)
		b = appendUvarint(b, s)
	}
	if d.HashType != 0 {
		b = append(b, fsFieldHashType<<3|wireVarint)
		b = appendUvarint(b, d.HashType)
	}
	if d.Fanout != 0 {
		b = append(b, fsFieldFanout<<3|wireVarint)
		b = appendUvarint(b, d.Fanout)
	}
	return b
}
