package main

import (
	"context"
	"flag"
	"fmt"
	"math"
	"net"
	"strings"

	"github.com/fsrep/fsrep/meta"
)

func exportShowCommand() *command {
	return &command{
		name:    "export show",
		args:    "VOLUME",
		summary: "show how a volume is exported over NFS",
		help: `ACCESS is rw or ro; CLIENTS the networks allowed to mount the volume ("*":
every client); SQUASH which callers become the anonymous user ANON (uid:gid):
root_squash maps uid 0, all_squash every caller, no_root_squash nobody.
Every gateway enforces the same options. Exits 3 when there is no such volume.

Example:
  fsrepctl export show data
  fsrepctl export show data -o json`,
		setup: func(fs *flag.FlagSet) func(context.Context, *cli, []string) error {
			return runExportShow
		},
	}
}

func runExportShow(ctx context.Context, c *cli, args []string) error {
	if len(args) != 1 {
		return usageErrorf("export show takes exactly one VOLUME")
	}
	cl, err := c.client()
	if err != nil {
		return err
	}
	e, err := cl.Export(ctx, args[0])
	if err != nil {
		return err
	}
	return c.printExport(args[0], e)
}

// printExport is the output of export show and export set.
func (c *cli) printExport(volume string, e *meta.Export) error {
	if c.jsonOutput() {
		return c.printJSON(e)
	}
	w := c.table()
	fmt.Fprintln(w, "VOLUME\tACCESS\tCLIENTS\tSQUASH\tANON")
	fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%d:%d\n", volume, exportAccess(*e), exportClients(*e), e.Squash, e.AnonUID, e.AnonGID)
	return w.Flush()
}

func exportAccess(e meta.Export) string {
	if e.ReadOnly {
		return "ro"
	}
	return "rw"
}

func exportClients(e meta.Export) string {
	if len(e.Clients) == 0 {
		return "*"
	}
	return strings.Join(e.Clients, ",")
}

func exportSetCommand() *command {
	return &command{
		name:    "export set",
		args:    "VOLUME",
		summary: "change how a volume is exported over NFS",
		help: `Reads the volume's current export, changes only the options given, and
sends the whole export back; it is replicated with the volume, so every
gateway enforces the same options. Two concurrent 'export set' calls on one
volume may each undo the other's change: the last to commit wins. Prints the
export as set (see 'fsrepctl export show --help'). Exits 3 when there is no
such volume.

Example:
  fsrepctl export set data --ro
  fsrepctl export set data --rw --clients 10.0.0.0/8,192.168.1.0/24
  fsrepctl export set data --clients '*' --squash all_squash --anon-uid 1000 --anon-gid 1000`,
		setup: func(fs *flag.FlagSet) func(context.Context, *cli, []string) error {
			f := newExportFlags(fs)
			return func(ctx context.Context, c *cli, args []string) error {
				if len(args) != 1 {
					return usageErrorf("export set takes exactly one VOLUME")
				}
				set := map[string]bool{}
				fs.Visit(func(fl *flag.Flag) { set[fl.Name] = true })
				changes, err := f.changes(set)
				if err != nil {
					return err
				}
				return runExportSet(ctx, c, args[0], changes)
			}
		},
	}
}

// exportFlags are the options of export set; only those given change.
type exportFlags struct {
	ro, rw           *bool
	clients, squash  *string
	anonUID, anonGID *uint64
}

// newExportFlags registers the export options on fs.
func newExportFlags(fs *flag.FlagSet) *exportFlags {
	return &exportFlags{
		ro:      fs.Bool("ro", false, "export read-only"),
		rw:      fs.Bool("rw", false, "export read-write"),
		clients: fs.String("clients", "", "comma-separated `CIDRs` allowed to mount, or '*' for every client"),
		squash:  fs.String("squash", "", "`MODE`: root_squash, all_squash or no_root_squash"),
		anonUID: fs.Uint64("anon-uid", 0, "`UID` that squashed callers become"),
		anonGID: fs.Uint64("anon-gid", 0, "`GID` that squashed callers become"),
	}
}

