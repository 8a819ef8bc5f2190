package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"

	"github.com/opentrail/opentrail/internal/kv"
)

// ErrJournalLoss is returned by Open when the newest write-ahead log is
// corrupt before its end and Config.AcceptJournalLoss is not set.
var ErrJournalLoss = errors.New("app: the journal would lose acknowledged records")

// acceptJournalLoss checks the database's newest write-ahead log. Corruption
// that is not a torn tail stops the start, unless accept: then the log is
// kept aside and truncated, and the loss is returned to be recorded.
func acceptJournalLoss(dbDir string, accept bool, log *slog.Logger) (*kv.WALLoss, error) {
	loss, err := kv.CheckWAL(dbDir)
	if err != nil || loss == nil {
		return nil, err
	}
	if !accept {
		return nil, fmt.Errorf("%w: %w; restore the data dir from a backup, or start with --accept-journal-loss "+
			"to truncate the log where it is corrupt (a copy is kept) and go on without them", ErrJournalLoss, loss)
	}
	if err := loss.Accept(); err != nil {
		return nil, err
	}
	log.Error("journal loss accepted: the write-ahead log was truncated where it is corrupt", "file", loss.File,
		"offset", loss.Offset, "lost_batches", loss.Batches, "lost_journal_records", loss.Journal, "copy", loss.Preserved)
	return loss, nil
}

// recordJournalLoss writes the accepted loss into the journal as an event of
// the root account (eventName AcceptJournalLoss), so that it stays on the record.
func (a *App) recordJournalLoss(ctx context.Context, loss *kv.WALLoss) error {
	root, _, ok := a.Keys.Root()
	if !ok {
		return errors.New("app: record journal loss: no root key")
	}
	rec := map[string]any{
		"eventVersion": "1.11",
		"userIdentity": map[string]any{"type": "Root", "principalId": root.Account, "arn": root.ARN(),
			"accountId": root.Account, "accessKeyId": root.AccessKeyID},
		"eventTime":       time.Now().UTC().Format(time.RFC3339),
		"eventSource":     "cloudtrail.amazonaws.com",
		"eventName":       "AcceptJournalLoss",
		"awsRegion":       a.Region,
		"sourceIPAddress": "opentrail", "userAgent": "opentrail serve --accept-journal-loss",
		"requestParameters": map[string]any{"file": loss.File, "corruptAtByte": loss.Offset, "fileBytes": loss.Size,
			"lostWriteBatches": loss.Batches, "lostKeys": loss.Keys, "lostJournalRecords": loss.Journal, "preservedCopy": loss.Preserved},
		"responseElements":   nil,
		"eventID":            uuid.NewString(),
		"readOnly":           false,
		"eventType":          "AwsApiCall",
		"managementEvent":    true,
		"recipientAccountId": root.Account,
		"eventCategory":      "Management",
	}
	raw, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	if _, err := a.Handler.IngestRecords(ctx, root, a.Region, [][]byte{raw}); err != nil {
		return fmt.Errorf("app: record journal loss: %w", err)
	}
	return nil
}
