package journal

import (
	"context"
	"sync"
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
