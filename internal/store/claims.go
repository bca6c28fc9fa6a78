package store

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"golang.org/x/time/rate"
)

// A claim is a set of names (an instance id, an MQTT client id) that only
// one running process may hold at a time among those sharing the database.
// It is a session-level advisory lock per name, taken with
// pg_try_advisory_lock on a connection of its own, outside the pool, held
// for the life of the process:
//
//   - PostgreSQL releases it by itself when the session ends: a clean stop,
//     a crash (the kernel closes the socket) or, for a host that vanished,
//     once TCP keepalive gives up on it. The session asks for keepalive
//     probes after 10 s of silence, every 5 s, 3 of them: about 25 s. A
//     lease row would need a heartbeat and an expiry to tune, and a crashed
//     instance would block its own restart until the expiry.
//   - Locks live per database, so two deployments on one server never meet.
//   - The key is a 64-bit hash of the name (hashtextextended): two
//     different names sharing a key is a one in 2^64 event.
//
// The session's application_name carries a random token of the process
// and the first name, so a refusal can say who holds the name and a
// process can tell its own old session from another process after it lost
// its connection.

// claimKey is the SQL of a name's advisory lock key.
const claimKey = `hashtextextended('watchroom.claim:' || $1, 0)`

// claimHolder describes the session holding a name's lock (the bigint key
// shows in pg_locks as classid, the high half, and objid, the low half,
// with objsubid 1).
const claimHolder = `SELECT coalesce(a.application_name, ''), coalesce(host(a.client_addr), 'local socket'), a.backend_start
FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND l.classid::bigint = ((` + claimKey + `) >> 32) & 4294967295
  AND l.objid::bigint = (` + claimKey + `) & 4294967295
LIMIT 1`

// ClaimTakenError is returned when another session holds a name.
type ClaimTakenError struct {
	Name string
	// Holder describes the holding session as PostgreSQL sees it
	// ("application watchroom … from 10.0.0.5 since …"), or is empty if
	// it ended meanwhile.
	Holder string
}

func (e *ClaimTakenError) Error() string {
	if e.Holder == "" {
		return fmt.Sprintf("store: claim %q: held by another session", e.Name)
	}
	return fmt.Sprintf("store: claim %q: held by another session (%s)", e.Name, e.Holder)
}

// ClaimConfig tunes a Claim; zero values take the defaults noted.
type ClaimConfig struct {
	// Label goes into the session's application_name, after the process
	// token (e.g. the instance id).
	Label string
	// CheckInterval is how often Run checks the connection (5s).
	CheckInterval time.Duration
}

// Claim holds names for the life of a process. Create it with Store.Claim;
// Run watches it; Close releases it.
type Claim struct {
	s     *Store
	names []string
	token string // random, in application_name: our own sessions
	app   string
	every time.Duration
	log   *slog.Logger

	conn *pgx.Conn // nil while lost; owned by Run once it started
}

