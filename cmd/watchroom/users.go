package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/watchroom/watchroom/internal/auth"
	"github.com/watchroom/watchroom/internal/model"
	"github.com/watchroom/watchroom/internal/store"
)

const userUsage = `Usage: watchroom user <add|passwd|disable|enable|delete> --name NAME [flags]
  add      --name NAME --role viewer|analyst|operator|admin --password-stdin
  passwd   --name NAME --password-stdin
  disable  --name NAME     (the user can no longer log in)
  enable   --name NAME
  delete   --name NAME
A new role or password, disabling and deleting end the user's sessions at
once: their tokens are refused and their WebSockets close (4001).
`

// runUser serves `watchroom user …` against the database of
// WATCHROOM_DATABASE_URL (or --database-url).
func runUser(ctx context.Context, args, env []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, userUsage)
		return errUsage
	}
	verb := args[0]
	fs := flag.NewFlagSet("user "+verb, flag.ContinueOnError)
	fs.SetOutput(stderr)
	dbURL := databaseURL(fs, env)
	name := fs.String("name", "", "user name (letters, digits, '-', '_', '.')")
	var roleName *string
	var fromStdin *bool
	switch verb {
	case "add":
		roleName = fs.String("role", "", "viewer, analyst, operator or admin")
		fallthrough
	case "passwd":
		fromStdin = fs.Bool("password-stdin", false, "read the password from the first line of standard input")
	case "disable", "enable", "delete":
	default:
		fmt.Fprint(stderr, userUsage)
		return errUsage
	}
	if err := fs.Parse(args[1:]); err != nil {
		return errUsage
	}
	if *name == "" || (roleName != nil && *roleName == "") || (fromStdin != nil && !*fromStdin) {
		fmt.Fprint(stderr, userUsage)
		return errors.New("missing flags (passwords never go on the command line: use --password-stdin)")
	}
	if *dbURL == "" {
		return errors.New("WATCHROOM_DATABASE_URL (or --database-url) is required")
	}
	var password string
	if fromStdin != nil {
		line, err := bufio.NewReader(io.LimitReader(stdin, 4096)).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("read password: %w", err)
		}
		password = strings.TrimRight(line, "\r\n")
	}
	if err := store.Migrate(ctx, *dbURL, nil); err != nil {
		return err
	}
	st, err := store.Open(ctx, *dbURL)
	if err != nil {
		return err
	}
	defer st.Close()
	switch verb {
	case "add":
		role, err := model.ParseRole(*roleName)
		if err != nil {
			return err
		}
		if err := upsertUser(ctx, st, *name, role, password); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "user %s saved with role %s\n", *name, role)
		return nil
	case "passwd":
		h, err := auth.HashPassword(password)
		if err != nil {
			return err
		}
		err = st.SetPassword(ctx, *name, h)
		return userDone(stdout, err, *name, "has a new password; their sessions ended")
	case "disable":
		return userDone(stdout, st.SetUserDisabled(ctx, *name, true), *name, "disabled; their sessions ended")
	case "enable":
		return userDone(stdout, st.SetUserDisabled(ctx, *name, false), *name, "enabled")
	default: // delete
		return userDone(stdout, st.DeleteUser(ctx, *name), *name, "deleted; their sessions ended")
	}
}

func userDone(stdout io.Writer, err error, name, what string) error {
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("no user %q", name)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "user %s %s\n", name, what)
	return nil
}

// userStore is what upsertUser needs of the store.
type userStore interface {
	User(ctx context.Context, name string) (model.User, error)
	UpsertUser(ctx context.Context, name string, role model.Role, passwordHash string) error
}

// upsertUser creates user name or sets its role and password. A user who
// already has that role and password is left alone: re-hashing would give
// a new hash and so end their sessions (WATCHROOM_ADMIN_PASSWORD is applied
// at every start).
func upsertUser(ctx context.Context, st userStore, name string, role model.Role, password string) error {
	if err := model.ValidID(name); err != nil {
		return fmt.Errorf("user name %q: %w", name, err)
	}
	if u, err := st.User(ctx, name); err == nil && u.Role == role && auth.CheckPassword(u.PasswordHash, password) == nil {
		return nil
	}
	h, err := auth.HashPassword(password)
	if err != nil {
		return err
	}
	return st.UpsertUser(ctx, name, role, h)
}
