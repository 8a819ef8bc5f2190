package server

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/google/uuid"

	"github.com/opentrail/opentrail/internal/awsapi"
	"github.com/opentrail/opentrail/internal/cloudtrail"
	"github.com/opentrail/opentrail/internal/event"
)

// ---- Storage format: part of the stored records, never to change. ----

// auditEventNamespace is the UUID namespace of PutAuditEvents event IDs: an
// event's eventID is the SHA-1 (version 5) UUID of channelARN + "\n" + id, so
// a retried request yields the same eventIDs and the journal stores each event once.
var auditEventNamespace = uuid.MustParse("6f1c5b0e-3d7a-5a64-9a3e-0b7e2f9d4c11")

// ---- End of storage format. ----

// auditEventID is the eventID of the event a channel received with the caller's id.
func auditEventID(channelARN, id string) string {
	return uuid.NewSHA1(auditEventNamespace, []byte(channelARN+"\n"+id)).String()
}

type auditEventIn struct {
	ID                string  `json:"id"`
	EventData         string  `json:"eventData"`
	EventDataChecksum *string `json:"eventDataChecksum"`
}

type auditEventOK struct {
	ID      string `json:"id"`
	EventID string `json:"eventID"`
}

type auditEventFailed struct {
	ID           string `json:"id"`
	ErrorCode    string `json:"errorCode"`
	ErrorMessage string `json:"errorMessage"`
}

// PutAuditEventsResponse is cloudtrail-data's PutAuditEventsResponse.
type PutAuditEventsResponse struct {
	Successful []auditEventOK     `json:"successful"`
	Failed     []auditEventFailed `json:"failed"`
}

// putAuditEvents serves cloudtrail-data's PutAuditEvents (REST-JSON,
// POST /PutAuditEvents?channelArn=...): each event's eventData, checked against
// the CloudTrail Lake integrations event schema, is stored as an
// ActivityAuditLog record for the channel's event data stores. Valid events are
// stored and reported successful even when others of the request fail.
//
// The call itself is not recorded as a management event: on AWS it is a data
// event of cloudtrail-data.amazonaws.com, which OpenTrail does not log.
func (s *Server) putAuditEvents(w http.ResponseWriter, r *http.Request, rq *request, body []byte) {
	if !s.allowed(rq, "cloudtrail-data:PutAuditEvents", false) {
		s.fail(w, rq, denied(rq.key, rq.op))
		return
	}
	if err := awsapi.CloudTrailDataModel().Validate("PutAuditEvents", body); err != nil {
		s.fail(w, rq, err)
		return
	}
	q := r.URL.Query()
	ref := q.Get("channelArn")
	if ref == "" {
		s.fail(w, rq, awsapi.Errorf("InvalidChannelARN", "The channelArn query parameter is required."))
		return
	}
	// externalId only matters to channels with resource policies, which OpenTrail does not have.
	ch, err := s.ct.AuditChannel(rq.caller(), ref)
	if err != nil {
		s.fail(w, rq, err)
		return
	}
	var in struct {
		AuditEvents []auditEventIn `json:"auditEvents"`
	}
	if err := json.Unmarshal(body, &in); err != nil {
		s.fail(w, rq, awsapi.Errorf("SerializationException", "%v", err))
		return
	}
	seen := make(map[string]int, len(in.AuditEvents))
	for i, ev := range in.AuditEvents {
		if j, dup := seen[ev.ID]; dup {
			s.fail(w, rq, awsapi.Errorf("DuplicatedAuditEventId", "auditEvents[%d] and auditEvents[%d] have the same id %q.", j, i, ev.ID))
			return
		}
		seen[ev.ID] = i
	}

	now := s.now().UTC()
	out := PutAuditEventsResponse{Successful: []auditEventOK{}, Failed: []auditEventFailed{}}
	var recs []event.Record
	for _, ev := range in.AuditEvents {
		rec, code, msg := auditEventRecord(ch, ev, now)
		if code != "" {
			out.Failed = append(out.Failed, auditEventFailed{ID: ev.ID, ErrorCode: code, ErrorMessage: msg})
			continue
		}
		recs = append(recs, rec)
		out.Successful = append(out.Successful, auditEventOK{ID: ev.ID, EventID: rec.Meta.EventID})
	}
	if len(recs) > 0 {
		if _, err := s.w.Append(r.Context(), recs, nil); err != nil {
			s.ct.RecordIngestion(ch, now, "", "InternalFailure")
			s.fail(w, rq, err)
			return
		}
	}
	switch {
	case len(out.Successful) > 0:
		s.ct.RecordIngestion(ch, now, out.Successful[len(out.Successful)-1].EventID, "")
	case len(out.Failed) > 0:
		s.ct.RecordIngestion(ch, now, "", out.Failed[len(out.Failed)-1].ErrorCode)
	}
	awsapi.WriteJSON(w, rq.id, http.StatusOK, out)
}

