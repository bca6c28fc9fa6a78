package config

import (
	"io"
	"strings"
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name  string
		args  []string
		env   []string
		check func(t *testing.T, c Config)
	}{
		{"defaults", nil, nil, func(t *testing.T, c Config) {
			if c.HTTPAddr != ":8080" || c.MQTTListen != ":1883" || c.MQTTURL != "" {
				t.Errorf("addresses = %q %q %q", c.HTTPAddr, c.MQTTListen, c.MQTTURL)
			}
			if len(c.MQTTTopics) != 1 || c.MQTTTopics[0] != "sensors/#" {
				t.Errorf("topics = %v", c.MQTTTopics)
			}
			if c.InstanceID != "host-1" || c.MQTTClientID != "watchroom-host-1" {
				t.Errorf("instance id = %q, client id = %q; want the host name's", c.InstanceID, c.MQTTClientID)
			}
			if c.WSAuthTimeout != 5*time.Second || c.WSPingInterval != 30*time.Second || c.CommandTimeout != 10*time.Second {
				t.Errorf("durations = %v %v %v", c.WSAuthTimeout, c.WSPingInterval, c.CommandTimeout)
			}
			if c.WSRate != 20 || c.WSBurst != 40 {
				t.Errorf("rate = %v burst = %v", c.WSRate, c.WSBurst)
			}
		}},
		{"env", nil, []string{"WATCHROOM_HTTP_ADDR=127.0.0.1:9000", "WATCHROOM_MQTT_TOPICS=a/#, b/+", "WATCHROOM_WS_RATE=5.5"}, func(t *testing.T, c Config) {
			if c.HTTPAddr != "127.0.0.1:9000" {
				t.Errorf("http addr = %q", c.HTTPAddr)
			}
			if strings.Join(c.MQTTTopics, "|") != "a/#|b/+" {
				t.Errorf("topics = %v", c.MQTTTopics)
			}
			if c.WSRate != 5.5 {
				t.Errorf("rate = %v", c.WSRate)
			}
		}},
		{"client id derives from the instance id", []string{"--instance-id", "web-2"}, []string{"WATCHROOM_INSTANCE_ID=web-1", "WATCHROOM_MQTT_CLIENT_ID="}, func(t *testing.T, c Config) {
			if c.InstanceID != "web-2" || c.MQTTClientID != "watchroom-web-2" {
				t.Errorf("instance id = %q, client id = %q", c.InstanceID, c.MQTTClientID)
			}
		}},
		{"explicit client id stays", nil, []string{"WATCHROOM_INSTANCE_ID=web-1", "WATCHROOM_MQTT_CLIENT_ID=watchroom-1"}, func(t *testing.T, c Config) {
			if c.InstanceID != "web-1" || c.MQTTClientID != "watchroom-1" {
				t.Errorf("instance id = %q, client id = %q", c.InstanceID, c.MQTTClientID)
			}
		}},
		{"flag wins over env", []string{"--http-addr", ":7000"}, []string{"WATCHROOM_HTTP_ADDR=:9000"}, func(t *testing.T, c Config) {
			if c.HTTPAddr != ":7000" {
				t.Errorf("http addr = %q, want the flag's", c.HTTPAddr)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse("serve", tt.args, tt.env, "host-1", io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, c)
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		env  []string
		want string
	}{
		{"bad duration env", nil, []string{"WATCHROOM_JWT_TTL=soon"}, "WATCHROOM_JWT_TTL"},
		{"bad int flag", []string{"--batch-size", "x"}, nil, "batch-size"},
		{"range", []string{"--batch-size", "0"}, nil, "batch size"},
		{"log format", []string{"--log-format", "xml"}, nil, "log format"},
		{"stray argument", []string{"extra"}, nil, "unexpected argument"},
		{"instance id characters", nil, []string{"WATCHROOM_INSTANCE_ID=web 1"}, "WATCHROOM_INSTANCE_ID"},
		{"share group characters", nil, []string{"WATCHROOM_MQTT_URL=tcp://b:1883", "WATCHROOM_MQTT_SHARE_GROUP=a/b"}, "WATCHROOM_MQTT_SHARE_GROUP"},
		{"share group without a broker", []string{"--mqtt-share-group", "wr"}, nil, "needs WATCHROOM_MQTT_URL"},
		{"share in topics and a group", nil, []string{"WATCHROOM_MQTT_URL=tcp://b:1883", "WATCHROOM_MQTT_SHARE_GROUP=wr", "WATCHROOM_MQTT_TOPICS=$share/g/sensors/#"}, "already shared"},
		{"empty instance id", []string{"--instance-id", ""}, nil, "WATCHROOM_INSTANCE_ID"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("serve", tt.args, tt.env, "h", io.Discard)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tt.want)
			}
		})
	}
}

func TestDefaultClientID(t *testing.T) {
	for in, want := range map[string]string{"web-1.example": "watchroom-web-1.example", "ä/#+": "watchroom"} {
		if got := DefaultClientID(in); got != want {
			t.Errorf("DefaultClientID(%q) = %q, want %q", in, got, want)
		}
	}
}
