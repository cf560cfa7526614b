// Package ui is the daemon's web dashboard: one page and its script and style, embedded in the
// binary and served on the API's address under /ui/. The page talks to the daemon only through
// the documented API (docs/API.md), with the session cookie that a one-time code from `peer ui`
// or the token typed into its login form sets up (node/api/session.go).
//
// It must never load anything from another site, run an inline script, or put a name that
// came from the network into the page as HTML: the script builds the page with textContent.
package ui
