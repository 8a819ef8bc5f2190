package cloudtrail

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/opentrail/opentrail/internal/auth"
	"github.com/opentrail/opentrail/internal/awsapi"
	"github.com/opentrail/opentrail/internal/kv"
	"github.com/opentrail/opentrail/internal/lakemodel"
	"github.com/opentrail/opentrail/internal/selector"
)

// lakeOps are the CloudTrail Lake operations: event data stores, queries and channels.
var lakeOps = map[string]opFunc{
	"CreateEventDataStore":         (*Service).createEventDataStore,
	"GetEventDataStore":            (*Service).getEventDataStore,
	"ListEventDataStores":          (*Service).listEventDataStores,
	"UpdateEventDataStore":         (*Service).updateEventDataStore,
	"DeleteEventDataStore":         (*Service).deleteEventDataStore,
	"RestoreEventDataStore":        (*Service).restoreEventDataStore,
	"StartEventDataStoreIngestion": (*Service).startEventDataStoreIngestion,
	"StopEventDataStoreIngestion":  (*Service).stopEventDataStoreIngestion,
	"StartQuery":                   (*Service).startQuery,
	"DescribeQuery":                (*Service).describeQuery,
	"GetQueryResults":              (*Service).getQueryResults,
	"ListQueries":                  (*Service).listQueries,
	"CancelQuery":                  (*Service).cancelQuery,
	"CreateChannel":                (*Service).createChannel,
	"GetChannel":                   (*Service).getChannel,
	"ListChannels":                 (*Service).listChannels,
	"UpdateChannel":                (*Service).updateChannel,
	"DeleteChannel":                (*Service).deleteChannel,
}

// LakeOptions configure CloudTrail Lake: event data stores, channels and queries.
type LakeOptions struct {
	// MaxEventDataStores per account and Region; default 10, AWS's quota.
	MaxEventDataStores int
	// MaxChannels per account and Region; default 25 (AWS's quota, unconfirmed).
	MaxChannels int
	// MaxConcurrentQueries is how many queries of one account may be QUEUED or
	// RUNNING at once; past it StartQuery answers MaxConcurrentQueriesException.
	// Default 10, AWS's limit.
	MaxConcurrentQueries int
	// QueryWorkers is how many queries run at once on this node; default 2.
	QueryWorkers int
	// QueryTimeout ends a query as TIMED_OUT; default 1h.
	QueryTimeout time.Duration
	// ResultTTL is how long queries and their results are kept; default 7 days, as AWS.
	ResultTTL time.Duration
	// DeletionWait is how long a deleted event data store stays in
	// PENDING_DELETION (restorable) before its data is dropped; default 7 days, as AWS.
	DeletionWait time.Duration
}

func (o *LakeOptions) setDefaults() {
	o.MaxEventDataStores = cmp.Or(o.MaxEventDataStores, 10)
	o.MaxChannels = cmp.Or(o.MaxChannels, 25)
	o.MaxConcurrentQueries = cmp.Or(o.MaxConcurrentQueries, 10)
	o.QueryWorkers = cmp.Or(o.QueryWorkers, 2)
	o.QueryTimeout = cmp.Or(o.QueryTimeout, time.Hour)
	o.ResultTTL = cmp.Or(o.ResultTTL, 7*24*time.Hour)
	o.DeletionWait = cmp.Or(o.DeletionWait, 7*24*time.Hour)
}

// ---- Storage format: everything in this block is part of the on-disk format. Never change it. ----
//
// Each event data store is one JSON object under kv.StateKey(kv.StateEDS, account, id),
// each channel one under kv.StateKey(kv.StateChannel, account, id); id is the UUID
// that ends the ARN. Selectors are stored normalised, in the API's shape.

