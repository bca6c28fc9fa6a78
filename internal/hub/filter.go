package hub

import (
	"slices"

	"github.com/watchroom/watchroom/internal/model"
	"github.com/watchroom/watchroom/internal/protocol"
)

// filter says which sensors' readings a connection wants. It is immutable:
// a change builds a new filter, swapped in atomically, so broadcasts read
// it without locks.
type filter struct {
	all bool
	// set holds the excluded sensors when all is true, the included ones
	// otherwise.
	set map[string]struct{}
}

var allSensors = &filter{all: true}

func (f *filter) wants(sensor string) bool {
	_, in := f.set[sensor]
	return f.all != in
}

const maxFilterSensors = 10000

// apply returns the filter after a subscribe (add true) or unsubscribe of
// sensors. "*" stands for every sensor.
func (f *filter) apply(add bool, sensors []string) (*filter, *protocol.Error) {
	if len(sensors) == 0 {
		return nil, protocol.Errorf(protocol.CodeBadRequest, `data.sensors must list at least one sensor id, or "*"`)
	}
	if slices.Contains(sensors, "*") {
		if len(sensors) != 1 {
			return nil, protocol.Errorf(protocol.CodeBadRequest, `"*" cannot be combined with sensor ids`)
		}
		if add {
			return allSensors, nil
		}
		return &filter{}, nil
	}
	for _, s := range sensors {
		if err := model.ValidID(s); err != nil {
			return nil, protocol.Errorf(protocol.CodeBadRequest, "sensor id %q: %v", s, err)
		}
	}
	// Naming sensors while receiving every sensor with none excluded (the
	// default, or after "*") narrows to those sensors: that is what a
	// dashboard picking sensors means. Otherwise subscribe adds to what
	// the connection receives.
	if add && f.all && len(f.set) == 0 {
		f = &filter{}
	}
	next := &filter{all: f.all, set: make(map[string]struct{}, len(f.set)+len(sensors))}
	for s := range f.set {
		next.set[s] = struct{}{}
	}
	// Adding to "all" removes exclusions; adding to a list includes.
	include := add != f.all
	for _, s := range sensors {
		if include {
			next.set[s] = struct{}{}
		} else {
			delete(next.set, s)
		}
	}
	if len(next.set) > maxFilterSensors {
		return nil, protocol.Errorf(protocol.CodeBadRequest, "a connection may name at most %d sensors", maxFilterSensors)
	}
	return next, nil
}

// describe is the data of a "subscribed" reply.
func (f *filter) describe() map[string]any {
	ids := make([]string, 0, len(f.set))
	for s := range f.set {
		ids = append(ids, s)
	}
	slices.Sort(ids)
	if f.all {
		d := map[string]any{"sensors": []string{"*"}}
		if len(ids) > 0 {
			d["except"] = ids
		}
		return d
	}
	return map[string]any{"sensors": ids}
}
