package main

import (
	"context"
	"flag"
	"fmt"
	"time"

	"github.com/fsrep/fsrep/internal/admin"
)

func handleKeyRotateCommand() *command {
	var grace string
	return &command{
		name:    "handle-key rotate",
		args:    "",
		summary: "replace the file handle MAC key (old handles stay valid for a grace time)",
		help: `Moves the key that authenticates NFS file handles to its next generation
through Raft. Every gateway mints handles with the new key at once and accepts
handles of the old key until --grace has passed; after that, a client still
holding one gets STALE and must look the path up again (a remount at worst).
Keys are derived from the cluster secret and the generation: rotate on a
schedule, or after handles were exposed (a packet capture, a client's cache);
after the secret itself leaked (a node's disk), change the secret instead.
Give a grace longer than your clients keep files open; a second rotation ends
the first one's grace.

Example:
  fsrepctl handle-key rotate --grace 72h`,
		setup: func(fs *flag.FlagSet) func(context.Context, *cli, []string) error {
			fs.StringVar(&grace, "grace", "24h", "how long handles of the current key stay valid (0s to 720h)")
			return func(ctx context.Context, c *cli, args []string) error {
				if len(args) != 0 {
					return usageErrorf("handle-key rotate takes no arguments")
				}
				if d, err := time.ParseDuration(grace); err != nil || d < 0 || d > admin.MaxHandleKeyGrace {
					return usageErrorf("--grace %q: want a duration between 0s and 720h", grace)
				}
				cl, err := c.client()
				if err != nil {
					return err
				}
				res, err := cl.RotateHandleKey(ctx, grace)
				if err != nil {
					return err
				}
				if c.jsonOutput() {
					return c.printJSON(res)
				}
				fmt.Fprintf(c.stdout, "File handle key at generation %d. Handles of the previous key stay valid until %s.\n",
					res.Generation, res.PreviousValidUntil.Format(time.RFC3339))
				return nil
			}
		},
	}
}
