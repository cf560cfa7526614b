// Package nettest holds helpers for the project's network tests. It serves tests only: nothing
// outside _test.go files imports it, and it never listens beyond 127.0.0.1.
package nettest