type storedEDS struct {
	ID                    string                           `json:"id"`
	Account               string                           `json:"account"`
	HomeRegion            string                           `json:"homeRegion"`
	Name                  string                           `json:"name"`
	Selectors             []selector.AdvancedEventSelector `json:"selectors"`
	MultiRegion           bool                             `json:"multiRegion"`
	RetentionDays         int                              `json:"retentionDays"`
	TerminationProtection bool                             `json:"terminationProtection"`
	BillingMode           string                           `json:"billingMode"`
	Tags                  []tag                            `json:"tags,omitempty"`
	Status                string                           `json:"status"`
	// StatusBeforeDeletion is the status RestoreEventDataStore returns to.
	StatusBeforeDeletion string    `json:"statusBeforeDeletion,omitempty"`
	Created              time.Time `json:"created"`
	Updated              time.Time `json:"updated"`
	Deleted              time.Time `json:"deleted,omitzero"`
}

// ---- End of storage format. ----

// Event data store statuses OpenTrail uses. The transitional ones of the model
// (CREATED, STARTING_INGESTION, STOPPING_INGESTION) are never shown: here the
// transitions are immediate.
const (
	edsEnabled         = "ENABLED"
	edsStopped         = "STOPPED_INGESTION"
	edsPendingDeletion = "PENDING_DELETION"
)

// Billing modes and the retention periods they allow ("BillingMode" in the API reference).
const (
	billingExtendable = "EXTENDABLE_RETENTION_PRICING"
	billingFixed      = "FIXED_RETENTION_PRICING"
)

func defaultRetention(mode string) int {
	if mode == billingFixed {
		return 2557
	}
	return 366
}

func maxRetention(mode string) int {
	if mode == billingFixed {
		return 2557
	}
	return 3653
}

// lakeState is the Service's CloudTrail Lake state.
type lakeState struct {
	opts LakeOptions
	// defs caches StoreDefs; nil after a change.
	defs atomicDefs
	q    *queryRunner // nil until StartLake
	// ingestion caches each channel's IngestionStatus (by account/ID); ingestionMu orders its updates.
	ingestion   sync.Map
	ingestionMu sync.Mutex
	// Page sizes of the List operations; zero picks the default. Tests lower them.
	edsPage, channelPage, queryPage int
}

func (s *Service) edsARN(d *storedEDS) string {
	return fmt.Sprintf("arn:%s:cloudtrail:%s:%s:eventdatastore/%s", s.part, d.HomeRegion, d.Account, d.ID)
}

func (s *Service) putEDS(ctx context.Context, d *storedEDS) error {
	defer kv.AfterCommit(ctx, s.lake.defs.invalidate)
	return s.putState(ctx, kv.StateEDS, d.Account, d.ID, d)
}

// accountStores returns the event data stores of account ("" = every account), by ID.
func (s *Service) accountStores(account string) ([]*storedEDS, error) {
	var out []*storedEDS
	err := s.listState(kv.StateEDS, account, func(raw []byte) error {
		d := new(storedEDS)
		if err := json.Unmarshal(raw, d); err != nil {
			return fmt.Errorf("cloudtrail: decode event data store: %w", err)
		}
		out = append(out, d)
		return nil
	})
	return out, err
}

// regionStores returns the event data stores of c's account homed in c's Region.
func (s *Service) regionStores(c auth.Caller) ([]*storedEDS, error) {
	all, err := s.accountStores(c.Account)
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(all, func(d *storedEDS) bool { return d.HomeRegion != c.Region }), nil
}

// resourceRef is a parsed CloudTrail ARN or bare ID of an event data store or channel.
type resourceRef struct {
	given, region, account, id string
	isARN                      bool
}

// parseResourceRef parses ref, an ARN of the given resource type
// ("eventdatastore", "channel") or the ID that ends one. ok is false for a
// malformed ARN.
func (s *Service) parseResourceRef(ref, typ string) (r resourceRef, ok bool) {
	r.given = ref
	if !strings.HasPrefix(ref, "arn:") {
		r.id = ref
		return r, !strings.ContainsAny(ref, ":/")
	}
	r.isARN = true
	parts := strings.SplitN(ref, ":", 6)
	if len(parts) != 6 || parts[1] != s.part || parts[2] != "cloudtrail" || parts[3] == "" || !accountRE.MatchString(parts[4]) {
		return r, false
	}
	t, id, found := strings.Cut(parts[5], "/")
	if !found || t != typ || id == "" || strings.Contains(id, "/") {
		return r, false
	}
	r.region, r.account, r.id = parts[3], parts[4], id
	return r, true
}

