package cloudtrail

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/google/uuid"

	"github.com/opentrail/opentrail/internal/auth"
	"github.com/opentrail/opentrail/internal/awsapi"
	"github.com/opentrail/opentrail/internal/kv"
	"github.com/opentrail/opentrail/internal/lakemodel"
)

var accountRE = regexp.MustCompile(`^[0-9]{12}$`)

// sourceCustom is the only channel source OpenTrail has: events sent with
// PutAuditEvents by the account's own applications. Partner sources and
// service-linked channels are AWS's.
const sourceCustom = "Custom"

// ---- Storage format: everything in this block is part of the on-disk format. Never change it. ----

type storedChannel struct {
	ID           string        `json:"id"`
	Account      string        `json:"account"`
	HomeRegion   string        `json:"homeRegion"`
	Name         string        `json:"name"`
	Source       string        `json:"source"`
	Destinations []destination `json:"destinations"`
	Tags         []tag         `json:"tags,omitempty"`
	Created      time.Time     `json:"created"`
}

type destination struct {
	Type     string `json:"Type"`
	Location string `json:"Location"` // the event data store's ARN
}

// ---- End of storage format. ----

func (s *Service) channelARN(ch *storedChannel) string {
	return fmt.Sprintf("arn:%s:cloudtrail:%s:%s:channel/%s", s.part, ch.HomeRegion, ch.Account, ch.ID)
}

func (ch *storedChannel) hasDestination(storeARN string) bool {
	return slices.ContainsFunc(ch.Destinations, func(d destination) bool { return d.Location == storeARN })
}

func (s *Service) putChannel(ctx context.Context, ch *storedChannel) error {
	defer kv.AfterCommit(ctx, s.lake.defs.invalidate)
	return s.putState(ctx, kv.StateChannel, ch.Account, ch.ID, ch)
}

func (s *Service) listChannelsOf(account string) ([]*storedChannel, error) {
	var out []*storedChannel
	err := s.listState(kv.StateChannel, account, func(raw []byte) error {
		ch := new(storedChannel)
		if err := json.Unmarshal(raw, ch); err != nil {
			return fmt.Errorf("cloudtrail: decode channel: %w", err)
		}
		out = append(out, ch)
		return nil
	})
	return out, err
}

func (s *Service) allChannels() ([]*storedChannel, error) { return s.listChannelsOf("") }

func (s *Service) regionChannels(c auth.Caller) ([]*storedChannel, error) {
	all, err := s.listChannelsOf(c.Account)
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(all, func(ch *storedChannel) bool { return ch.HomeRegion != c.Region }), nil
}

// resolveChannel finds the channel a Channel parameter (ARN or ID) names among
// c's channels in c's Region.
func (s *Service) resolveChannel(c auth.Caller, ref string) (*storedChannel, error) {
	r, ok := s.parseResourceRef(ref, "channel")
	if !ok {
		return nil, awsapi.Errorf("ChannelARNInvalidException",
			"The specified channel ARN %s is not valid; a channel ARN has the form arn:%s:cloudtrail:us-east-1:123456789012:channel/<id>.", ref, s.part)
	}
	notFound := awsapi.Errorf("ChannelNotFoundException", "Channel %s was not found in account %s in %s.", ref, c.Account, c.Region)
	if r.isARN && (r.account != c.Account || r.region != c.Region) {
		return nil, notFound
	}
	ch := new(storedChannel)
	found, err := s.getState(kv.StateChannel, c.Account, r.id, ch)
	if err != nil {
		return nil, err
	}
	if !found || ch.HomeRegion != c.Region {
		return nil, notFound
	}
	return ch, nil
}

