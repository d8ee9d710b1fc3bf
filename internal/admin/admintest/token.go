package admintest

import (
	"context"
	"fmt"
	"time"
)

// RotateToken implements admin.TokenRotator: generation numbers count up,
// the token names its generation, and the grace runs from the fixed epoch.
func (b *Backend) RotateToken(_ context.Context, grace time.Duration) (string, uint64, time.Time, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.tokenGen++
	return fmt.Sprintf("token-gen-%d", b.tokenGen), b.tokenGen, epoch().Add(grace), nil
}

// RotateHandleKey implements admin.HandleKeyRotator like RotateToken.
func (b *Backend) RotateHandleKey(_ context.Context, grace time.Duration) (uint64, time.Time, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.handleKeyGen++
	return b.handleKeyGen, epoch().Add(grace), nil
}
