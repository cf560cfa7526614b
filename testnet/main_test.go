package testnet_test

import (
	"log/slog"
	"os"
	"testing"
)

func TestMain(m *testing.M) {
	// The nodes log every start at info; keep test output to what matters.
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	os.Exit(m.Run())
}
