package tlsbatch

import (
	"context"
	"net"
	"sync"
	"sync/atomic"

	pool "github.com/libp2p/go-buffer-pool"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-libp2p/core/sec"
	tptu "github.com/libp2p/go-libp2p/p2p/net/upgrader"
	libp2ptls "github.com/libp2p/go-libp2p/p2p/security/tls"
)

// ID is libp2p's TLS protocol ID: the wire format is the same.
const ID = libp2ptls.ID

// maxRecord is the most plaintext crypto/tls puts in one record; a write no larger than this is
// one record and passes straight through.
const maxRecord = 16 << 10

// recordOverhead bounds what TLS 1.3 adds to one record: header, content type and tag.
const recordOverhead = 5 + 1 + 16

// Transport is libp2p's TLS transport whose connections batch the records of one write.
type Transport struct {
	*libp2ptls.Transport
}

var _ sec.SecureTransport = (*Transport)(nil)

// New has the signature of libp2ptls.New, for libp2p.Security(tlsbatch.ID, tlsbatch.New).
func New(id protocol.ID, key crypto.PrivKey, muxers []tptu.StreamMuxer) (*Transport, error) {
	t, err := libp2ptls.New(id, key, muxers)
	if err != nil {
		return nil, err
	}
	return &Transport{Transport: t}, nil
}

// SecureInbound runs the TLS handshake as a server.
func (t *Transport) SecureInbound(ctx context.Context, insecure net.Conn, p peer.ID) (sec.SecureConn, error) {
	return batched(insecure, func(raw net.Conn) (sec.SecureConn, error) { return t.Transport.SecureInbound(ctx, raw, p) })
}

// SecureOutbound runs the TLS handshake as a client.
func (t *Transport) SecureOutbound(ctx context.Context, insecure net.Conn, p peer.ID) (sec.SecureConn, error) {
	return batched(insecure, func(raw net.Conn) (sec.SecureConn, error) { return t.Transport.SecureOutbound(ctx, raw, p) })
}

// batched runs a handshake over insecure wrapped for holding, and wraps its result.
func batched(insecure net.Conn, handshake func(net.Conn) (sec.SecureConn, error)) (sec.SecureConn, error) {
	raw := &holdConn{Conn: insecure}
	sc, err := handshake(raw)
	if err != nil {
		return nil, err
	}
	return &conn{SecureConn: sc, raw: raw}, nil
}

// conn is the secured connection: a large Write holds the raw connection while TLS seals it,
// then sends every record at once.
type conn struct {
	sec.SecureConn
	raw     *holdConn
	wmu     sync.Mutex  // one Write at a time, so a hold covers exactly one Write's records
	writing atomic.Bool // a held Write is in progress
}

func (c *conn) Write(b []byte) (int, error) {
	if len(b) <= maxRecord {
		return c.SecureConn.Write(b)
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.writing.Store(true)
	defer c.writing.Store(false)
	c.raw.hold(len(b) + (len(b)/maxRecord+1)*recordOverhead)
	n, err := c.SecureConn.Write(b)
	if ferr := c.raw.release(); err == nil && ferr != nil {
		// TLS counted the records as sent; they were not, so the connection is unusable.
		// The caller (the stream muxer) closes it on this error.
		err = ferr
	}
	return n, err
}

// Close is crypto/tls's Close, which skips the close_notify alert when a Write is in flight so
// that closing breaks a Write stuck on a peer that does not read. A held Write is still in flight
// after TLS has returned from it, so the same rule applies to it here.
func (c *conn) Close() error {
	if c.writing.Load() {
		return c.raw.Conn.Close()
	}
	return c.SecureConn.Close()
}

// holdConn is the raw connection under TLS. While held, what TLS writes is buffered; release
// writes it in one call. Writes keep their order: TLS writes records under its own lock, and a
// record that TLS writes for itself (a key update, an alert) while a hold is on joins the buffer
// behind the records before it.
type holdConn struct {
	net.Conn
	mu   sync.Mutex
	held bool
	buf  []byte // pooled while held
}

func (c *holdConn) hold(size int) {
	c.mu.Lock()
	c.held = true
	c.buf = pool.Get(size)[:0]
	c.mu.Unlock()
}

func (c *holdConn) release() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	buf := c.buf
	c.held, c.buf = false, nil
	var err error
	if len(buf) > 0 {
		_, err = c.Conn.Write(buf)
	}
	pool.Put(buf[:cap(buf)])
	return err
}

func (c *holdConn) Write(b []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.held {
		c.buf = append(c.buf, b...)
		return len(b), nil
	}
	return c.Conn.Write(b)
}
