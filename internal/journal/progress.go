package journal

import (
	"context"
	"sync"
	"time"
)

// Progress is how far a projection has applied the journal, so that a caller
// can wait until its own writes are reflected. The zero value is ready to use.
type Progress struct {
	mu      sync.Mutex
	applied uint64        // last seq applied
	moved   chan struct{} // closed and replaced when applied moves
}

// Set records that every entry up to seq is applied.
func (p *Progress) Set(seq uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.applied = seq
	if p.moved != nil {
		close(p.moved)
		p.moved = nil
	}
}

// Applied is the last seq applied.
func (p *Progress) Applied() uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.applied
}

// Wait blocks until seq is applied or ctx ends.
func (p *Progress) Wait(ctx context.Context, seq uint64) error {
	for {
		p.mu.Lock()
		if p.applied >= seq {
			p.mu.Unlock()
			return nil
		}
		if p.moved == nil {
			p.moved = make(chan struct{})
		}
		moved := p.moved
		p.mu.Unlock()
		select {
		case <-moved:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Follow runs a projection until ctx ends: apply(ctx, next) applies a batch of
// entries from next and returns the seq after it (next itself when there is
// nothing new, and Follow then waits for the journal to grow). A failed batch
// is logged as what and tried again after a backoff of 100 ms, doubling up to 10 s.
func (j *Journal) Follow(ctx context.Context, next uint64, what string, apply func(ctx context.Context, next uint64) (uint64, error)) {
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		n, err := apply(ctx, next)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			j.log.Error(what, "from", next, "err", err)
			select {
			case <-time.After(backoff):
			case <-ctx.Done():
			}
			backoff = min(2*backoff, 10*time.Second)
			continue
		}
		backoff = 100 * time.Millisecond
		if n == next {
			if err := j.Wait(ctx, next-1); err != nil {
				return
			}
		}
		next = n
	}
}