// edsNotFound is EventDataStoreNotFoundException for ref as c asked for it.
func edsNotFound(c auth.Caller, ref string) error {
	return awsapi.Errorf("EventDataStoreNotFoundException",
		"The specified event data store %s was not found in account %s in %s.", ref, c.Account, c.Region)
}

// resolveStore finds the event data store an EventDataStore parameter (ARN or
// ID) names, among c's stores in c's Region. Another account's store is not
// found, as on AWS.
func (s *Service) resolveStore(c auth.Caller, ref string) (*storedEDS, error) {
	r, ok := s.parseResourceRef(ref, "eventdatastore")
	if !ok {
		return nil, awsapi.Errorf("EventDataStoreARNInvalidException",
			"The specified event data store ARN %s is not valid; an event data store ARN has the form arn:%s:cloudtrail:us-east-1:123456789012:eventdatastore/<id>, and an ID is the part after the slash.", ref, s.part)
	}
	if r.isARN && (r.account != c.Account || r.region != c.Region) {
		return nil, edsNotFound(c, ref)
	}
	d := new(storedEDS)
	found, err := s.getState(kv.StateEDS, c.Account, r.id, d)
	if err != nil {
		return nil, err
	}
	if !found || d.HomeRegion != c.Region {
		return nil, edsNotFound(c, ref)
	}
	return d, nil
}

// resolveActiveStore is resolveStore for operations a PENDING_DELETION store refuses.
func (s *Service) resolveActiveStore(c auth.Caller, ref string) (*storedEDS, error) {
	d, err := s.resolveStore(c, ref)
	if err != nil {
		return nil, err
	}
	if d.Status == edsPendingDeletion {
		return nil, awsapi.Errorf("InactiveEventDataStoreException",
			"Event data store %s is pending deletion; restore it with RestoreEventDataStore first.", s.edsARN(d))
	}
	return d, nil
}

// isAuditLogStore reports whether a store takes events from channels (an
// ActivityAuditLog selector), which AWS does not let start or stop ingestion.
func (d *storedEDS) isAuditLogStore() bool {
	for _, sel := range d.Selectors {
		for _, f := range sel.FieldSelectors {
			if f.Field == selector.FieldEventCategory && slices.Contains(f.Equals, selector.CategoryActivityAuditLog) {
				return true
			}
		}
	}
	return false
}

// checkStoreQuota answers EventDataStoreMaxLimitExceededException when the
// Region already holds the maximum of active stores (pending deletion ones do not count).
func (s *Service) checkStoreQuota(stores []*storedEDS, region string) error {
	n := 0
	for _, d := range stores {
		if d.HomeRegion == region && d.Status != edsPendingDeletion {
			n++
		}
	}
	if n >= s.lake.opts.MaxEventDataStores {
		return awsapi.Errorf("EventDataStoreMaxLimitExceededException",
			"Your account has %d event data stores in %s, the maximum; delete one first.", n, region)
	}
	return nil
}

// ---- Create, Get, List, Update ----

type edsSettings struct {
	Name                         *string
	AdvancedEventSelectors       []selector.AdvancedEventSelector
	MultiRegionEnabled           *bool
	OrganizationEnabled          *bool
	RetentionPeriod              *int
	TerminationProtectionEnabled *bool
	KmsKeyId                     *string
	BillingMode                  *string
}

type createEDSInput struct {
	edsSettings
	TagsList       []tag
	StartIngestion *bool
}

