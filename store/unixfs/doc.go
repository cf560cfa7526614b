// Package unixfs turns a stream of bytes or a directory tree into an
// IPFS-compatible UnixFS DAG and reads such DAGs back.
//
// Import chunks a file into fixed-size raw leaves, hashes them on several
// goroutines and assembles a balanced tree of dag-pb nodes, block for block
// the same as the IPFS import profile unixfs-v1-2025 (CIDv1, sha2-256, raw
// leaves, 1 MiB chunks, at most 1024 links per node), so a file's root CID here
// is the CID any IPFS implementation gives it. ParseNode, Verify and CheckCID
// let fetchers check blocks, and NewReader streams a file back out of a DAG
// whose blocks a caller supplies.
//
// ImportTree imports a directory tree as `ipfs add -r` does under the same
// profile: BuildDirectory makes plain Directory nodes, or HAMT shards past
// 256 KiB, and SymlinkNode symlinks. ParsePath, Resolve, Lookup and ListDir
// walk directories and shards by name, checking names and shard shape as
// strictly as the file decoders check files.
//
// The package encodes and decodes dag-pb and UnixFS protobuf by hand, strictly
// and without panicking on any input. It must never change the bytes of the
// blocks it makes: any drift changes every file's identity. It imports no
// libp2p package and does no disk or network I/O of its own; callers pass
// callbacks for storing and fetching blocks.
package unixfs
