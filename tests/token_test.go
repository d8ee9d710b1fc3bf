package tests

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fsrep/fsrep/internal/admin"
)

// TestTokenRotation rotates the admin token through one node: every node
// accepts the new token at once and the old one until the grace time ends,
// then refuses it; every node's admin.token file gets the new token.
func TestTokenRotation(t *testing.T) {
	c := NewCluster(t, ClusterOptions{})
	ctx := context.Background()
	old := c.Node(0).Token()
	status := func(i int, token string) error {
		_, err := admin.NewClient(c.Member(i).Cfg.AdminAddr, token, 5*time.Second).Status(ctx)
		return err
	}
	for i := range c.N() {
		if err := status(i, old); err != nil {
			t.Fatalf("node %d refuses the initial token: %v", i, err)
		}
	}
	res, err := admin.NewClient(c.Member(1).Cfg.AdminAddr, old, 10*time.Second).RotateToken(ctx, "3s")
	if err != nil {
		t.Fatal(err)
	}
	if res.Token == old || res.Generation != 1 {
		t.Fatalf("rotation gave %+v", res)
	}
	c.Eventually(10*time.Second, "every node accepting the new token", func() error {
		for i := range c.N() {
			if err := status(i, res.Token); err != nil {
				return fmt.Errorf("node %d: %w", i, err)
			}
		}
		return nil
	})
	if time.Now().Before(res.PreviousValidUntil.Add(-time.Second)) {
		for i := range c.N() {
			if err := status(i, old); err != nil {
				t.Fatalf("node %d refuses the old token within its grace time: %v", i, err)
			}
		}
	}
	c.Eventually(20*time.Second, "every node refusing the old token after the grace time", func() error {
		for i := range c.N() {
			err := status(i, old)
			var ae *admin.APIError
			if !errors.As(err, &ae) || ae.Code != admin.CodeUnauthorized {
				return fmt.Errorf("node %d with the old token: %v", i, err)
			}
		}
		return nil
	})
	c.Eventually(10*time.Second, "every node's admin.token holding the new token", func() error {
		for i := range c.N() {
			b, err := os.ReadFile(filepath.Join(c.Member(i).Cfg.DataDir, "admin.token"))
			if err != nil || strings.TrimSpace(string(b)) != res.Token {
				return fmt.Errorf("node %d admin.token: %q, %v", i, b, err)
			}
		}
		return nil
	})
	// A second rotation from another node moves on from the first.
	res2, err := admin.NewClient(c.Member(2).Cfg.AdminAddr, res.Token, 10*time.Second).RotateToken(ctx, "")
	if err != nil || res2.Generation != 2 || res2.Token == res.Token {
		t.Fatalf("second rotation: %+v, %v", res2, err)
	}
}
