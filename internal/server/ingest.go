package server

import (
	"context"
	"net/http"

	"github.com/opentrail/opentrail/internal/auth"
	"github.com/opentrail/opentrail/internal/awsapi"
	"github.com/opentrail/opentrail/internal/ingest"
)

// IngestResponse answers POST /v1/records once every record is durable.
type IngestResponse = ingest.Response

// ingest serves POST /v1/records: {"Records":[...]}, all or nothing.
func (s *Server) ingest(w http.ResponseWriter, r *http.Request, rq *request, body []byte) {
	if !s.allowed(rq, "cloudtrail:PutRecords", false) {
		s.fail(w, rq, denied(rq.key, rq.op))
		return
	}
	raws, err := ingest.Split(body)
	if err != nil {
		s.fail(w, rq, err)
		return
	}
	out, err := s.w.Records(r.Context(), rq.key, rq.region, raws)
	if err != nil {
		s.fail(w, rq, err)
		return
	}
	awsapi.WriteJSON(w, rq.id, http.StatusOK, out)
}

// IngestRecords validates, normalises and durably appends raws as key would
// through POST /v1/records (ingest.Writer.Records). The in-process audit
// proxy calls it directly.
func (s *Server) IngestRecords(ctx context.Context, key auth.Key, region string, raws [][]byte) (IngestResponse, error) {
	return s.w.Records(ctx, key, region, raws)
}
