package store_test

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"peer/store"
)

// The store logs through the default logger as it is when the store logs, not as it was when the
// package was loaded: a daemon sets its handler (and level) after every package is initialized.
func TestStoreWarningsUseTheCurrentDefaultLogger(t *testing.T) {
	dir := newRepo(t)
	s, err := store.Open(dir)
	require.NoError(t, err)
	require.NoError(t, s.Record(store.Event{Type: store.FileRemoved, Root: "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"}))
	require.NoError(t, s.Close())
	// A torn record at the end of the log: Open cuts it and warns.
	f, err := os.OpenFile(filepath.Join(dir, "events.log"), os.O_WRONLY|os.O_APPEND, 0)
	require.NoError(t, err)
	_, err = f.Write([]byte{0, 0, 0, 40, 1, 2, 3})
	require.NoError(t, err)
	require.NoError(t, f.Close())

	var buf bytes.Buffer
	prev := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelWarn})))
	t.Cleanup(func() { slog.SetDefault(prev) })

	s, err = store.Open(dir)
	require.NoError(t, err)
	require.True(t, s.Recovery().Cut())
	require.NoError(t, s.Close())
	require.Contains(t, buf.String(), `level=WARN msg="event log tail cut"`)
	require.Contains(t, buf.String(), "pkg=store")
	require.NotContains(t, buf.String(), `msg="WARN`)
}
