// Command fsrepctl manages an fsrep cluster through any node's admin API.
//
// main.go holds the global flags, the verb table and the dispatcher, and the
// one mapping from errors to exit codes; each verb group lives in its own
// file (status.go, node.go, volume.go, export.go, replica.go, repair.go,
// scrub.go, file.go, leader.go, snapshot.go, check.go), and progress.go
// draws the progress line of long operations.
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	iofs "io/fs"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/fsrep/fsrep/internal/admin"
)

// Exit codes scripts can rely on (also in the usage text).
const (
	exitOK          = 0
	exitError       = 1
	exitUsage       = 2
	exitNotFound    = 3
	exitUnhealthy   = 4
	exitUnreachable = 5
)

const (
	defaultAdmin     = "127.0.0.1:19090"
	defaultTokenFile = "fsrep-data/admin.token"
	defaultCAFile    = "fsrep-data/tls/ca.crt"
	defaultTimeout   = 15 * time.Second
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	c := &cli{
		stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr,
		getenv: os.Getenv, stdinIsTerminal: stdinIsTerminal,
		stderrIsTerminal: func() bool { return isTerminal(os.Stderr) },
		now:              time.Now,
	}
	code := c.run(ctx, os.Args[1:])
	stop()
	os.Exit(code)
}

// stdinIsTerminal reports whether stdin is a character device (a terminal),
// which is the only place a typed confirmation can come from.
func stdinIsTerminal() bool { return isTerminal(os.Stdin) }

