package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/ipfs/go-cid"
	"github.com/ipld/go-ipld-prime/codec/dagcbor"
	"github.com/ipld/go-ipld-prime/codec/dagjson"
	cidlink "github.com/ipld/go-ipld-prime/linking/cid"
	"github.com/ipld/go-ipld-prime/node/basicnode"
	"github.com/ipld/go-ipld-prime/traversal"
	"github.com/multiformats/go-multicodec"

	"peer/store/unixfs"
)

// The store holds DAGs of any codec whose links it can read, not only UnixFS files: what a CAR
// brings in (dag-cbor, dag-json) is kept, served, exported and protected from gc like a file.
// Everything that follows links (gc, serving, export, import) goes through Links, so a codec it
// cannot read is refused at import rather than held with its children unknown.

// ErrUnknownCodec means a block's codec is one whose links the store cannot read.
var ErrUnknownCodec = errors.New("codec not supported")

// Links returns the CIDs block data (named by c) links to, in order. dag-pb, dag-cbor and dag-json
// are decoded; raw, cbor, json and libp2p-key blocks have no links. Any other codec is an error
// wrapping ErrUnknownCodec; a block that does not decode as its codec is an error too.
func Links(c cid.Cid, data []byte) ([]cid.Cid, error) {
	switch multicodec.Code(c.Type()) {
	case multicodec.Raw, multicodec.Cbor, multicodec.Json, multicodec.Libp2pKey:
		return nil, nil
	case multicodec.DagPb:
		n, err := unixfs.DecodePB(data)
		if err != nil {
			return nil, fmt.Errorf("block %s: %w", c, err)
		}
		out := make([]cid.Cid, len(n.Links))
		for i, l := range n.Links {
			out[i] = l.Cid
		}
		return out, nil
	case multicodec.DagCbor, multicodec.DagJson:
		if len(data) > unixfs.MaxBlockSize {
			return nil, fmt.Errorf("block %s: %d bytes exceeds the block limit of %d", c, len(data), unixfs.MaxBlockSize)
		}
		nb := basicnode.Prototype.Any.NewBuilder()
		decode, name := dagcbor.Decode, "dag-cbor"
		if c.Type() == cid.DagJSON {
			decode, name = dagjson.Decode, "dag-json"
		}
		if err := decode(nb, bytes.NewReader(data)); err != nil {
			return nil, fmt.Errorf("block %s is not valid %s: %w", c, name, err)
		}
		links, err := traversal.SelectLinks(nb.Build())
		if err != nil {
			return nil, fmt.Errorf("block %s: %w", c, err)
		}
		out := make([]cid.Cid, 0, len(links))
		for _, l := range links {
			cl, ok := l.(cidlink.Link)
			if !ok {
				return nil, fmt.Errorf("block %s: a link that is not a CID", c)
			}
			out = append(out, cl.Cid)
		}
		return out, nil
	}
	return nil, fmt.Errorf("block %s: %w: %s", c, ErrUnknownCodec, codecName(c.Type()))
}

// codecName names a multicodec for messages: "dag-cbor (0x71)".
func codecName(code uint64) string {
	if name := multicodec.Code(code).String(); !strings.HasPrefix(name, "Code(") { // "Code(N)": unknown
		return fmt.Sprintf("%s (0x%x)", name, code)
	}
	return fmt.Sprintf("0x%x", code)
}

// mayLink reports whether blocks of c's codec can have links: the others are never read to walk
// a DAG.
func mayLink(c cid.Cid) bool {
	switch multicodec.Code(c.Type()) {
	case multicodec.Raw, multicodec.Cbor, multicodec.Json, multicodec.Libp2pKey:
		return false
	}
	return true
}

// eachBlock visits every distinct block of the DAG under root once, depth first, a block before
// its children and children in link order (the order `ipfs dag export` writes). load returns a
// block's bytes; read is false for a block that cannot link when the caller's fn does not need
// its bytes, and load may then only check that the block is here and return nil. A DAG as deep
// as a hostile one may be is walked with a stack of its own, not the goroutine's.
func eachBlock(ctx context.Context, root cid.Cid, needData bool, load func(c cid.Cid, read bool) ([]byte, error), fn func(c cid.Cid, data []byte) error) error {
	seen := map[string]bool{}
	stack := []cid.Cid{root}
	for len(stack) > 0 {
		if err := ctx.Err(); err != nil {
			return err
		}
		c := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if seen[c.KeyString()] {
			continue
		}
		seen[c.KeyString()] = true
		links := mayLink(c)
		data, err := load(c, links || needData)
		if err != nil {
			return err
		}
		if err := fn(c, data); err != nil {
			return err
		}
		if !links {
			continue
		}
		children, err := Links(c, data)
		if err != nil {
			return err
		}
		for i := len(children) - 1; i >= 0; i-- {
			if !seen[children[i].KeyString()] {
				stack = append(stack, children[i])
			}
		}
	}
	return nil
}
