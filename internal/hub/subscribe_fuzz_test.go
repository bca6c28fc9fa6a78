package hub

import (
	"encoding/json"
	"github.com/watchroom/watchroom/internal/protocol"
	"slices"
	"testing"
)

// FuzzSubscribe decodes subscribe/unsubscribe data as conn.subscribe does
// and applies it to the default filter and to a narrowed one. A refusal
// is a bad_request; an accepted change wants exactly what it says: after
// subscribe every named sensor is wanted, after unsubscribe none is.
func FuzzSubscribe(f *testing.F) {
	for _, s := range []string{`{"sensors":["s-1","s-2"]}`, `{"sensors":["*"]}`, `{"sensors":["*","s-1"]}`, `{"sensors":[]}`, `{"sensors":["bad id"]}`, `{"sensors":"s-1"}`, `null`} {
		f.Add(true, []byte(s))
		f.Add(false, []byte(s))
	}
	narrowed, _ := allSensors.apply(true, []string{"s-1"})
	f.Fuzz(func(t *testing.T, add bool, data []byte) {
		var d struct {
			Sensors []string `json:"sensors"`
		}
		if json.Unmarshal(data, &d) != nil {
			return // conn.subscribe answers bad_request before apply
		}
		for _, from := range []*filter{allSensors, narrowed, {}} {
			next, e := from.apply(add, d.Sensors)
			if e != nil {
				if e.Code != protocol.CodeBadRequest || next != nil {
					t.Fatalf("refused with %+v and filter %v", e, next)
				}
				continue
			}
			all := slices.Contains(d.Sensors, "*")
			for _, s := range d.Sensors {
				if s != "*" && next.wants(s) != add {
					t.Fatalf("after add=%v of %q: wants(%q) = %v", add, d.Sensors, s, !add)
				}
			}
			if all && next.wants("any-sensor") != add {
				t.Fatalf(`after add=%v of "*": wants(any) = %v`, add, !add)
			}
			// The reply describes a filter that decodes to the same one.
			b, _ := json.Marshal(next.describe())
			var desc struct {
				Sensors []string `json:"sensors"`
				Except  []string `json:"except"`
			}
			if err := json.Unmarshal(b, &desc); err != nil {
				t.Fatalf("describe: %s: %v", b, err)
			}
			if next.all != slices.Equal(desc.Sensors, []string{"*"}) || len(desc.Except)+len(desc.Sensors)-btoi(next.all) != len(next.set) {
				t.Fatalf("describe %s does not match %+v", b, next)
			}
		}
	})
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
