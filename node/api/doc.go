// Package api is the daemon's local HTTP gateway: the one entry point through which the command
// line, scripts and web pages reach a running node. It owns the listener, the bearer token, the
// file that tells clients where the daemon listens, request limits and JSON errors, and it gives
// a typed Client for every endpoint. Its handlers (Routes) decode requests, call a Backend and
// encode the answers, in types of this package (File, Event, Offer, Transfer, ...) that define
// the API's JSON; the node implements Backend, so this package knows nothing of libp2p or of the
// store's types.
//
// It must never serve a request without the token (the health check aside), never answer with
// CORS headers, never read an unbounded request body except on routes registered as uploads, and
// never bind beyond loopback unless the caller explicitly allowed it.
package api