// edsOut is the model's CreateEventDataStoreResponse, GetEventDataStoreResponse,
// UpdateEventDataStoreResponse and RestoreEventDataStoreResponse; members not
// in one of them are left empty for it.
type edsOut struct {
	EventDataStoreArn            string                           `json:"EventDataStoreArn"`
	Name                         string                           `json:"Name"`
	Status                       string                           `json:"Status"`
	AdvancedEventSelectors       []selector.AdvancedEventSelector `json:"AdvancedEventSelectors"`
	MultiRegionEnabled           bool                             `json:"MultiRegionEnabled"`
	OrganizationEnabled          bool                             `json:"OrganizationEnabled"`
	RetentionPeriod              int                              `json:"RetentionPeriod"`
	TerminationProtectionEnabled bool                             `json:"TerminationProtectionEnabled"`
	TagsList                     []tag                            `json:"TagsList,omitempty"`
	CreatedTimestamp             epochSeconds                     `json:"CreatedTimestamp"`
	UpdatedTimestamp             epochSeconds                     `json:"UpdatedTimestamp"`
	BillingMode                  string                           `json:"BillingMode"`
	FederationStatus             string                           `json:"FederationStatus,omitempty"`
}

func (s *Service) edsOut(d *storedEDS) edsOut {
	return edsOut{
		EventDataStoreArn:            s.edsARN(d),
		Name:                         d.Name,
		Status:                       d.Status,
		AdvancedEventSelectors:       d.Selectors,
		MultiRegionEnabled:           d.MultiRegion,
		RetentionPeriod:              d.RetentionDays,
		TerminationProtectionEnabled: d.TerminationProtection,
		CreatedTimestamp:             epochSeconds(d.Created),
		UpdatedTimestamp:             epochSeconds(d.Updated),
		BillingMode:                  d.BillingMode,
	}
}

// defaultStoreSelectors is what a store created without AdvancedEventSelectors
// keeps, as AWS names it: all management events.
func defaultStoreSelectors() []selector.AdvancedEventSelector {
	name := "Default management events"
	return []selector.AdvancedEventSelector{{Name: &name, FieldSelectors: []selector.AdvancedFieldSelector{
		{Field: selector.FieldEventCategory, Equals: []string{selector.CategoryManagement}}}}}
}

// applyEDSSettings checks the given members and sets them on d. create is true
// for CreateEventDataStore, where absent members take their defaults.
func (s *Service) applyEDSSettings(d *storedEDS, in *edsSettings, create bool) error {
	if in.OrganizationEnabled != nil && *in.OrganizationEnabled {
		return awsapi.Errorf("OrganizationsNotInUseException",
			"Account %s is not in an organization: OpenTrail has no AWS Organizations, so OrganizationEnabled must be false.", d.Account)
	}
	if in.KmsKeyId != nil {
		return awsapi.Errorf("UnsupportedOperationException",
			"OpenTrail does not encrypt event data stores with KMS keys; omit KmsKeyId.")
	}
	if in.Name != nil {
		d.Name = *in.Name
	}
	if in.AdvancedEventSelectors != nil {
		sel, err := selector.NormalizeAdvancedStore(in.AdvancedEventSelectors)
		if err != nil {
			return awsapi.Errorf("InvalidEventSelectorsException", "%v", err)
		}
		if len(sel) > maxStoreSelectors {
			return awsapi.Errorf("InvalidEventSelectorsException",
				"AdvancedEventSelectors has %d selectors; an event data store has at most %d.", len(sel), maxStoreSelectors)
		}
		d.Selectors = sel
	} else if create {
		d.Selectors = defaultStoreSelectors()
	}
	if in.MultiRegionEnabled != nil {
		d.MultiRegion = *in.MultiRegionEnabled
	}
	if in.TerminationProtectionEnabled != nil {
		d.TerminationProtection = *in.TerminationProtectionEnabled
	}
	if in.BillingMode != nil {
		if !create && d.BillingMode == billingExtendable && *in.BillingMode == billingFixed {
			return awsapi.Errorf("InvalidParameterException",
				"The billing mode of event data store %s cannot change from %s to %s.", d.Name, billingExtendable, billingFixed)
		}
		d.BillingMode = *in.BillingMode
	}
	if in.RetentionPeriod != nil {
		d.RetentionDays = *in.RetentionPeriod
	} else if create {
		d.RetentionDays = defaultRetention(d.BillingMode)
	}
	if m := maxRetention(d.BillingMode); d.RetentionDays > m {
		return awsapi.Errorf("InvalidParameterException",
			"RetentionPeriod %d is too long for billing mode %s; the maximum is %d days.", d.RetentionDays, d.BillingMode, m)
	}
	return nil
}

