package names_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"peer/internal/names"
)

func TestStrip(t *testing.T) {
	cases := map[string]string{
		"invoice\u202efdp.exe":         "invoicefdp.exe",
		"a\u2066b\u2067c\u2068d\u2069": "abcd",
		"zero\u200bwidth\u200d\ufeff":  "zerowidth",
		"line\u2028para\u2029":         "linepara",
		"tab\tnul\x00esc\x1b":          "tabnulesc",
		"ordinary name (1).mkv":        "ordinary name (1).mkv",
		"日本語のファイル.txt":                 "日本語のファイル.txt",
		"مرحبا.txt":                    "مرحبا.txt",
	}
	for in, want := range cases {
		require.Equal(t, want, names.Strip(in), "%q", in)
	}
}

func TestDeceptive(t *testing.T) {
	for _, r := range []rune{0x202E, 0x202A, 0x2066, 0x2069, 0x200B, 0x200F, 0xFEFF, 0x2028, 0x2029, 0x061C} {
		require.True(t, names.Deceptive(r), "%U", r)
	}
	for _, r := range []rune{'a', ' ', '.', 'é', '日', 0x05D0, 0x1F600} {
		require.False(t, names.Deceptive(r), "%U", r)
	}
}
