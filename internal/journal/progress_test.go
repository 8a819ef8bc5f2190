package journal

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestProgress(t *testing.T) {
	var p Progress
	if err := p.Wait(context.Background(), 0); err != nil {
		t.Fatal(err)
	}
	done := make(chan error)
	go func() { done <- p.Wait(context.Background(), 5) }()
	p.Set(3)
	select {
	case err := <-done:
		t.Fatalf("returned at 3 of 5: %v", err)
	case <-time.After(20 * time.Millisecond):
	}
	p.Set(5)
	if err := <-done; err != nil || p.Applied() != 5 {
		t.Fatalf("%v, applied %d", err, p.Applied())
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() { done <- p.Wait(ctx, 9) }()
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("after cancel: %v", err)
	}
}