// isTerminal asks the terminal driver (a character device such as
// /dev/null is not a terminal: a cron job must not be prompted).
func isTerminal(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// cli is one invocation: its streams, environment and global flags.
type cli struct {
	stdin           io.Reader
	stdout, stderr  io.Writer
	getenv          func(string) string
	stdinIsTerminal func() bool
	// stderrIsTerminal decides whether progress redraws one line in place
	// or prints a line per change (for logs); nil means not a terminal.
	stderrIsTerminal func() bool
	// now is the clock of progress rates and ETAs; nil means time.Now.
	now func() time.Time

	g globals
}

func (c *cli) clock() time.Time {
	if c.now == nil {
		return time.Now()
	}
	return c.now()
}

func (c *cli) progressOnTerminal() bool { return c.stderrIsTerminal != nil && c.stderrIsTerminal() }

// globals are the flags every verb accepts, before or after the verb.
type globals struct {
	admin        string
	token        string
	tokenFile    string
	tokenFileSet bool // given by flag or environment, so it must exist
	caFile       string
	output       string
	timeout      time.Duration
}

func (c *cli) defaults() {
	c.g = globals{
		admin:     or(c.getenv("FSREP_ADMIN"), defaultAdmin),
		token:     c.getenv("FSREP_TOKEN"),
		tokenFile: or(c.getenv("FSREP_TOKEN_FILE"), "./"+defaultTokenFile),
		caFile:    c.getenv("FSREP_CA_FILE"),
		output:    "table",
		timeout:   defaultTimeout,
	}
	c.g.tokenFileSet = c.getenv("FSREP_TOKEN_FILE") != ""
}

func or(s, def string) string {
	if s != "" {
		return s
	}
	return def
}

var globalFlagNames = map[string]bool{"admin": true, "token": true, "token-file": true, "ca-file": true, "o": true, "output": true, "timeout": true}

// register adds the global flags to fs with their current values as
// defaults, so parsing a second flag set keeps what the first one set.
func (g *globals) register(fs *flag.FlagSet) {
	fs.StringVar(&g.admin, "admin", g.admin, "admin API address `ADDR` (host:port)")
	fs.StringVar(&g.token, "token", g.token, "admin `TOKEN`")
	fs.StringVar(&g.tokenFile, "token-file", g.tokenFile, "`FILE` holding the admin token")
	fs.StringVar(&g.caFile, "ca-file", g.caFile, "cluster CA certificate `FILE` that an https admin API is verified with")
	fs.StringVar(&g.output, "o", g.output, "output `FORMAT`: table or json")
	fs.StringVar(&g.output, "output", g.output, "output `FORMAT`: table or json")
	fs.DurationVar(&g.timeout, "timeout", g.timeout, "per-request `TIMEOUT`")
}

func (g *globals) noteSet(fs *flag.FlagSet) {
	fs.Visit(func(f *flag.Flag) {
		if f.Name == "token-file" {
			g.tokenFileSet = true
		}
	})
}

func (g *globals) validate() error {
	switch {
	case g.output != "table" && g.output != "json":
		return usageErrorf("-o must be table or json, not %q", g.output)
	case g.admin == "":
		return usageErrorf("--admin must not be empty")
	case g.timeout < 0:
		return usageErrorf("--timeout must not be negative")
	}
	return nil
}

// command is one verb.
type command struct {
	name    string // "volume create"
	args    string // positional arguments for the synopsis
	summary string
	help    string // description and examples for --help
	// setup registers the verb's flags and returns the function that runs it.
	setup func(fs *flag.FlagSet) func(ctx context.Context, c *cli, args []string) error
}

func commands() []*command {
	return []*command{
		statusCommand(), healthCommand(),
		nodeListCommand(), nodeInfoCommand(), nodeAddCommand(), nodeDrainCommand(), nodeUndrainCommand(), nodeRemoveCommand(),
		volumeCreateCommand(), volumeListCommand(), volumeInfoCommand(), volumeSetCommand(), volumeDeleteCommand(),
		fileLocateCommand(), leaderTransferCommand(), snapshotSaveCommand(), snapshotRestoreCommand(), tokenRotateCommand(), handleKeyRotateCommand(),
		exportShowCommand(), exportSetCommand(),
		replicaStatusCommand(), checkCommand(),
		repairStatusCommand(), repairStartCommand(), repairPauseCommand(), repairResumeCommand(),
		scrubStatusCommand(), scrubStartCommand(), scrubPauseCommand(), scrubResumeCommand(),
	}
}

// lookup finds the longest verb that prefixes words.
func lookup(words []string) (*command, []string) {
	var best *command
	n := 0
	for _, cmd := range commands() {
		parts := strings.Fields(cmd.name)
		if len(parts) > len(words) || len(parts) <= n {
			continue
		}
		match := true
		for i, p := range parts {
			match = match && words[i] == p
		}
		if match {
			best, n = cmd, len(parts)
		}
	}
	return best, words[n:]
}

func newFlagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors are reported by run, help by printHelp
	fs.Usage = func() {}
	return fs
}

// run executes one invocation and returns its exit code.
func (c *cli) run(ctx context.Context, args []string) int {
	c.defaults()
	gfs := newFlagSet("fsrepctl")
	c.g.register(gfs)
	if err := gfs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			c.usage(c.stdout)
			return exitOK
		}
		return c.exit(usageErrorf("%v", err))
	}
	c.g.noteSet(gfs)
	words := gfs.Args()
	if len(words) == 0 {
		c.usage(c.stderr)
		return exitUsage
	}
	if words[0] == "help" {
		return c.helpVerb(words[1:])
	}
	cmd, rest := lookup(words)
	if cmd == nil {
		if subs := subVerbs(words[0]); len(subs) > 0 {
			return c.exit(usageErrorf("%q needs one of: %s", words[0], strings.Join(subs, ", ")))
		}
		return c.exit(usageErrorf("unknown verb %q", strings.Join(leadingWords(words), " ")))
	}

	fs := newFlagSet("fsrepctl " + cmd.name)
	runVerb := cmd.setup(fs)
	c.g.register(fs)
	pos, err := parseInterspersed(fs, rest)
	if errors.Is(err, flag.ErrHelp) {
		printHelp(c.stdout, cmd)
		return exitOK
	}
	if err != nil {
		return c.exit(&usageError{msg: err.Error(), cmd: cmd})
	}
	c.g.noteSet(fs)
	if err := c.g.validate(); err != nil {
		return c.exit(err)
	}
	if err := runVerb(ctx, c, pos); err != nil {
		var ue *usageError
		if errors.As(err, &ue) && ue.cmd == nil {
			ue.cmd = cmd
		}
		return c.exit(err)
	}
	return exitOK
}

