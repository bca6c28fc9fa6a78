package config_test

import (
	"io"
	"testing"
	"time"

	"github.com/watchroom/watchroom/internal/backplane"
	"github.com/watchroom/watchroom/internal/config"
	"github.com/watchroom/watchroom/internal/devices"
	"github.com/watchroom/watchroom/internal/hub"
	"github.com/watchroom/watchroom/internal/ingest"
	"github.com/watchroom/watchroom/internal/rooms"
)

// The defaults that serve passes on live in config.Vars. A package keeps
// its own Default constants only for use without config (tests, the
// simulator, embedding); this test keeps the two sets the same values.
func TestDefaultsMatchPackages(t *testing.T) {
	c, err := config.Parse("serve", nil, nil, "host", io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	h := hub.Defaults()
	for _, tc := range []struct {
		name      string
		got, want any
	}{
		{"WSSendQueue", c.WSSendQueue, h.SendQueue},
		{"WSAuthTimeout", c.WSAuthTimeout, h.AuthTimeout},
		{"WSPingInterval", c.WSPingInterval, h.PingInterval},
		{"WSRate", c.WSRate, h.Rate},
		{"WSBurst", c.WSBurst, h.Burst},
		{"WSWriteTimeout", c.WSWriteTimeout, h.WriteTimeout},
		{"WSSendBuffer", c.WSSendBuffer, h.SendBuffer},
		{"WSHighWater", c.WSHighWater, h.HighWaterMsgs},
		{"WSMaxPerUser", c.WSMaxPerUser, h.MaxPerUser},
		{"WSMaxPerAddr", c.WSMaxPerAddr, h.MaxPerAddr},
		{"ResumeMax", c.ResumeMax, h.ResumeMax},
		{"ResumeMaxAge", c.ResumeMaxAge, h.ResumeMaxAge},
		{"CommandTimeout", c.CommandTimeout, devices.DefaultTimeout},
		{"BatchSize", c.BatchSize, ingest.DefaultBatchSize},
		{"FlushInterval", c.FlushInterval, time.Duration(ingest.DefaultFlushInterval)},
		{"IngestQueue", c.IngestQueue, ingest.DefaultQueueSize},
		{"CommitTimeout", c.CommitTimeout, ingest.DefaultCommitTimeout},
		{"PresenceGrace", c.PresenceGrace, rooms.DefaultOfflineGrace},
		{"RoomsPerUser", c.RoomsPerUser, rooms.DefaultMaxRoomsPerUser},
		{"RoomCreateRate", c.RoomCreateRate, float64(rooms.DefaultCreateRate)},
		{"RoomCreateBurst", c.RoomCreateBurst, rooms.DefaultCreateBurst},
		{"BackplaneHold", c.BackplaneHold, backplane.DefaultHold},
	} {
		if tc.got != tc.want {
			t.Errorf("%s: config default %v, package default %v", tc.name, tc.got, tc.want)
		}
	}
}