// integrationRecord is a record of the CloudTrail Lake integrations event
// schema, members in the order AWS documents them.
type integrationRecord struct {
	EventVersion       string          `json:"eventVersion"`
	EventCategory      string          `json:"eventCategory"`
	EventType          string          `json:"eventType"`
	EventID            string          `json:"eventID"`
	EventTime          string          `json:"eventTime"`
	AWSRegion          string          `json:"awsRegion"`
	RecipientAccountID string          `json:"recipientAccountId"`
	Metadata           auditMetadata   `json:"metadata"`
	EventData          json.RawMessage `json:"eventData"`
}

type auditMetadata struct {
	IngestionTime string `json:"ingestionTime"`
	ChannelARN    string `json:"channelARN"`
}

// auditEventRecord checks one audit event and builds its record; on failure it
// returns the error code and message of a ResultErrorEntry.
func auditEventRecord(ch cloudtrail.Channel, ev auditEventIn, now time.Time) (event.Record, string, string) {
	if ev.EventDataChecksum != nil && !checksumMatches(ev.EventData, *ev.EventDataChecksum) {
		return event.Record{}, "InvalidChecksum", "eventDataChecksum is not the SHA-256 of eventData (base64, as printf %s \"$eventData\" | openssl dgst -binary -sha256 | base64 prints it)."
	}
	data := []byte(ev.EventData)
	if !json.Valid(data) || !bytes.HasPrefix(bytes.TrimSpace(data), []byte("{")) {
		return event.Record{}, "InvalidData", "eventData is not a JSON object."
	}
	var d struct {
		Version      *string `json:"version"`
		UserIdentity *struct {
			Type        *string `json:"type"`
			PrincipalID *string `json:"principalId"`
		} `json:"userIdentity"`
		EventSource        *string `json:"eventSource"`
		EventName          *string `json:"eventName"`
		EventTime          *string `json:"eventTime"`
		UID                *string `json:"UID"`
		RecipientAccountID *string `json:"recipientAccountId"`
	}
	if err := json.Unmarshal(data, &d); err != nil {
		return event.Record{}, "InvalidData", fmt.Sprintf("eventData does not match the integrations event schema: %v.", err)
	}
	missing := func(field string) (event.Record, string, string) {
		return event.Record{}, "FieldNotFound", fmt.Sprintf("eventData.%s is required.", field)
	}
	switch {
	case d.Version == nil:
		return missing("version")
	case d.UserIdentity == nil:
		return missing("userIdentity")
	case d.UserIdentity.Type == nil:
		return missing("userIdentity.type")
	case d.UserIdentity.PrincipalID == nil:
		return missing("userIdentity.principalId")
	case d.EventSource == nil:
		return missing("eventSource")
	case d.EventName == nil:
		return missing("eventName")
	case d.EventTime == nil:
		return missing("eventTime")
	case d.UID == nil:
		return missing("UID")
	}
	t, err := time.Parse(time.RFC3339, *d.EventTime)
	if err != nil {
		return event.Record{}, "InvalidData", fmt.Sprintf("eventData.eventTime %q is not a UTC timestamp such as 2024-01-02T03:04:05Z.", *d.EventTime)
	}
	if a := d.RecipientAccountID; a != nil && *a != ch.Account {
		return event.Record{}, "InvalidRecipient", fmt.Sprintf("eventData.recipientAccountId %s is not the channel owner's account %s.", *a, ch.Account)
	}
	raw, err := json.Marshal(integrationRecord{
		EventVersion: event.DefaultEventVersion, EventCategory: event.CategoryActivityAudit, EventType: "ActivityLog",
		EventID: auditEventID(ch.ARN, ev.ID), EventTime: t.UTC().Format("2006-01-02T15:04:05Z"),
		AWSRegion: ch.Region, RecipientAccountID: ch.Account,
		Metadata:  auditMetadata{IngestionTime: now.Format("2006-01-02T15:04:05Z"), ChannelARN: ch.ARN},
		EventData: data,
	})
	if err != nil {
		return event.Record{}, "InvalidData", fmt.Sprintf("eventData: %v.", err)
	}
	rec, err := event.Normalize(raw, event.Defaults{Account: ch.Account, Region: ch.Region, Now: now})
	if err != nil {
		var fe *event.FieldError
		if errors.As(err, &fe) && fe.Field == "" {
			return event.Record{}, "FieldTooLong", fmt.Sprintf("eventData: %s.", fe.Msg)
		}
		return event.Record{}, "InvalidData", fmt.Sprintf("eventData: %v.", err)
	}
	return rec, "", ""
}

// checksumMatches reports whether sum is the SHA-256 of data, in base64 (as
// the model documents it) or hex (as many clients send it).
func checksumMatches(data, sum string) bool {
	h := sha256.Sum256([]byte(data))
	return sum == base64.StdEncoding.EncodeToString(h[:]) || sum == hex.EncodeToString(h[:])
}
