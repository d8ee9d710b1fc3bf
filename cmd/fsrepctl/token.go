package main

import (
	"context"
	"flag"
	"fmt"
	"time"
)

func tokenRotateCommand() *command {
	var grace string
	return &command{
		name:    "token rotate",
		args:    "",
		summary: "replace the admin API token (the old one expires after a grace time)",
		help: `Moves the admin token to its next generation through Raft and prints the new
token once. Every node accepts the new token at once and the old one until
--grace has passed, and writes the new token to <data-dir>/admin.token within
a second (the embedded cluster also to its top-level admin.token), so
fsrepctl on a node's host keeps working. Scripts holding the old token must be
given the new one before the grace time ends. Tokens are derived from the
cluster secret: whoever holds the secret can derive them.

Example:
  fsrepctl token rotate --grace 24h
  fsrepctl token rotate -o json | jq -r .token > /etc/fsrep/admin.token`,
		setup: func(fs *flag.FlagSet) func(context.Context, *cli, []string) error {
			fs.StringVar(&grace, "grace", "1h", "how long the current token stays valid (0s to 168h)")
			return func(ctx context.Context, c *cli, args []string) error {
				if len(args) != 0 {
					return usageErrorf("token rotate takes no arguments")
				}
				if d, err := time.ParseDuration(grace); err != nil || d < 0 || d > 168*time.Hour {
					return usageErrorf("--grace %q: want a duration between 0s and 168h", grace)
				}
				cl, err := c.client()
				if err != nil {
					return err
				}
				res, err := cl.RotateToken(ctx, grace)
				if err != nil {
					return err
				}
				if c.jsonOutput() {
					return c.printJSON(res)
				}
				fmt.Fprintf(c.stdout, "New admin token (generation %d):\n%s\nThe previous token stays valid until %s.\n",
					res.Generation, res.Token, res.PreviousValidUntil.Format(time.RFC3339))
				return nil
			}
		},
	}
}