// Claim takes every name on a connection of its own. If another session
// holds one, it releases what it took and returns a *ClaimTakenError
// naming it and its holder.
func (s *Store) Claim(ctx context.Context, cfg ClaimConfig, log *slog.Logger, names ...string) (*Claim, error) {
	if len(names) == 0 {
		return nil, errors.New("store: claim: no names")
	}
	if cfg.CheckInterval <= 0 {
		cfg.CheckInterval = 5 * time.Second
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var b [4]byte
	_, _ = rand.Read(b[:])
	c := &Claim{s: s, names: names, token: hex.EncodeToString(b[:]), every: cfg.CheckInterval, log: log}
	// application_name is cut at 63 bytes: the token goes first.
	c.app = "watchroom " + c.token + " " + cfg.Label
	conn, err := c.take(ctx)
	if err != nil {
		return nil, err
	}
	c.conn = conn
	return c, nil
}

// take connects and locks every name, or fails with what it took released.
func (c *Claim) take(ctx context.Context) (*pgx.Conn, error) {
	cc := c.s.pool.Config().ConnConfig.Copy()
	cc.RuntimeParams["application_name"] = c.app
	// A vanished host's session (and its locks) ends within ~25 s.
	cc.RuntimeParams["tcp_keepalives_idle"] = "10"
	cc.RuntimeParams["tcp_keepalives_interval"] = "5"
	cc.RuntimeParams["tcp_keepalives_count"] = "3"
	conn, err := pgx.ConnectConfig(ctx, cc)
	if err != nil {
		return nil, fmt.Errorf("store: claim: connect: %w", err)
	}
	for _, n := range c.names {
		var ok bool
		if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock(`+claimKey+`)`, n).Scan(&ok); err != nil {
			release(context.WithoutCancel(ctx), conn)
			return nil, fmt.Errorf("store: claim %q: %w", n, err)
		}
		if !ok {
			e := &ClaimTakenError{Name: n}
			var app, addr string
			var since time.Time
			if conn.QueryRow(ctx, claimHolder, n).Scan(&app, &addr, &since) == nil {
				e.Holder = fmt.Sprintf("application %q from %s since %s", app, addr, since.UTC().Format(time.RFC3339))
			}
			release(context.WithoutCancel(ctx), conn) // the names taken so far
			return nil, e
		}
	}
	return conn, nil
}

// mine reports whether a refusal names one of our own sessions (an old
// connection PostgreSQL has not yet noticed is gone).
func (c *Claim) mine(e *ClaimTakenError) bool {
	return strings.Contains(e.Holder, c.token)
}

// Run checks the connection every CheckInterval until ctx is done, then
// releases the names. If the connection is lost (the database restarted,
// the network failed) the names are free for a moment: Run takes them
// again on a new connection, retrying while the database cannot be
// reached or our own old session still holds them. If another process
// took one meanwhile, Run returns its *ClaimTakenError: two processes now
// use the same name, and this one, which lost it, must stop.
func (c *Claim) Run(ctx context.Context) error {
	defer c.Close()
	t := time.NewTicker(c.every)
	defer t.Stop()
	lostLog := rate.Sometimes{First: 1, Interval: time.Minute}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if c.conn != nil {
			pctx, cancel := context.WithTimeout(ctx, c.opTimeout())
			err := c.conn.Ping(pctx)
			cancel()
			if err == nil || ctx.Err() != nil {
				continue
			}
			c.log.Warn("store: lost the connection holding this instance's claim; taking it again", "names", c.names, "err", err)
			c.Close()
		}
		tctx, cancel := context.WithTimeout(ctx, c.opTimeout())
		conn, err := c.take(tctx)
		cancel()
		var taken *ClaimTakenError
		switch {
		case err == nil:
			c.conn = conn
			c.log.Info("store: claim taken again", "names", c.names)
		case ctx.Err() != nil:
			return nil
		case errors.As(err, &taken) && !c.mine(taken):
			return err
		default:
			lostLog.Do(func() {
				c.log.Warn("store: cannot take this instance's claim again yet; retrying (logged at most once a minute)", "names", c.names, "err", err)
			})
		}
	}
}

// minClaimOp is the least time a ping or a take (connect and lock) of a
// claim is given. Bounding them by CheckInterval alone failed under load:
// with a short interval a busy database never answered a new connection
// in time, and every retake attempt timed out.
const minClaimOp = 5 * time.Second

// opTimeout bounds one ping or take: CheckInterval, at least minClaimOp.
func (c *Claim) opTimeout() time.Duration { return max(c.every, minClaimOp) }

// ErrClaimLost is returned by Watch when the connection holding a claim
// is lost: PostgreSQL has released (or is about to release) its names.
var ErrClaimLost = errors.New("store: claim lost with its connection")

// Watch checks the connection every CheckInterval until ctx is done
// (then it returns nil) or the connection is lost (then ErrClaimLost,
// wrapped): unlike Run it does not take the names again, for holders
// that must stop at once when they may no longer hold them (a leader).
// Close releases the names either way; only the owner calls it.
func (c *Claim) Watch(ctx context.Context) error {
	t := time.NewTicker(c.every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		pctx, cancel := context.WithTimeout(ctx, c.opTimeout())
		err := c.conn.Ping(pctx)
		cancel()
		if err != nil && ctx.Err() == nil {
			return fmt.Errorf("%w: %v", ErrClaimLost, err)
		}
	}
}

// Close releases the names (closing their connection). Only the owner
// calls it, once Run has returned or instead of Run.
func (c *Claim) Close() {
	if c.conn != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		release(ctx, c.conn)
		cancel()
		c.conn = nil
	}
}

// release unlocks every name conn holds, then closes it. Closing alone
// frees them too, but only once the server has noticed the closed
// connection, after Close has returned: a claim made right after (a
// restart, a probe) could still find them held. On a broken connection
// the unlock fails and closing is all there is.
func release(ctx context.Context, conn *pgx.Conn) {
	_, _ = conn.Exec(ctx, `SELECT pg_advisory_unlock_all()`)
	_ = conn.Close(ctx)
}
