// Package store is a node's repo on disk: blocks, the UnixFS importer and reader (store/unixfs),
// the append-only event log (store/eventlog) and the index projected from it.
//
// An open repo (Store) is composed of four parts with a lock each: Blocks (the owned blocks),
// Journal (the event log and the index, catalog and transfer list projected from it), Refs (files
// referenced in place, what was verified, what is served) and Downloads (fetches in progress).
//
// A repo is a directory holding an identity key, config.json, blocks/ (owned blocks, one file per
// block under a two-character shard, written to a temporary name and renamed, or, the small blocks
// of a folder import, packed into one file, pack.go), events.log and
// snapshot.json. One process holds it at a time: Open takes an exclusive flock, which the kernel
// drops when the process dies, so a crash never leaves a stale lock.
//
// The event log is the source of truth. Every change to what the node holds is an Event; Record
// appends events as one durable group and applies them to the index, a projection of the log
// (files held and their state, the network catalog). Replaying the log from the start gives the
// same index, which tests check; a snapshot of the index, written every few thousand events and at
// Close, lets Open replay only the tail. Blocks are made durable (one syncfs) before the event that
// says they exist, so after a crash the index never lists a file whose blocks are missing: at
// worst unreferenced blocks remain, and gc reclaims them.
//
// Blocks are of two kinds. Owned blocks live in blocks/. Referenced blocks are byte ranges of a
// file outside the repo (a file shared in place, or a fetch's output), found through the file's
// inner DAG nodes, which are owned. Every block read is verified against its CID: a corrupt owned
// block is an error naming it, and a referenced file that changed is recorded (FileChanged) and no
// longer served. Only blocks of files the index holds are served to peers (served.go): a removed
// file's blocks wait on disk for gc but are refused at once. Download is the other side of a
// fetch: it tells the transfer layer what is already here, and writes each verified leaf once, at
// its offset in the output file.
//
// CAR files (car.go, with go-car/v2) bring in DAGs of other codecs too: ImportCAR verifies and
// stores every block and holds each complete root as a file is held; Export writes any held DAG.
// Whatever follows links (gc, serving, export) reads them with Links (dag.go), for dag-pb, raw,
// dag-cbor and dag-json alike; identity blocks live in their CIDs and are never stored.
//
// This package imports no libp2p package and never trusts bytes it did not hash.
package store
