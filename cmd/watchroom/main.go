// Command watchroom is the Watchroom server, its administration commands,
// a one-command demo and the sensor simulator.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Environ(), os.Stdin, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		if !errors.Is(err, errUsage) {
			fmt.Fprintln(os.Stderr, "watchroom:", err)
		}
		os.Exit(1)
	}
}

var errUsage = errors.New("usage")

const usage = `Usage: watchroom <command> [flags]

Commands:
  serve       run the server (configuration: flags or WATCHROOM_* variables; see README)
  demo        run everything on this machine: server, embedded broker, simulator, demo users
  migrate     apply database migrations and exit
  user        users: add --name NAME --role viewer|analyst|operator|admin --password-stdin,
              passwd --name NAME --password-stdin, disable|enable|delete --name NAME
              (every change but enable ends the user's sessions at once)
  device      MQTT device credentials: add --id ID, list, revoke --id ID, export-mosquitto --passwd FILE --acl FILE
  simulate    publish simulated sensor readings and answer device commands
  export      write stored readings as CSV or NDJSON (--sensor-id, --metric, --from, --to, --format, --out)
  import      load readings from export's CSV or NDJSON (--file FILE): deduplicated, rollups updated
  chat        terminal client for chat rooms and alerts: chat [--url URL] [--user NAME] [--token-file PATH]
  bench       load generator: drive a running server on this machine over MQTT and WebSocket, print the figures
  healthcheck exit 0 when the local server answers /healthz (for container health checks)

Run 'watchroom <command> -h' for the flags of a command.
`

// run dispatches a subcommand. env is the environment as from os.Environ.
func run(ctx context.Context, args, env []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errUsage
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "serve":
		return runServe(ctx, rest, env, stdout, stderr)
	case "demo":
		return runDemo(ctx, rest, env, stdout, stderr)
	case "migrate":
		return runMigrate(ctx, rest, env, stderr)
	case "user":
		return runUser(ctx, rest, env, stdin, stdout, stderr)
	case "device":
		return runDevice(ctx, rest, env, stdout, stderr)
	case "simulate":
		return runSimulate(ctx, rest, env, stderr)
	case "chat":
		return runChat(ctx, rest, env, stdin, stdout, stderr)
	case "export":
		return runExport(ctx, rest, env, stdout, stderr)
	case "import":
		return runImport(ctx, rest, env, stdout, stderr)
	case "healthcheck":
		return runHealthcheck(ctx, rest, env, stderr)
	case "bench":
		return runBench(ctx, rest, env, stdin, stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprintf(stderr, "watchroom: unknown command %q\n\n%s", cmd, usage)
	return errUsage
}
