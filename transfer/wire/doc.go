// Package wire encodes and decodes the frames of the peer block-exchange
// protocol (/peer/transfer/1.0.0).
//
// A frame is a uvarint length followed by that many bytes of body; the body
// starts with a one-byte message type. The client sends Want and Cancel frames
// (many CIDs each), the server answers every wanted CID, in order, with a Block
// or a DontHave frame. Bodies are capped at MaxFrameSize, control frames at
// MaxControlSize, a frame carries at most MaxCIDsPerFrame CIDs of at most
// MaxCIDLen bytes each.
//
// This package knows nothing of libp2p, files or DAGs: it works on io.Reader,
// io.Writer and byte slices only. Decoders must never panic on hostile input
// and never allocate more than the caps, whatever the length prefixes claim.
// Block payloads are read into pooled buffers (GetBuffer/PutBuffer) so a
// block is copied once, from the stream into its final buffer.
package wire
