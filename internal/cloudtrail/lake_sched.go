package cloudtrail

import (
	"context"
	"sync"
)

// workers hands a node's query workers to waiting queries fairly across
// accounts. A query may start when a worker is free and its account runs fewer
// than perAccount queries; among the queries that may, the one whose account
// runs fewest goes first, then the one waiting longest. So one account's heavy
// queries never hold every worker while another account waits (issue 11 §4:
// two heavy queries of one account kept another's count(*) QUEUED for 46 s).
type workers struct {
	mu         sync.Mutex
	free       int
	perAccount int
	running    map[string]int
	waiting    []*waiter // in arrival order
	wake       chan struct{}
}

type waiter struct{ account string }

func newWorkers(n, perAccount int) *workers {
	return &workers{free: n, perAccount: max(1, perAccount), running: map[string]int{}, wake: make(chan struct{})}
}

// acquire waits for account's turn; release gives the worker back.
func (ws *workers) acquire(ctx context.Context, account string) (release func(), err error) {
	w := &waiter{account: account}
	ws.mu.Lock()
	ws.waiting = append(ws.waiting, w)
	for ws.next() != w {
		wake := ws.wake
		ws.mu.Unlock()
		select {
		case <-wake:
		case <-ctx.Done():
			ws.mu.Lock()
			ws.remove(w)
			ws.broadcast()
			ws.mu.Unlock()
			return nil, ctx.Err()
		}
		ws.mu.Lock()
	}
	ws.remove(w)
	ws.free--
	ws.running[account]++
	ws.broadcast() // the next waiter may take another free worker
	ws.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			ws.mu.Lock()
			ws.free++
			if ws.running[account]--; ws.running[account] == 0 {
				delete(ws.running, account)
			}
			ws.broadcast()
			ws.mu.Unlock()
		})
	}, nil
}

// next is the waiter that may take a worker now, or nil.
func (ws *workers) next() *waiter {
	if ws.free <= 0 {
		return nil
	}
	var best *waiter
	for _, w := range ws.waiting {
		n := ws.running[w.account]
		if n < ws.perAccount && (best == nil || n < ws.running[best.account]) {
			best = w
		}
	}
	return best
}

func (ws *workers) remove(w *waiter) {
	for i, x := range ws.waiting {
		if x == w {
			ws.waiting = append(ws.waiting[:i], ws.waiting[i+1:]...)
			return
		}
	}
}

func (ws *workers) broadcast() {
	close(ws.wake)
	ws.wake = make(chan struct{})
}