// maxStoreSelectors: "You can configure up to five advanced event selectors for each event data store."
const maxStoreSelectors = 5

func (s *Service) createEventDataStore(ctx context.Context, c auth.Caller, body []byte) (any, error) {
	var in createEDSInput
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	now := s.now().UTC()
	d := &storedEDS{
		ID: uuid.NewString(), Account: c.Account, HomeRegion: c.Region,
		MultiRegion: true, TerminationProtection: true, BillingMode: billingExtendable,
		Status: edsEnabled, Created: now, Updated: now,
	}
	if err := s.applyEDSSettings(d, &in.edsSettings, true); err != nil {
		return nil, err
	}
	if in.StartIngestion != nil && !*in.StartIngestion {
		d.Status = edsStopped
	}
	tags, err := mergeTags(d.Name, nil, in.TagsList)
	if err != nil {
		return nil, err
	}
	d.Tags = tags

	defer kv.Hold(ctx, &s.lakeMu)()
	stores, err := s.regionStores(c)
	if err != nil {
		return nil, err
	}
	if err := checkStoreName(stores, d); err != nil {
		return nil, err
	}
	if err := s.checkStoreQuota(stores, c.Region); err != nil {
		return nil, err
	}
	if err := s.putEDS(ctx, d); err != nil {
		return nil, err
	}
	out := s.edsOut(d)
	out.TagsList = d.Tags
	return out, nil
}

// checkStoreName answers EventDataStoreAlreadyExistsException when another
// store of the Region (pending deletion ones included: they may come back) has d's name.
func checkStoreName(stores []*storedEDS, d *storedEDS) error {
	for _, o := range stores {
		if o.ID != d.ID && o.Name == d.Name {
			return awsapi.Errorf("EventDataStoreAlreadyExistsException",
				"An event data store named %s already exists in %s.", d.Name, d.HomeRegion)
		}
	}
	return nil
}

type edsRefInput struct{ EventDataStore string }

func (s *Service) getEventDataStore(ctx context.Context, c auth.Caller, body []byte) (any, error) {
	var in edsRefInput
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	d, err := s.resolveStore(c, in.EventDataStore)
	if err != nil {
		return nil, err
	}
	out := s.edsOut(d)
	out.FederationStatus = "DISABLED"
	return out, nil
}

type pageInput struct {
	NextToken  *string
	MaxResults *int
}

// pageStart decodes a NextToken of the form {"After": key} for op.
func pageStart(op string, tok *string) (string, error) {
	if tok == nil {
		return "", nil
	}
	var t struct{ After string }
	if err := decodePageToken(*tok, &t); err != nil || t.After == "" {
		return "", awsapi.Errorf("InvalidNextTokenException", "NextToken is not one that %s returned.", op)
	}
	return t.After, nil
}

// page returns the items of sorted (by key) after the key after, at most n,
// and the NextToken for the rest.
func page[T any](sorted []T, key func(T) string, after string, n int) ([]T, string) {
	start, _ := slices.BinarySearchFunc(sorted, after, func(t T, k string) int {
		if key(t) <= k {
			return -1
		}
		return 1
	})
	end := min(start+n, len(sorted))
	out := sorted[start:end]
	if end < len(sorted) && len(out) > 0 {
		return out, encodePageToken(struct{ After string }{key(out[len(out)-1])})
	}
	return out, ""
}

