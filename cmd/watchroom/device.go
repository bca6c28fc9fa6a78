package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/watchroom/watchroom/internal/broker"
	"github.com/watchroom/watchroom/internal/model"
	"github.com/watchroom/watchroom/internal/store"
	"github.com/watchroom/watchroom/internal/web"
)

const deviceUsage = `Usage:
  watchroom device add --id ID          register a device; prints its MQTT secret once
  watchroom device list                 list devices, revoked ones included
  watchroom device revoke --id ID       refuse the device from now on
  watchroom device export-mosquitto --passwd FILE --acl FILE [--owner UID:GID]
                                        write Mosquitto's password_file and acl_file
The database comes from WATCHROOM_DATABASE_URL (or --database-url).
`

// runDevice dispatches `watchroom device ...`.
func runDevice(ctx context.Context, args, env []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, deviceUsage)
		return errUsage
	}
	fs := flag.NewFlagSet("device "+args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	dbURL := databaseURL(fs, env)
	id := fs.String("id", "", "device id: its MQTT user name and sensor id (letters, digits, '-', '_', '.')")
	passwd := fs.String("passwd", "", "export-mosquitto: password_file to write")
	acl := fs.String("acl", "", "export-mosquitto: acl_file to write")
	owner := fs.String("owner", "", "export-mosquitto: chown the files to UID:GID (Mosquitto's user; needs root)")
	if err := fs.Parse(args[1:]); err != nil {
		return errUsage
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("device %s takes flags only", args[0])
	}
	if *dbURL == "" {
		return errors.New("WATCHROOM_DATABASE_URL (or --database-url) is required")
	}
	// Every subcommand applies pending migrations first, so each works on
	// a fresh database (export-mosquitto runs before the server in compose).
	if err := store.Migrate(ctx, *dbURL, nil); err != nil {
		return err
	}
	st, err := store.Open(ctx, *dbURL)
	if err != nil {
		return err
	}
	defer st.Close()
	admin := deviceAdmin{st: st}

	switch args[0] {
	case "add":
		secret, err := admin.AddDevice(ctx, *id, "cli")
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "device %s registered. Its MQTT credentials (the secret is not shown again):\n  username: %s\n  password: %s\n", *id, *id, secret)
		return nil
	case "list":
		ds, err := admin.Devices(ctx)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tSTATE\tCREATED\tBY\tREVOKED")
		for _, d := range ds {
			state, revoked := "active", "-"
			if d.RevokedAt != nil {
				state, revoked = "revoked", d.RevokedAt.Format(time.RFC3339)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", d.ID, state, d.CreatedAt.Format(time.RFC3339), d.CreatedBy, revoked)
		}
		return tw.Flush()
	case "revoke":
		if err := admin.RevokeDevice(ctx, *id); err != nil {
			if errors.Is(err, store.ErrNotFound) {
				return fmt.Errorf("no active device %q", *id)
			}
			return err
		}
		fmt.Fprintf(stdout, "device %s revoked; the embedded broker disconnects it within %s (Mosquitto: export again and reload it)\n", *id, broker.DefaultAuthCacheTTL)
		return nil
	case "export-mosquitto":
		if *passwd == "" || *acl == "" {
			return errors.New("export-mosquitto needs --passwd FILE and --acl FILE")
		}
		return exportMosquitto(ctx, st, env, *passwd, *acl, *owner, stdout)
	}
	fmt.Fprint(stderr, deviceUsage)
	return errUsage
}

// deviceAdmin registers and revokes devices: the command line and the REST
// API (web.DeviceService) share it. revoked, when set, is told of each
// revocation (the embedded broker disconnects the device at once).
type deviceAdmin struct {
	st      *store.Store
	revoked func(id string)
}

var _ web.DeviceService = deviceAdmin{}

func (a deviceAdmin) AddDevice(ctx context.Context, id, createdBy string) (string, error) {
	if err := model.ValidID(id); err != nil {
		return "", fmt.Errorf("%w %q: %w", web.ErrDeviceID, id, err)
	}
	if broker.ReservedUser(id) {
		return "", fmt.Errorf("%w %q: reserved for the broker's own user", web.ErrDeviceID, id)
	}
	secret := broker.NewSecret()
	hash, err := broker.HashSecret(secret)
	if err != nil {
		return "", err
	}
	if err := a.st.AddDevice(ctx, id, hash, createdBy); err != nil {
		if errors.Is(err, store.ErrDeviceExists) {
			return "", fmt.Errorf("%w: %q (revoke it first to issue a new secret)", web.ErrDeviceExists, id)
		}
		return "", err
	}
	return secret, nil
}

