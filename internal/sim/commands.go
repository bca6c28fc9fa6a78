package sim

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Command topics. Devices listen on devices/{sensor_id}/commands and answer
// on devices/{sensor_id}/responses.
const (
	commandFilter   = "devices/+/commands"
	topicDevices    = "devices/"
	suffixCommands  = "/commands"
	suffixResponses = "/responses"
)

// command is a command payload as the backend publishes it.
type command struct {
	ID       string          `json:"id"`
	Action   string          `json:"action"`
	Params   json.RawMessage `json:"params"`
	IssuedBy string          `json:"issued_by"`
	TS       string          `json:"ts"`
}

// response is a device's answer.
type response struct {
	ID      string `json:"id"`
	Status  string `json:"status"`
	Message string `json:"message"`
}

// pendingCommand is a command for one of our sensors, answered at due.
type pendingCommand struct {
	sensor *sensor
	cmd    command
	due    time.Time
}

// sensorFromTopic returns the sensor id of a devices/{id}/commands topic.
func sensorFromTopic(topic string) (string, bool) {
	id, ok := strings.CutPrefix(topic, topicDevices)
	if !ok {
		return "", false
	}
	id, ok = strings.CutSuffix(id, suffixCommands)
	if !ok || id == "" || strings.Contains(id, "/") {
		return "", false
	}
	return id, true
}

// decodeCommand parses and checks a command payload.
func decodeCommand(payload []byte) (command, error) {
	var c command
	if err := json.Unmarshal(payload, &c); err != nil {
		return command{}, fmt.Errorf("decode command: %w", err)
	}
	if c.ID == "" {
		return command{}, errors.New("decode command: missing id")
	}
	if c.Action == "" {
		return command{}, errors.New("decode command: missing action")
	}
	return c, nil
}

// execute carries out c on s at now and returns the device's answer. It
// must be called from the run loop, which owns s; reschedule is called when
// the sensor's next due time changed.
func execute(s *sensor, c command, now time.Time, reschedule func(*sensor)) response {
	ok := func(msg string) response { return response{ID: c.ID, Status: "success", Message: msg} }
	fail := func(msg string) response { return response{ID: c.ID, Status: "error", Message: msg} }
	switch c.Action {
	case "ping":
		return ok("pong")
	case "calibrate_sensor":
		for _, g := range s.gens {
			g.calibrate()
		}
		return ok("calibrated")
	case "reboot":
		if until := now.Add(rebootSilence); until.After(s.silentUntil) {
			s.silentUntil = until
		}
		return ok("rebooting")
	case "set_interval":
		var p struct {
			Seconds *float64 `json:"seconds"`
		}
		if len(c.Params) > 0 {
			if err := json.Unmarshal(c.Params, &p); err != nil {
				return fail(fmt.Sprintf("invalid params: %v", err))
			}
		}
		if p.Seconds == nil {
			return fail(`set_interval needs params {"seconds": N}`)
		}
		// Checked as a float first: a huge value would overflow Duration.
		sec := *p.Seconds
		if !(sec >= minInterval.Seconds() && sec <= maxInterval.Seconds()) {
			return fail(fmt.Sprintf("seconds must be between %g and %g", minInterval.Seconds(), maxInterval.Seconds()))
		}
		d := time.Duration(sec * float64(time.Second))
		s.interval = d
		s.due = now.Add(d)
		reschedule(s)
		return ok(fmt.Sprintf("interval set to %gs", sec))
	default:
		return fail(fmt.Sprintf("unknown action %q", c.Action))
	}
}