// checkDestinations resolves and checks a channel's destinations: each an
// active event data store of c that takes ActivityAuditLog events. It returns
// them with Location as the store's ARN.
func (s *Service) checkDestinations(c auth.Caller, in []destination) ([]destination, error) {
	out := make([]destination, 0, len(in))
	for i, d := range in {
		if d.Type != "EVENT_DATA_STORE" {
			return nil, awsapi.Errorf("InvalidParameterException",
				"Destinations[%d].Type is %s; a Custom channel's destinations are of type EVENT_DATA_STORE (AWS_SERVICE is for service-linked channels).", i, d.Type)
		}
		st, err := s.resolveActiveStore(c, d.Location)
		if err != nil {
			return nil, err
		}
		if !st.isAuditLogStore() {
			return nil, awsapi.Errorf("InvalidEventDataStoreCategoryException",
				"Event data store %s (Destinations[%d]) does not take ActivityAuditLog events; a channel's destination needs an advanced event selector with eventCategory equal to ActivityAuditLog.", s.edsARN(st), i)
		}
		arn := s.edsARN(st)
		if slices.ContainsFunc(out, func(o destination) bool { return o.Location == arn }) {
			return nil, awsapi.Errorf("InvalidParameterException", "Destinations[%d] repeats event data store %s.", i, arn)
		}
		out = append(out, destination{Type: d.Type, Location: arn})
	}
	return out, nil
}

func checkChannelName(channels []*storedChannel, ch *storedChannel) error {
	for _, o := range channels {
		if o.ID != ch.ID && o.Name == ch.Name {
			return awsapi.Errorf("ChannelAlreadyExistsException", "A channel named %s already exists in %s.", ch.Name, ch.HomeRegion)
		}
	}
	return nil
}

type createChannelInput struct {
	Name         string
	Source       string
	Destinations []destination
	Tags         []tag
}

type channelOut struct {
	ChannelArn   string        `json:"ChannelArn"`
	Name         string        `json:"Name"`
	Source       string        `json:"Source"`
	Destinations []destination `json:"Destinations"`
	Tags         []tag         `json:"Tags,omitempty"`
}

func (s *Service) channelOut(ch *storedChannel) channelOut {
	return channelOut{ChannelArn: s.channelARN(ch), Name: ch.Name, Source: ch.Source, Destinations: ch.Destinations}
}

func (s *Service) createChannel(ctx context.Context, c auth.Caller, body []byte) (any, error) {
	var in createChannelInput
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	if in.Source != sourceCustom {
		return nil, awsapi.Errorf("InvalidSourceException",
			"Source %q is not supported: OpenTrail channels take events from your own applications, Source Custom; partner sources are not available.", in.Source)
	}
	ch := &storedChannel{ID: uuid.NewString(), Account: c.Account, HomeRegion: c.Region, Name: in.Name, Source: in.Source, Created: s.now().UTC()}
	tags, err := mergeTags(in.Name, nil, in.Tags)
	if err != nil {
		return nil, err
	}
	ch.Tags = tags
	defer kv.Hold(ctx, &s.lakeMu)()
	if ch.Destinations, err = s.checkDestinations(c, in.Destinations); err != nil {
		return nil, err
	}
	channels, err := s.regionChannels(c)
	if err != nil {
		return nil, err
	}
	if err := checkChannelName(channels, ch); err != nil {
		return nil, err
	}
	if len(channels) >= s.lake.opts.MaxChannels {
		return nil, awsapi.Errorf("ChannelMaxLimitExceededException",
			"Your account has %d channels in %s, the maximum; delete one first.", len(channels), c.Region)
	}
	if err := s.putChannel(ctx, ch); err != nil {
		return nil, err
	}
	out := s.channelOut(ch)
	out.Tags = ch.Tags
	return out, nil
}

type channelRefInput struct{ Channel string }

// ingestionStatus is the model's IngestionStatus: the latest PutAuditEvents
// call to a channel. It is kept under its own key (kv.StateIngestion), written
// without waiting for fsync (an acknowledged call's events are durable in the
// journal; a crash may lose the status of the last calls, never an event),
// and cached in memory.
type ingestionStatus struct {
	LatestIngestionSuccessTime    *epochSeconds `json:"LatestIngestionSuccessTime,omitempty"`
	LatestIngestionSuccessEventID string        `json:"LatestIngestionSuccessEventID,omitempty"`
	LatestIngestionErrorCode      string        `json:"LatestIngestionErrorCode,omitempty"`
	LatestIngestionAttemptTime    *epochSeconds `json:"LatestIngestionAttemptTime,omitempty"`
	LatestIngestionAttemptEventID string        `json:"LatestIngestionAttemptEventID,omitempty"`
}

