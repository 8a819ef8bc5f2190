package detect

import (
	"context"
	"fmt"
	"runtime"
	"sort"
	"sync"

	"github.com/opentrail/opentrail/internal/archive"

	"github.com/opentrail/opentrail/internal/sigma"
)

// Backtest evaluates a rule set over records from outside the journal (log
// files, an event data store's query results), with correlation state per
// account as the projection keeps it. It is not safe for concurrent use; for
// sets without correlations, run one Backtest per goroutine and Add them up.
type Backtest struct {
	rs     *RuleSet
	states map[string]*sigma.State
	// Matches counts findings per rule ID; Events and Unreadable count records.
	Matches            map[string]int64
	Events, Unreadable int64
	// OnFinding, if set, is called with every finding.
	OnFinding func(*Finding)
}

// NewBacktest starts a backtest of rs.
func NewBacktest(rs *RuleSet) *Backtest {
	return &Backtest{rs: rs, states: map[string]*sigma.State{}, Matches: map[string]int64{}}
}

// Correlations reports whether rs has correlation rules, whose results depend
// on the order of the events: such a set must see every event in one Backtest,
// in time order.
func (rs *RuleSet) Correlations() bool { return rs.correlations }

// Prepare parses one record for Eval; nil when it is not a readable record.
func Prepare(raw []byte) *sigma.Event {
	ev, err := sigma.NewEvent(raw)
	if err != nil {
		return nil
	}
	return ev
}

// SortByTime orders prepared events by event time, stably.
func SortByTime(evs []*sigma.Event) {
	sort.SliceStable(evs, func(i, j int) bool { return evs[i].Time().Before(evs[j].Time()) })
}

// Eval evaluates the rules on one prepared event (nil counts as unreadable).
func (b *Backtest) Eval(ev *sigma.Event) {
	if ev == nil {
		b.Unreadable++
		return
	}
	b.Events++
	if b.rs == nil || b.rs.set == nil {
		return
	}
	if !b.rs.correlations {
		// Without correlations there is no state, and the account is read
		// only for a finding (counting a match needs none).
		for _, mt := range b.rs.set.Eval(ev, nil) {
			b.found(&mt, ev, "")
		}
		return
	}
	account := first(ev.Values("recipientAccountId"))
	st := b.states[account]
	if st == nil {
		st = sigma.NewState()
		b.states[account] = st
	}
	for _, mt := range b.rs.set.Eval(ev, st) {
		b.found(&mt, ev, account)
	}
	if b.Events%4096 == 0 {
		for _, st := range b.states {
			st.Expire(ev.Time())
		}
	}
}

// found counts match mt on ev of account ("": read it from ev if needed).
func (b *Backtest) found(mt *sigma.Match, ev *sigma.Event, account string) {
	if b.OnFinding == nil {
		b.Matches[mt.Rule.Key()]++
		return
	}
	if account == "" {
		account = first(ev.Values("recipientAccountId"))
	}
	f := findingOf(mt, account, first(ev.Values("awsRegion")), ev.ID(), ev.Time())
	b.Matches[f.RuleID]++
	b.OnFinding(f)
}

// Add adds other's counts to b's.
func (b *Backtest) Add(other *Backtest) {
	for k, n := range other.Matches {
		b.Matches[k] += n
	}
	b.Events += other.Events
	b.Unreadable += other.Unreadable
}

func first(v []string) string {
	if len(v) == 0 {
		return ""
	}
	return v[0]
}

// BacktestLogs evaluates rs over an archive's log files (those f keeps).
// Files are read, decoded and parsed on workers goroutines; without
// correlation rules (and without onFinding) they are evaluated there too.
// Otherwise they are evaluated on one goroutine in key order, each file's
// events sorted by time, so that correlation windows see time order (events
// of different files are not merged: a correlation across files delivered
// out of time order may be missed). It returns the counts and the bytes of
// JSON read; a file that cannot be read is reported to skip and left out.
func BacktestLogs(ctx context.Context, rs *RuleSet, a *archive.Archive, f archive.Filter, workers int,
	onFinding func(*Finding), skip func(error)) (*Backtest, int64, error) {
	files, err := a.List(ctx, f, nil)
	if err != nil {
		return nil, 0, err
	}
	if workers <= 0 {
		workers = runtime.NumCPU()
	}
	type result struct {
		idx   int
		evs   []*sigma.Event
		bt    *Backtest
		bytes int
		err   error
	}
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() {
		cancel()
		wg.Wait()
	}()
	serial := rs.correlations || onFinding != nil
	jobs := make(chan int)
	results := make(chan result, workers)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				r := result{idx: i}
				gz, err := a.Read(ctx, files[i].Key)
				var recs [][]byte
				if err == nil {
					recs, r.bytes, err = archive.Records(gz, f)
				}
				if err != nil {
					r.err = fmt.Errorf("%s: %w", files[i].Key, err)
				}
				if serial {
					r.evs = make([]*sigma.Event, len(recs))
					for j, rec := range recs {
						r.evs[j] = Prepare(rec)
					}
				} else {
					r.bt = NewBacktest(rs)
					for _, rec := range recs {
						r.bt.Eval(Prepare(rec))
					}
				}
				select {
				case results <- r:
				case <-ctx.Done():
					return
				}
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(jobs)
		for i := range files {
			select {
			case jobs <- i:
			case <-ctx.Done():
				return
			}
		}
	}()
	total := NewBacktest(rs)
	total.OnFinding = onFinding
	var bytes int64
	pending := map[int]result{}
	next := 0
	for done := 0; done < len(files); done++ {
		var r result
		select {
		case r = <-results:
		case <-ctx.Done():
			return nil, 0, ctx.Err()
		}
		if r.err != nil && skip != nil {
			skip(r.err)
		}
		bytes += int64(r.bytes)
		if !serial {
			total.Add(r.bt)
			continue
		}
		pending[r.idx] = r
		for p, ok := pending[next]; ok; p, ok = pending[next] {
			delete(pending, next)
			next++
			good := p.evs[:0]
			for _, ev := range p.evs {
				if ev == nil {
					total.Eval(nil)
					continue
				}
				good = append(good, ev)
			}
			SortByTime(good)
			for _, ev := range good {
				total.Eval(ev)
			}
		}
	}
	return total, bytes, nil
}
