package broker

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func TestQuietHandler(t *testing.T) {
	type entry struct {
		advance time.Duration // clock step before logging
		level   slog.Level
		msg     string
	}
	tests := []struct {
		name   string
		parent slog.Level // level of the parent handler
		logs   []entry
		want   []string // substrings of the lines written, in order
	}{
		{
			name:   "info dropped, warn and error pass",
			parent: slog.LevelDebug,
			logs: []entry{
				{0, slog.LevelInfo, "mochi mqtt starting"},
				{0, slog.LevelWarn, "client store quota reached"},
				{0, slog.LevelError, "failed to serve."},
			},
			want: []string{"level=WARN msg=\"client store quota reached\"", "level=ERROR msg=\"failed to serve.\""},
		},
		{
			name:   "repeats held back and counted",
			parent: slog.LevelInfo,
			logs: []entry{
				{0, slog.LevelWarn, "client store quota reached"},
				{time.Second, slog.LevelWarn, "client store quota reached"},
				{time.Second, slog.LevelWarn, "client store quota reached"},
				{repeatWindow, slog.LevelWarn, "client store quota reached"},
			},
			want: []string{"msg=\"client store quota reached\" component=broker\n", "repeats_suppressed=2"},
		},
		{
			name:   "connection errors become debug",
			parent: slog.LevelDebug,
			logs:   []entry{{0, slog.LevelWarn, ""}},
			want:   []string{"level=DEBUG msg=\"mqtt client connection ended\""},
		},
		{
			name:   "connection errors hidden at info",
			parent: slog.LevelInfo,
			logs:   []entry{{0, slog.LevelWarn, ""}},
			want:   nil,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
			parent := slog.NewTextHandler(&buf, &slog.HandlerOptions{
				Level: tt.parent,
				ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
					if a.Key == slog.TimeKey {
						return slog.Attr{}
					}
					return a
				},
			})
			log := slog.New(newQuietHandler(parent.WithAttrs([]slog.Attr{slog.String("component", "broker")}), func() time.Time { return now }))
			for _, e := range tt.logs {
				now = now.Add(e.advance)
				log.Log(t.Context(), e.level, e.msg)
			}
			lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
			if buf.Len() == 0 {
				lines = nil
			}
			if len(lines) != len(tt.want) {
				t.Fatalf("wrote %d lines, want %d:\n%s", len(lines), len(tt.want), buf.String())
			}
			for i, w := range tt.want {
				if !strings.Contains(lines[i]+"\n", w) {
					t.Errorf("line %d = %q, want it to contain %q", i, lines[i], w)
				}
			}
		})
	}
}