type edsInfo struct {
	EventDataStoreArn string `json:"EventDataStoreArn"`
	Name              string `json:"Name"`
}

// listEventDataStores lists the stores of the Region, by ARN. It gives only
// the members AWS still returns: the others are deprecated in the model.
func (s *Service) listEventDataStores(ctx context.Context, c auth.Caller, body []byte) (any, error) {
	var in pageInput
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	after, err := pageStart("ListEventDataStores", in.NextToken)
	if err != nil {
		return nil, err
	}
	stores, err := s.regionStores(c)
	if err != nil {
		return nil, err
	}
	infos := make([]edsInfo, 0, len(stores))
	for _, d := range stores {
		infos = append(infos, edsInfo{EventDataStoreArn: s.edsARN(d), Name: d.Name})
	}
	slices.SortFunc(infos, func(a, b edsInfo) int { return cmp.Compare(a.EventDataStoreArn, b.EventDataStoreArn) })
	n := cmp.Or(s.lake.edsPage, 100)
	if in.MaxResults != nil {
		n = *in.MaxResults
	}
	got, next := page(infos, func(e edsInfo) string { return e.EventDataStoreArn }, after, n)
	return struct {
		EventDataStores []edsInfo `json:"EventDataStores"`
		NextToken       string    `json:"NextToken,omitempty"`
	}{got, next}, nil
}

type updateEDSInput struct {
	EventDataStore string
	edsSettings
}

func (s *Service) updateEventDataStore(ctx context.Context, c auth.Caller, body []byte) (any, error) {
	var in updateEDSInput
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	defer kv.Hold(ctx, &s.lakeMu)()
	d, err := s.resolveActiveStore(c, in.EventDataStore)
	if err != nil {
		return nil, err
	}
	wasAudit := d.isAuditLogStore()
	if err := s.applyEDSSettings(d, &in.edsSettings, false); err != nil {
		return nil, err
	}
	if wasAudit != d.isAuditLogStore() {
		return nil, awsapi.Errorf("InvalidEventSelectorsException",
			"Event data store %s cannot change between ActivityAuditLog events (from channels) and other events; create another event data store instead.", d.Name)
	}
	if in.Name != nil {
		stores, err := s.regionStores(c)
		if err != nil {
			return nil, err
		}
		if err := checkStoreName(stores, d); err != nil {
			return nil, err
		}
	}
	d.Updated = s.now().UTC()
	if err := s.putEDS(ctx, d); err != nil {
		return nil, err
	}
	out := s.edsOut(d)
	out.FederationStatus = "DISABLED"
	return out, nil
}

// ---- Delete, Restore, Start/Stop ingestion ----

func (s *Service) deleteEventDataStore(ctx context.Context, c auth.Caller, body []byte) (any, error) {
	var in edsRefInput
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	defer kv.Hold(ctx, &s.lakeMu)()
	d, err := s.resolveActiveStore(c, in.EventDataStore)
	if err != nil {
		return nil, err
	}
	if d.TerminationProtection {
		return nil, awsapi.Errorf("EventDataStoreTerminationProtectedException",
			"Event data store %s has termination protection enabled; disable it with UpdateEventDataStore before deleting the store.", s.edsARN(d))
	}
	channels, err := s.regionChannels(c)
	if err != nil {
		return nil, err
	}
	arn := s.edsARN(d)
	for _, ch := range channels {
		if ch.hasDestination(arn) {
			return nil, awsapi.Errorf("ChannelExistsForEDSException",
				"Event data store %s is the destination of channel %s; delete the channel or remove the store from its destinations first.", arn, s.channelARN(ch))
		}
	}
	now := s.now().UTC()
	d.StatusBeforeDeletion, d.Status, d.Deleted, d.Updated = d.Status, edsPendingDeletion, now, now
	if err := s.putEDS(ctx, d); err != nil {
		return nil, err
	}
	return emptyOutput{}, nil
}

