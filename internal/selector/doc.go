// Package selector validates CloudTrail event selectors and decides which events a
// trail or event data store takes.
//
// Two kinds of selector exist on the wire. Basic selectors (EventSelectors) choose
// management events by read/write type and data events for S3 objects, Lambda
// functions and DynamoDB tables by ARN. Advanced selectors (AdvancedEventSelectors)
// are lists of field conditions over the record: they choose management, data and
// network activity events for trails and, for event data stores, also Insights,
// Config, Audit Manager and external (ActivityAuditLog) events.
//
// NormalizeBasic, NormalizeAdvanced and NormalizeAdvancedStore check selectors the
// way PutEventSelectors and CreateEventDataStore do and fill in AWS's defaults. Their
// errors are client mistakes: the text is the message returned to the caller inside
// an InvalidEventSelectorsException, so it names the selector, the field, the value
// and what was expected. Where AWS's own wording is known (for example
// "Value arn:aws:s3:::*/* for DataResources.Values is invalid.") the message starts
// with it, so it reads the same to tools that match on it.
//
// Compile turns stored selectors into a Matcher. Matching evaluates, per AWS's
// "How CloudTrail evaluates multiple conditions for a field":
//
//   - an event is taken if it matches any selector;
//   - within a selector, every field condition must hold;
//   - within a field, the negative operators (NotEquals, NotStartsWith, NotEndsWith)
//     reject the event if any of their values matches, and the positive operators
//     (Equals, StartsWith, EndsWith), if present, need at least one matching value.
//
// resources.type and resources.ARN are evaluated against one resource at a time: a
// data selector matches when the record has at least one resource whose type equals
// the selector's resources.type and whose ARN satisfies the selector's whole
// resources.ARN condition. Binding the two fields to the same resource is what makes
// an exclusion such as resources.ARN NotStartsWith "arn:aws:s3:::logs/" work on an S3
// GetObject record, whose resources list also carries the bucket itself.
//
// Matching is allocation-free and precompiled; the selectors are validated first, so
// Compile trusts their shape but never panics on anything decodable.
package selector