// subVerbs lists the verbs of a group ("volume" -> create, list, ...).
func subVerbs(group string) []string {
	var out []string
	for _, cmd := range commands() {
		if sub, ok := strings.CutPrefix(cmd.name, group+" "); ok {
			out = append(out, sub)
		}
	}
	return out
}

// leadingWords is the verb-looking prefix of words (for error messages).
func leadingWords(words []string) []string {
	for i, w := range words {
		if strings.HasPrefix(w, "-") || i == 2 {
			return words[:i]
		}
	}
	return words
}

// parseInterspersed parses flags anywhere among the positional arguments
// (the flag package stops at the first one); everything after "--" is
// positional.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if used := len(args) - len(rest); used > 0 && args[used-1] == "--" {
			return append(pos, rest...), nil
		}
		if len(rest) == 0 {
			return pos, nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// helpVerb serves "fsrepctl help [VERB]".
func (c *cli) helpVerb(words []string) int {
	if len(words) == 0 {
		c.usage(c.stdout)
		return exitOK
	}
	cmd, rest := lookup(words)
	if cmd == nil || len(rest) > 0 {
		return c.exit(usageErrorf("unknown verb %q", strings.Join(words, " ")))
	}
	printHelp(c.stdout, cmd)
	return exitOK
}

func (c *cli) usage(w io.Writer) {
	fmt.Fprint(w, `fsrepctl manages an fsrep cluster through any node's admin API.

Usage:
  fsrepctl [global flags] VERB [flags] [args]

Verbs:
`)
	for _, cmd := range commands() {
		fmt.Fprintf(w, "  %-26s %s\n", strings.TrimSpace(cmd.name+" "+cmd.args), cmd.summary)
	}
	fmt.Fprintf(w, `
Global flags (before or after the verb):
  --admin ADDR       admin API address (env FSREP_ADMIN; default %s)
  --token TOKEN      admin token (env FSREP_TOKEN)
  --token-file FILE  file holding the admin token, used when no token is given
                     (env FSREP_TOKEN_FILE; default ./%s)
  --ca-file FILE     cluster CA certificate (PEM) an https:// admin address is
                     verified with (env FSREP_CA_FILE; default: the system's
                     roots, or ./fsrep-data/tls/ca.crt when it exists)
  -o FORMAT          table (default) or json; json prints the API's answer
  --timeout D        per-request timeout (default %s)

Exit codes:
  0  success
  1  other error (refused by the cluster, wrong token, no leader, a node
     that did not answer, a wait interrupted, ...)
  2  usage error (bad verb, flag or argument; no admin token; unconfirmed
     delete or remove)
  3  not found (no such volume or node)
  4  unhealthy (health or status: node not ready, or cluster not ok;
     replica status: chunks under-replicated, unavailable or corrupt;
     file locate: a replica checked is not ok; check: problems found)
  5  unreachable (nothing answers at the admin address)

Run 'fsrepctl VERB --help' for a verb's flags and an example.
`, defaultAdmin, defaultTokenFile, defaultTimeout)
}

// printHelp prints a verb's synopsis, description and own flags.
func printHelp(w io.Writer, cmd *command) {
	fmt.Fprintf(w, "Usage: fsrepctl %s [flags]", cmd.name)
	if cmd.args != "" {
		fmt.Fprintf(w, " %s", cmd.args)
	}
	fmt.Fprintf(w, "\n\n%s\n\n%s\n", cmd.summary, strings.TrimSpace(cmd.help))
	fs := newFlagSet(cmd.name)
	cmd.setup(fs)
	own := newFlagSet(cmd.name)
	fs.VisitAll(func(f *flag.Flag) {
		if !globalFlagNames[f.Name] {
			own.Var(f.Value, f.Name, f.Usage)
		}
	})
	own.SetOutput(w)
	fmt.Fprintln(w)
	if countFlags(own) > 0 {
		fmt.Fprintln(w, "Flags:")
		own.PrintDefaults()
		fmt.Fprintln(w)
	}
	fmt.Fprintln(w, "Global flags and exit codes: fsrepctl --help")
}

func countFlags(fs *flag.FlagSet) int {
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	return n
}

// errNoToken means no admin token was given and the default file is absent.
var errNoToken = errors.New("no admin token")

// token returns the admin token: --token, FSREP_TOKEN, or the token file.
func (c *cli) token() (string, error) {
	if t := strings.TrimSpace(c.g.token); t != "" {
		return t, nil
	}
	data, err := os.ReadFile(c.g.tokenFile)
	switch {
	case err != nil && !c.g.tokenFileSet && errors.Is(err, iofs.ErrNotExist):
		return "", fmt.Errorf("%w: pass --token, set FSREP_TOKEN, or point --token-file (FSREP_TOKEN_FILE) at the node's admin.token (%s does not exist)",
			errNoToken, c.g.tokenFile)
	case err != nil:
		return "", fmt.Errorf("read the admin token: %w", err)
	}
	t := strings.TrimSpace(string(data))
	if t == "" {
		return "", fmt.Errorf("%w: token file %s is empty", errNoToken, c.g.tokenFile)
	}
	return t, nil
}

// client returns an admin client carrying the token.
func (c *cli) client() (*admin.Client, error) {
	tok, err := c.token()
	if err != nil {
		return nil, err
	}
	return c.newClient(tok, c.g.timeout)
}

// newClient is an admin client for --admin with token, verifying an https
// admin API with --ca-file.
func (c *cli) newClient(token string, timeout time.Duration) (*admin.Client, error) {
	cl := admin.NewClient(c.g.admin, token, timeout)
	if !strings.HasPrefix(cl.Addr(), "https://") {
		return cl, nil
	}
	caFile := c.g.caFile
	if caFile == "" {
		if _, err := os.Stat(defaultCAFile); err != nil {
			return cl, nil // the system's roots
		}
		caFile = defaultCAFile
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("read the cluster CA certificate: %w", err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pem) {
		return nil, usageErrorf("--ca-file %s holds no PEM certificate", caFile)
	}
	return cl.WithTLS(&tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}), nil
}

// usageError is a mistake in the invocation; cmd, when set, names the verb
// whose help to point at.
type usageError struct {
	msg string
	cmd *command
}

func (e *usageError) Error() string { return e.msg }

func usageErrorf(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// errUnhealthy is returned by a verb that has already printed why.
var errUnhealthy = errors.New("unhealthy")

// exitCode maps an error to the exit code; it is the only place that does.
func exitCode(err error) int {
	var ue *usageError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &ue), errors.Is(err, errNoToken):
		return exitUsage
	case errors.Is(err, errUnhealthy):
		return exitUnhealthy
	case errors.Is(err, admin.ErrUnreachable):
		return exitUnreachable
	case admin.IsCode(err, admin.CodeNotFound):
		return exitNotFound
	}
	return exitError
}

// exit reports err on stderr and returns its exit code.
func (c *cli) exit(err error) int {
	code := exitCode(err)
	if err == nil || errors.Is(err, errUnhealthy) {
		return code
	}
	fmt.Fprintf(c.stderr, "fsrepctl: %v\n", err)
	var ue *usageError
	if errors.As(err, &ue) {
		if ue.cmd != nil {
			fmt.Fprintf(c.stderr, "Run 'fsrepctl %s --help' for usage.\n", ue.cmd.name)
		} else {
			fmt.Fprintln(c.stderr, "Run 'fsrepctl --help' for usage.")
		}
	}
	return code
}