func (s *Service) getChannel(ctx context.Context, c auth.Caller, body []byte) (any, error) {
	var in channelRefInput
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	ch, err := s.resolveChannel(c, in.Channel)
	if err != nil {
		return nil, err
	}
	st, err := s.ingestionStatus(ch.Account, ch.ID)
	if err != nil {
		return nil, err
	}
	return struct {
		ChannelArn   string `json:"ChannelArn"`
		Name         string `json:"Name"`
		Source       string `json:"Source"`
		SourceConfig struct {
			ApplyToAllRegions bool `json:"ApplyToAllRegions"`
		} `json:"SourceConfig"`
		Destinations    []destination   `json:"Destinations"`
		IngestionStatus ingestionStatus `json:"IngestionStatus"`
	}{ChannelArn: s.channelARN(ch), Name: ch.Name, Source: ch.Source, Destinations: ch.Destinations, IngestionStatus: st}, nil
}

type channelInfo struct {
	ChannelArn string `json:"ChannelArn"`
	Name       string `json:"Name"`
}

func (s *Service) listChannels(ctx context.Context, c auth.Caller, body []byte) (any, error) {
	var in pageInput
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	after, err := pageStart("ListChannels", in.NextToken)
	if err != nil {
		return nil, err
	}
	channels, err := s.regionChannels(c)
	if err != nil {
		return nil, err
	}
	infos := make([]channelInfo, 0, len(channels))
	for _, ch := range channels {
		infos = append(infos, channelInfo{ChannelArn: s.channelARN(ch), Name: ch.Name})
	}
	slices.SortFunc(infos, func(a, b channelInfo) int { return cmp.Compare(a.ChannelArn, b.ChannelArn) })
	n := cmp.Or(s.lake.channelPage, 100)
	if in.MaxResults != nil {
		n = *in.MaxResults
	}
	got, next := page(infos, func(e channelInfo) string { return e.ChannelArn }, after, n)
	return struct {
		Channels  []channelInfo `json:"Channels"`
		NextToken string        `json:"NextToken,omitempty"`
	}{got, next}, nil
}

type updateChannelInput struct {
	Channel      string
	Destinations []destination
	Name         *string
}

func (s *Service) updateChannel(ctx context.Context, c auth.Caller, body []byte) (any, error) {
	var in updateChannelInput
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	defer kv.Hold(ctx, &s.lakeMu)()
	ch, err := s.resolveChannel(c, in.Channel)
	if err != nil {
		return nil, err
	}
	if in.Destinations != nil {
		if ch.Destinations, err = s.checkDestinations(c, in.Destinations); err != nil {
			return nil, err
		}
	}
	if in.Name != nil {
		ch.Name = *in.Name
		channels, err := s.regionChannels(c)
		if err != nil {
			return nil, err
		}
		if err := checkChannelName(channels, ch); err != nil {
			return nil, err
		}
	}
	if err := s.putChannel(ctx, ch); err != nil {
		return nil, err
	}
	return s.channelOut(ch), nil
}

func (s *Service) deleteChannel(ctx context.Context, c auth.Caller, body []byte) (any, error) {
	var in channelRefInput
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	defer kv.Hold(ctx, &s.lakeMu)()
	ch, err := s.resolveChannel(c, in.Channel)
	if err != nil {
		return nil, err
	}
	defer kv.AfterCommit(ctx, s.lake.defs.invalidate)
	if err := s.deleteState(ctx, kv.StateChannel, ch.Account, ch.ID); err != nil {
		return nil, err
	}
	if err := s.deleteState(ctx, kv.StateIngestion, ch.Account, ch.ID); err != nil {
		return nil, err
	}
	kv.AfterCommit(ctx, func() { s.lake.ingestion.Delete(ch.Account + "/" + ch.ID) })
	return emptyOutput{}, nil
}