func (a deviceAdmin) RevokeDevice(ctx context.Context, id string) error {
	if err := a.st.RevokeDevice(ctx, id); err != nil {
		return err
	}
	if a.revoked != nil {
		a.revoked(id)
	}
	return nil
}

func (a deviceAdmin) Devices(ctx context.Context) ([]web.Device, error) {
	ds, err := a.st.Devices(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]web.Device, len(ds))
	for i, d := range ds {
		out[i] = web.Device{ID: d.ID, Active: d.Active(), CreatedBy: d.CreatedBy, CreatedAt: d.CreatedAt, RevokedAt: d.RevokedAt}
	}
	return out, nil
}

// exportMosquitto writes the password and ACL files for Mosquitto: every
// active device with its stored hash, Watchroom's service user (user name
// and password from WATCHROOM_MQTT_URL, which the server uses to connect)
// and, when WATCHROOM_MQTT_GATEWAY_PASSWORD is set, the gateway user.
func exportMosquitto(ctx context.Context, st *store.Store, env []string, passwdPath, aclPath, owner string, stdout io.Writer) error {
	u, err := url.Parse(lookupEnv(env, "WATCHROOM_MQTT_URL"))
	if err != nil || u.User == nil || u.User.Username() == "" {
		return errors.New("export-mosquitto: WATCHROOM_MQTT_URL must carry Watchroom's own MQTT user, e.g. tcp://watchroom:SECRET@mosquitto:1883")
	}
	servicePass, _ := u.User.Password()
	if servicePass == "" {
		return errors.New("export-mosquitto: WATCHROOM_MQTT_URL has no password for user " + u.User.Username())
	}
	var entries []broker.PasswdEntry
	add := func(user, secret string) error {
		h, err := broker.HashSecret(secret)
		entries = append(entries, broker.PasswdEntry{User: user, Hash: h})
		return err
	}
	if err := add(u.User.Username(), servicePass); err != nil {
		return err
	}
	gateway := lookupEnv(env, "WATCHROOM_MQTT_GATEWAY_PASSWORD")
	if gateway != "" {
		if err := add(broker.GatewayUser, gateway); err != nil {
			return err
		}
	}
	ds, err := st.Devices(ctx)
	if err != nil {
		return err
	}
	n := 0
	for _, d := range ds {
		if d.Active() {
			entries = append(entries, broker.PasswdEntry{User: d.ID, Hash: d.SecretHash})
			n++
		}
	}
	var pw, acl bytes.Buffer
	if err := broker.WritePasswd(&pw, entries); err != nil {
		return err
	}
	if err := broker.WriteACL(&acl, u.User.Username(), gateway != ""); err != nil {
		return err
	}
	uid, gid, err := parseOwner(owner)
	if err != nil {
		return err
	}
	if err := writeFileAtomic(passwdPath, pw.Bytes(), 0o600, uid, gid); err != nil {
		return err
	}
	if err := writeFileAtomic(aclPath, acl.Bytes(), 0o600, uid, gid); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %s (%d devices, service user %s, gateway %t) and %s; reload Mosquitto (SIGHUP) to apply\n",
		passwdPath, n, u.User.Username(), gateway != "", aclPath)
	return nil
}

func parseOwner(s string) (uid, gid int, err error) {
	if s == "" {
		return -1, -1, nil
	}
	us, gs, ok := strings.Cut(s, ":")
	uid, err1 := strconv.Atoi(us)
	gid, err2 := strconv.Atoi(gs)
	if !ok || err1 != nil || err2 != nil || uid < 0 || gid < 0 {
		return 0, 0, fmt.Errorf("--owner %q: want UID:GID, e.g. 1883:1883", s)
	}
	return uid, gid, nil
}

// writeFileAtomic replaces path with data through a temporary file in the
// same directory, so Mosquitto reloading at that moment reads the old file
// or the new one, never half of one.
func writeFileAtomic(path string, data []byte, mode os.FileMode, uid, gid int) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name()) // fails harmlessly once renamed
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if uid >= 0 {
		if err := tmp.Chown(uid, gid); err != nil {
			tmp.Close()
			return fmt.Errorf("write %s: %w", path, err)
		}
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
