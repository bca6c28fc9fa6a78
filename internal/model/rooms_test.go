package model

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestValidRoomName(t *testing.T) {
	tests := []struct {
		name    string
		wantErr string
	}{
		{"general", ""},
		{"ops-night_2", ""},
		{"A", ""},
		{strings.Repeat("x", 64), ""},
		{"", "1 to 64"},
		{strings.Repeat("x", 65), "1 to 64 characters, not 65"},
		{"ops night", `invalid character ' '`},
		{"ops.night", `invalid character '.'`},
		{"a/b", `invalid character '/'`},
		{"café", `invalid character 'é'`},
		{"<script>", `invalid character '<'`},
	}
	for _, tt := range tests {
		err := ValidRoomName(tt.name)
		switch {
		case tt.wantErr == "" && err != nil:
			t.Errorf("ValidRoomName(%q) = %v, want nil", tt.name, err)
		case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
			t.Errorf("ValidRoomName(%q) = %v, want an error containing %q", tt.name, err, tt.wantErr)
		}
	}
}

func TestMessageJSON(t *testing.T) {
	ts := time.Date(2026, 11, 21, 10, 0, 0, 123456789, time.FixedZone("CET", 3600))
	alert := int64(412)
	tests := []struct {
		name string
		v    any
		want string
	}{
		{"chat", ChatMessage{ID: 7, Room: "ops", User: "ana", Content: "<b>hi</b>", TS: ts},
			`{"id":7,"room":"ops","user":"ana","content":"\u003cb\u003ehi\u003c/b\u003e","ts":"2026-11-21T09:00:00.123Z"}`},
		{"chat with alert", ChatMessage{ID: 8, Room: "alerts", User: "bob", Content: "on it", AlertID: &alert, TS: ts},
			`{"id":8,"room":"alerts","user":"bob","content":"on it","alert_id":412,"ts":"2026-11-21T09:00:00.123Z"}`},
		{"direct", DirectMessage{ID: 55, From: "ana", To: "bob", Content: "yo", TS: ts},
			`{"id":55,"from":"ana","to":"bob","content":"yo","ts":"2026-11-21T09:00:00.123Z"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := json.Marshal(tt.v)
			if err != nil {
				t.Fatal(err)
			}
			if string(b) != tt.want {
				t.Errorf("JSON = %s\nwant   %s", b, tt.want)
			}
		})
	}
	var back ChatMessage
	if err := json.Unmarshal([]byte(`{"id":8,"room":"alerts","user":"bob","content":"x","alert_id":412,"ts":"2026-11-21T09:00:00.123Z"}`), &back); err != nil || *back.AlertID != 412 || back.TS.UnixMilli() != ts.UnixMilli() {
		t.Errorf("decoded %+v, %v", back, err)
	}
}