// ---- PutAuditEvents support ----

// Channel is what PutAuditEvents needs to know of a channel.
type Channel struct {
	ARN, Account, Region string
}

// AuditChannel finds the channel a PutAuditEvents channelArn (ARN or ID) names
// for c, answering in cloudtrail-data's error codes: InvalidChannelARN for a
// malformed value, ChannelNotFound for a channel c does not own or that does
// not exist, ChannelInsufficientPermission for an ARN of another account.
func (s *Service) AuditChannel(c auth.Caller, ref string) (Channel, error) {
	r, ok := s.parseResourceRef(ref, "channel")
	if !ok {
		return Channel{}, awsapi.Errorf("InvalidChannelARN",
			"channelArn %s is not a valid channel ARN; it has the form arn:%s:cloudtrail:us-east-1:123456789012:channel/<id>.", ref, s.part)
	}
	if r.isARN && r.account != c.Account {
		return Channel{}, awsapi.Errorf("ChannelInsufficientPermission",
			"Channel %s belongs to account %s; the caller's account %s must own the channel.", ref, r.account, c.Account)
	}
	ch, err := s.resolveChannel(c, ref)
	if err != nil {
		if ae, ok := err.(*awsapi.Error); ok && ae.Code == "ChannelNotFoundException" {
			return Channel{}, awsapi.Errorf("ChannelNotFound", "%s", ae.Message)
		}
		return Channel{}, err
	}
	return Channel{ARN: s.channelARN(ch), Account: ch.Account, Region: ch.HomeRegion}, nil
}

// RecordIngestion updates a channel's IngestionStatus after a PutAuditEvents
// call: the last event ID accepted, or the error code of the last failure.
func (s *Service) RecordIngestion(ch Channel, at time.Time, lastEventID, errorCode string) {
	id := ch.ARN[strings.LastIndex(ch.ARN, "/")+1:]
	s.lake.ingestionMu.Lock()
	defer s.lake.ingestionMu.Unlock()
	st, err := s.ingestionStatus(ch.Account, id)
	if err != nil {
		s.log.Error("read channel ingestion status", "channel", ch.ARN, "err", err)
	}
	t := epochSeconds(at)
	st.LatestIngestionAttemptTime, st.LatestIngestionAttemptEventID = &t, lastEventID
	if errorCode == "" {
		st.LatestIngestionSuccessTime, st.LatestIngestionSuccessEventID = &t, lastEventID
	}
	st.LatestIngestionErrorCode = errorCode
	b, err := json.Marshal(st)
	if err == nil {
		err = s.db.Set(kv.StateKey(kv.StateIngestion, ch.Account, id), b, pebble.NoSync)
	}
	if err != nil {
		s.log.Error("write channel ingestion status", "channel", ch.ARN, "err", err)
	}
	s.lake.ingestion.Store(ch.Account+"/"+id, st)
}

// ingestionStatus is a channel's IngestionStatus, from the cache or the database.
func (s *Service) ingestionStatus(account, id string) (ingestionStatus, error) {
	if v, ok := s.lake.ingestion.Load(account + "/" + id); ok {
		return v.(ingestionStatus), nil
	}
	var st ingestionStatus
	_, err := s.getState(kv.StateIngestion, account, id, &st)
	return st, err
}

// atomicDefs caches the StoreDefs; a change to a store or channel bumps gen,
// which makes the cached list stale.
type atomicDefs struct {
	mu  sync.Mutex // one rebuild at a time
	gen atomic.Uint64
	p   atomic.Pointer[defsAt]
}

type defsAt struct {
	defs []lakemodel.StoreDef
	gen  uint64
}

func (a *atomicDefs) load() ([]lakemodel.StoreDef, bool) {
	p := a.p.Load()
	if p == nil || p.gen != a.gen.Load() {
		return nil, false
	}
	return p.defs, true
}

func (a *atomicDefs) store(defs []lakemodel.StoreDef, gen uint64) { a.p.Store(&defsAt{defs, gen}) }
func (a *atomicDefs) invalidate()                                 { a.gen.Add(1) }