func (s *Service) restoreEventDataStore(ctx context.Context, c auth.Caller, body []byte) (any, error) {
	var in edsRefInput
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	defer kv.Hold(ctx, &s.lakeMu)()
	d, err := s.resolveStore(c, in.EventDataStore)
	if err != nil {
		return nil, err
	}
	if d.Status != edsPendingDeletion {
		return nil, awsapi.Errorf("InvalidEventDataStoreStatusException",
			"Event data store %s is %s; only a store pending deletion can be restored.", s.edsARN(d), d.Status)
	}
	stores, err := s.regionStores(c)
	if err != nil {
		return nil, err
	}
	if err := s.checkStoreQuota(stores, c.Region); err != nil {
		return nil, err
	}
	d.Status = cmp.Or(d.StatusBeforeDeletion, edsEnabled)
	d.StatusBeforeDeletion, d.Deleted, d.Updated = "", time.Time{}, s.now().UTC()
	if err := s.putEDS(ctx, d); err != nil {
		return nil, err
	}
	return s.edsOut(d), nil
}

func (s *Service) startEventDataStoreIngestion(ctx context.Context, c auth.Caller, body []byte) (any, error) {
	return s.setIngestion(ctx, c, body, edsStopped, edsEnabled)
}

func (s *Service) stopEventDataStoreIngestion(ctx context.Context, c auth.Caller, body []byte) (any, error) {
	return s.setIngestion(ctx, c, body, edsEnabled, edsStopped)
}

// setIngestion moves a store from status from to status to.
func (s *Service) setIngestion(ctx context.Context, c auth.Caller, body []byte, from, to string) (any, error) {
	var in edsRefInput
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	defer kv.Hold(ctx, &s.lakeMu)()
	d, err := s.resolveStore(c, in.EventDataStore)
	if err != nil {
		return nil, err
	}
	if d.isAuditLogStore() {
		return nil, awsapi.Errorf("InvalidEventDataStoreCategoryException",
			"Event data store %s holds ActivityAuditLog events from channels; ingestion can be started and stopped only on stores of Management, Data, NetworkActivity or ConfigurationItem events.", s.edsARN(d))
	}
	if d.Status != from {
		return nil, awsapi.Errorf("InvalidEventDataStoreStatusException",
			"Event data store %s is %s; it must be %s for this operation.", s.edsARN(d), d.Status, from)
	}
	d.Status, d.Updated = to, s.now().UTC()
	if err := s.putEDS(ctx, d); err != nil {
		return nil, err
	}
	return emptyOutput{}, nil
}

// ---- The engine's view ----

// StoreDefs lists every event data store of every account for the Lake engine,
// with the channels that feed each. It is cached and cheap to call.
func (s *Service) StoreDefs() []lakemodel.StoreDef {
	if defs, ok := s.lake.defs.load(); ok {
		return defs
	}
	s.lake.defs.mu.Lock()
	defer s.lake.defs.mu.Unlock()
	if defs, ok := s.lake.defs.load(); ok {
		return defs
	}
	gen := s.lake.defs.gen.Load()
	stores, err := s.accountStores("")
	if err != nil {
		s.log.Error("list event data stores", "err", err)
		return nil
	}
	channels, err := s.allChannels()
	if err != nil {
		s.log.Error("list channels", "err", err)
		return nil
	}
	defs := make([]lakemodel.StoreDef, 0, len(stores))
	for _, d := range stores {
		arn := s.edsARN(d)
		def := lakemodel.StoreDef{
			ID: d.ID, ARN: arn, Account: d.Account, HomeRegion: d.HomeRegion, MultiRegion: d.MultiRegion,
			Selectors: d.Selectors, Ingesting: d.Status == edsEnabled, RetentionDays: d.RetentionDays, CreatedAt: d.Created,
		}
		for _, ch := range channels {
			if ch.Account == d.Account && ch.hasDestination(arn) {
				def.ChannelARNs = append(def.ChannelARNs, s.channelARN(ch))
			}
		}
		defs = append(defs, def)
	}
	s.lake.defs.store(defs, gen)
	return defs
}
