package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	iofs "io/fs"
	"os"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/watchroom/watchroom/internal/chatclient"
)

// runChat is `watchroom chat`: the terminal client (internal/chatclient).
// The password is typed on the login screen, never taken from a flag or
// the environment, where other users could read it. With --token-file the
// token is kept in a file only its owner may read (0600; a file others
// may read is refused), and a saved token still valid skips the password.
func runChat(ctx context.Context, args, env []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("chat", flag.ContinueOnError)
	fs.SetOutput(stderr)
	url := fs.String("url", "http://127.0.0.1:8080", "server URL (http:// or https://)")
	user := fs.String("user", "", "user name; with it the login screen starts at the password")
	tokenFile := fs.String("token-file", "", "keep the login token in this file (mode 0600) and skip the password while it is valid")
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "chat: unexpected argument %q\n", fs.Arg(0))
		return errUsage
	}
	o := chatclient.Options{URL: *url, User: *user, NoColor: lookupEnv(env, "NO_COLOR") != "", TokenFile: *tokenFile}
	if *tokenFile != "" {
		saved, err := chatclient.LoadToken(*tokenFile)
		switch {
		case err == nil:
			o.Saved = &saved
		case !errors.Is(err, iofs.ErrNotExist): // none yet: the first login writes it
			return fmt.Errorf("chat: %w", err)
		}
	}
	m := chatclient.New(o)
	opts := []tea.ProgramOption{tea.WithAltScreen(), tea.WithContext(ctx)}
	// The defaults (os.Stdin, os.Stdout) are the terminal, put in raw mode.
	if stdin != os.Stdin {
		opts = append(opts, tea.WithInput(stdin))
	}
	if stdout != os.Stdout {
		opts = append(opts, tea.WithOutput(stdout))
	}
	p := tea.NewProgram(m, opts...)
	final, err := p.Run()
	if fm, ok := final.(chatclient.Model); ok {
		fm.Close()
	}
	if err != nil && ctx.Err() == nil {
		return fmt.Errorf("chat: %w", err)
	}
	return nil
}
