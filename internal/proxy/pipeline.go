package proxy

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/opentrail/opentrail/internal/audit"
	"github.com/opentrail/opentrail/internal/ingest"
)

// The commit pipeline: committers batch records and write them to the sink,
// or make them durable in the spool when it cannot take them; the shipper
// drains the spool into the sink in the background.

// pending is one record waiting for a committer.
type pending struct {
	raw      []byte
	reserved int64
	done     chan error
}

var errAudit = errors.New("proxy: the call's record could not be written")

// commit makes the record durable, in OpenTrail or in the spool, and returns
// only then. It is not cancelled with the client's request: a forwarded call
// is recorded even if its client has gone.
func (p *Proxy) commit(x *exchange, rec *audit.Record) error {
	x.recorded = true
	raw, err := json.Marshal(rec)
	if err == nil && int64(len(raw)+frameHeader) > x.reserved && x.reserved > 0 {
		// Too big for what was promised: keep the record, drop the parameters.
		rec.RequestParameters, rec.ResponseElements = jsonNull, jsonNull
		if rec.AdditionalEventData == nil {
			rec.AdditionalEventData = map[string]any{}
		}
		rec.AdditionalEventData["requestParametersTruncated"] = true
		raw, err = json.Marshal(rec)
	}
	if err != nil {
		p.spool.release(x.reserved)
		x.auditErr = err
		return errAudit
	}
	pd := &pending{raw: raw, reserved: x.reserved, done: make(chan error, 1)}
	if x.coming {
		// Before the send: a committer that takes this record must not
		// count it as still to come, and wait for it.
		x.coming = false
		p.coming.Add(-1)
	}
	p.queue <- pd
	if err := <-pd.done; err != nil {
		x.auditErr = err
		return errAudit
	}
	return nil
}

// committer takes records off the queue in batches (group commit): one sink
// write or one spool fsync covers every call that arrived meanwhile.
//
// There is one committer, and it forms a batch only when its previous write
// is done: everything that queued up during that write goes into the next
// one. Several committers would each take a few records as soon as they
// arrive and then wait for one another at the sink (the journal's single
// writer, or the spool's lock), so that the more calls there are, the more
// and the smaller the writes: the opposite of what group commit is for.
//
// And when other forwarded calls are about to queue their records, the
// committer waits for them, at most commitDelay (PostgreSQL's commit_delay
// and commit_siblings): an fsync costs about 100 µs of CPU, twice the
// proxy's own work for a call, and in OpenTrail every journal commit also
// wakes its projections, so under load batches of two or three records would
// be the most expensive thing the proxy does. A lone call never waits.
func (p *Proxy) committer() {
	defer p.workers.Done()
	batch := make([]*pending, 0, ingest.MaxRecords)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for first := range p.queue {
		batch = append(batch[:0], first)
		size := len(first.raw)
		waiting := false
	fill:
		for len(batch) < ingest.MaxRecords && size < (ingest.MaxRequestBytes-1024)/2 {
			var pd *pending
			var ok bool
			select {
			case pd, ok = <-p.queue:
			default:
				if p.coming.Load() == 0 {
					break fill
				}
				if !waiting {
					waiting = true
					timer.Reset(commitDelay)
				}
				select {
				case pd, ok = <-p.queue:
				case <-timer.C:
					waiting = false
					break fill
				}
			}
			if !ok {
				break fill
			}
			batch = append(batch, pd)
			size += len(pd.raw)
		}
		if waiting {
			timer.Stop()
		}
		p.commitBatch(batch)
	}
}

// commitDelay bounds how long the committer waits for the records of calls
// in flight before it writes a batch.
const commitDelay = 500 * time.Microsecond

func (p *Proxy) commitBatch(batch []*pending) {
	raws := make([][]byte, len(batch))
	for i, pd := range batch {
		raws[i] = pd.raw
	}
	if p.healthy.Load() {
		ctx, cancel := context.WithTimeout(context.Background(), p.o.SinkTimeout)
		err := p.o.Sink.Write(ctx, raws)
		cancel()
		if err == nil {
			for _, pd := range batch {
				p.spool.release(pd.reserved)
				pd.done <- nil
			}
			return
		}
		p.m.shipErrors.Add(1)
		p.log.Warn("OpenTrail did not take records; spooling them", "records", len(raws), "err", err)
		p.healthy.Store(false)
	}
	// Records with a reservation always fit; the others (fail-open) only if there is room.
	var held, extra []*pending
	for _, pd := range batch {
		if pd.reserved > 0 {
			held = append(held, pd)
		} else {
			extra = append(extra, pd)
		}
	}
	p.spoolBatch(held)
	p.spoolBatch(extra)
	p.kick()
}

func (p *Proxy) spoolBatch(batch []*pending) {
	if len(batch) == 0 {
		return
	}
	raws := make([][]byte, len(batch))
	var reserved int64
	for i, pd := range batch {
		raws[i] = pd.raw
		reserved += pd.reserved
	}
	err := p.spool.append(raws, reserved)
	if err == nil {
		p.m.spooled.Add(int64(len(batch)))
	} else if errors.Is(err, ErrSpoolFull) && p.o.FailOpen {
		p.m.lost.Add(int64(len(batch)))
		p.log.Error("spool full: records of fail-open calls are lost", "records", len(batch))
		err = nil
	} else {
		p.log.Error("spool write failed", "err", err)
	}
	for _, pd := range batch {
		pd.done <- err
	}
}

// shipper delivers the spool to the sink, oldest first, with capped
// exponential backoff while OpenTrail is away.
func (p *Proxy) shipper() {
	defer p.workers.Done()
	backoff := 50 * time.Millisecond
	for {
		select {
		case <-p.ctx.Done():
			return
		case <-p.wake:
		case <-time.After(time.Second):
		}
		for {
			ctx, cancel := context.WithTimeout(p.ctx, p.o.SinkTimeout)
			more, err := p.shipSegment(ctx)
			cancel()
			if err != nil {
				select {
				case <-p.ctx.Done():
					return
				case <-time.After(backoff):
				}
				backoff = min(backoff*2, 5*time.Second)
				continue
			}
			backoff = 50 * time.Millisecond
			if !more {
				break
			}
		}
	}
}

// shipOnce ships one segment; false when there is nothing left or it failed.
func (p *Proxy) shipOnce(ctx context.Context) bool {
	more, err := p.shipSegment(ctx)
	return more && err == nil
}

func (p *Proxy) shipSegment(ctx context.Context) (more bool, err error) {
	seg, ok := p.spool.oldest()
	if !ok {
		p.healthy.Store(true)
		return false, nil
	}
	recs, err := p.spool.read(seg)
	if err != nil {
		p.log.Error("spool read failed", "err", err)
		return false, err
	}
	if len(recs) > 0 {
		if err := p.o.Sink.Write(ctx, recs); err != nil {
			var rej *RejectedError
			if errors.As(err, &rej) {
				p.m.rejected.Add(int64(len(recs)))
				p.log.Error("OpenTrail rejected spooled records; segment moved to the rejected folder", "err", err)
				if err := p.spool.reject(seg); err != nil {
					return false, err
				}
				return true, nil
			}
			p.m.shipErrors.Add(1)
			p.healthy.Store(false)
			return false, err
		}
	}
	if err := p.spool.remove(seg); err != nil {
		p.log.Error("spool remove failed", "err", err)
		return false, err
	}
	return true, nil
}