// changes checks the flags that were set and returns one edit per option;
// at least one is required.
func (f *exportFlags) changes(set map[string]bool) ([]func(*meta.Export), error) {
	changes, err := f.edits(set)
	if err == nil && len(changes) == 0 {
		err = usageErrorf("export set needs at least one of --ro, --rw, --clients, --squash, --anon-uid, --anon-gid")
	}
	return changes, err
}

// edits checks the flags that were set and returns one edit per option
// (none when no export flag was given).
func (f *exportFlags) edits(set map[string]bool) ([]func(*meta.Export), error) {
	var changes []func(*meta.Export)
	switch {
	case set["ro"] && set["rw"]:
		return nil, usageErrorf("give --ro or --rw, not both")
	case set["ro"]:
		readOnly := *f.ro
		changes = append(changes, func(e *meta.Export) { e.ReadOnly = readOnly })
	case set["rw"]:
		readOnly := !*f.rw
		changes = append(changes, func(e *meta.Export) { e.ReadOnly = readOnly })
	}
	if set["clients"] {
		nets, err := parseClients(*f.clients)
		if err != nil {
			return nil, err
		}
		changes = append(changes, func(e *meta.Export) { e.Clients = nets })
	}
	if set["squash"] {
		mode := *f.squash
		switch mode {
		case meta.SquashRoot, meta.SquashAll, meta.SquashNone:
		default:
			return nil, usageErrorf("--squash must be %s, %s or %s, not %q", meta.SquashRoot, meta.SquashAll, meta.SquashNone, mode)
		}
		changes = append(changes, func(e *meta.Export) { e.Squash = mode })
	}
	if set["anon-uid"] {
		uid, err := anonID("anon-uid", *f.anonUID)
		if err != nil {
			return nil, err
		}
		changes = append(changes, func(e *meta.Export) { e.AnonUID = uid })
	}
	if set["anon-gid"] {
		gid, err := anonID("anon-gid", *f.anonGID)
		if err != nil {
			return nil, err
		}
		changes = append(changes, func(e *meta.Export) { e.AnonGID = gid })
	}
	return changes, nil
}

// anonID checks that a uid or gid fits the 32 bits NFS carries.
func anonID(flagName string, v uint64) (uint32, error) {
	if v > math.MaxUint32 {
		return 0, usageErrorf("--%s %d is beyond %d", flagName, v, uint32(math.MaxUint32))
	}
	return uint32(v), nil
}

// parseClients reads the --clients list: CIDRs separated by commas, or "*"
// alone for every client (an empty list on the wire).
func parseClients(s string) ([]string, error) {
	if strings.TrimSpace(s) == "*" {
		return nil, nil
	}
	var nets []string
	for _, c := range strings.Split(s, ",") {
		c = strings.TrimSpace(c)
		if c == "" {
			continue
		}
		if _, _, err := net.ParseCIDR(c); err != nil {
			return nil, usageErrorf("--clients: %q is not a network like 10.0.0.0/8 (or give '*' alone for every client)", c)
		}
		nets = append(nets, c)
	}
	if len(nets) == 0 {
		return nil, usageErrorf("--clients needs networks like 10.0.0.0/8,192.168.1.0/24, or '*' for every client")
	}
	return nets, nil
}

func runExportSet(ctx context.Context, c *cli, volume string, changes []func(*meta.Export)) error {
	cl, err := c.client()
	if err != nil {
		return err
	}
	e, err := cl.Export(ctx, volume)
	if err != nil {
		return err
	}
	for _, change := range changes {
		change(e)
	}
	e, err = cl.SetExport(ctx, volume, *e)
	if err != nil {
		return err
	}
	return c.printExport(volume, e)
}
