package loadgen

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/jackc/pgx/v5"
)

// ceilingCount bounds the ceiling runs: below Mosquitto's
// max_queued_messages, and short.
const ceilingCount = 100_000

// brokerCeiling publishes the same readings from the same number of
// publishers, as fast as the broker takes them, into one bare paho
// subscriber at QoS 1 that only counts (auto-ack, no storage, no
// WebSocket): the broker's and MQTT's share of the machine, alone. The
// topic is outside the server's subscription.
func (r *runner) brokerCeiling(ctx context.Context) error {
	c := r.cfg
	total := min(int(float64(c.Rate)*c.Duration.Seconds()), ceilingCount)
	topic := fmt.Sprintf("lgceil/%s", r.id)
	var got atomic.Int64
	var last atomic.Int64
	done := make(chan struct{})
	sub := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(c.MQTTURL).SetClientID("lg" + r.id + "-ceil-sub").
		SetCleanSession(true).SetAutoReconnect(false).SetConnectTimeout(10 * time.Second))
	if tok := sub.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		return fmt.Errorf("subscriber: connect: %v", tok.Error())
	}
	defer sub.Disconnect(250)
	tok := sub.Subscribe(topic+"/#", 1, func(_ mqtt.Client, _ mqtt.Message) {
		last.Store(time.Now().UnixNano())
		if got.Add(1) == int64(total) {
			close(done)
		}
	})
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		return fmt.Errorf("subscribe: %v", tok.Error())
	}
	sentAt := make([]atomic.Int64, total)
	var acked atomic.Int64
	base := time.Now()
	r.logf("broker ceiling: %d readings from %d publishers into a bare subscriber", total, c.Publishers)
	var wg sync.WaitGroup
	start := time.Now()
	for p := range c.Publishers {
		cl, err := newMQTT(c.MQTTURL, fmt.Sprintf("lg%s-ceil%d", r.id, p))
		if err != nil {
			return err
		}
		defer cl.Disconnect(250)
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = publishPaced(ctx, cl, fmt.Sprintf("%s/p%d/v", topic, p), p, c.Publishers, total, 0, base, sentAt, &acked, c.Drain)
		}()
	}
	wg.Wait()
	select {
	case <-done:
	case <-time.After(c.Drain):
	case <-ctx.Done():
	}
	n := got.Load()
	ce := &r.res.Ceilings
	ce.BrokerReadings = int(n)
	if n > 0 {
		ce.BrokerPerSecond = float64(n) / time.Unix(0, last.Load()).Sub(start).Seconds()
	}
	return nil
}

// copyCeiling copies the same number of rows, of the same shape, with
// pgx's CopyFrom from this process into a temporary table with the
// readings table's columns and key, 5,000 rows a statement: the
// database's share alone.
func (r *runner) copyCeiling(ctx context.Context) error {
	c := r.cfg
	total := min(int(float64(c.Rate)*c.Duration.Seconds()), 5*ceilingCount)
	cctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	conn, err := pgx.Connect(cctx, c.DatabaseURL)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(cctx, `CREATE TEMP TABLE lg_ceiling (LIKE readings INCLUDING DEFAULTS, PRIMARY KEY (sensor_id, metric, ts))`); err != nil {
		return err
	}
	r.logf("database ceiling: CopyFrom of %d rows", total)
	base := time.Now()
	const chunk = 5000
	rows := make([][]any, 0, chunk)
	start := time.Now()
	for i := 0; i < total; i += chunk {
		rows = rows[:0]
		for j := i; j < min(i+chunk, total); j++ {
			rows = append(rows, []any{fmt.Sprintf("lg%s-p%d", r.id, j%max(c.Publishers, 1)), "v",
				base.Add(time.Duration(j) * time.Microsecond), float64(j % 1000)})
		}
		if _, err := conn.CopyFrom(cctx, pgx.Identifier{"lg_ceiling"}, []string{"sensor_id", "metric", "ts", "value"}, pgx.CopyFromRows(rows)); err != nil {
			return err
		}
	}
	el := time.Since(start)
	r.res.Ceilings.CopyRows = total
	r.res.Ceilings.CopyPerSecond = float64(total) / el.Seconds()
	return nil
}
