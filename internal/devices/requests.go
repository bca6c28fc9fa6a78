package devices

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/watchroom/watchroom/internal/model"
	"github.com/watchroom/watchroom/internal/protocol"
)

// Router is where the /ws request handlers go: the hub.
type Router interface {
	Handle(typ string, min model.Role, fn protocol.HandlerFunc)
}

// Register adds the /ws requests of devices to rt: "command", for
// operators and admins.
func (d *Devices) Register(rt Router) {
	rt.Handle("command", model.RoleOperator, d.handleCommand)
}

// handleCommand turns a "command" request into a device command. The
// immediate reply, command_sent, gives the command id; the outcome comes
// later as an acked command_response.
func (d *Devices) handleCommand(ctx context.Context, req protocol.Request) (protocol.Reply, error) {
	data, herr := decodeCommand(req.Data)
	if herr != nil {
		return protocol.Reply{}, herr
	}
	c, err := d.Send(ctx, req.User, req.ID, data.SensorID, data.Action, data.Params)
	var re *RequestError
	if errors.As(err, &re) {
		return protocol.Reply{}, &protocol.Error{Code: re.Code, Message: re.Message}
	}
	if err != nil {
		return protocol.Reply{}, err
	}
	return protocol.Reply{Type: "command_sent", Data: map[string]any{
		"command_id": c.ID, "sensor_id": c.SensorID, "action": c.Action, "status": c.Status,
	}}, nil
}

// commandRequest is the data of a "command" request; Send checks its
// fields.
type commandRequest struct {
	SensorID string          `json:"sensor_id"`
	Action   string          `json:"action"`
	Params   json.RawMessage `json:"params"`
}

func decodeCommand(raw json.RawMessage) (commandRequest, *protocol.Error) {
	var data commandRequest
	if err := json.Unmarshal(raw, &data); err != nil || raw == nil {
		return commandRequest{}, protocol.Errorf(protocol.CodeBadRequest, `data must be {"sensor_id":...,"action":...,"params":{...}}`)
	}
	return data, nil
}
