// Package sigma parses Sigma rules (github.com/SigmaHQ/sigma-specification)
// and evaluates them on CloudTrail records, so that OpenTrail can raise
// detections on the live journal and in backtests.
//
// ParseFile reads a file of rules, one per YAML document ("---"), and returns
// the good ones with one positioned error ("file:line:col: message") per bad
// document. NewSet compiles rules into a Set, resolving correlations. NewEvent
// prepares one record; Set.Eval returns the rules it matches and the
// correlations it completes, keeping correlation windows in a State that the
// caller persists (MarshalBinary) and trims (Expire).
//
// # Rules
//
// Attributes read: title (required), id, name, status, description, author,
// license, date, modified, references, tags, level (informational, low,
// medium, high or critical), falsepositives, fields, logsource, and one of
// detection, correlation and filter. Other attributes (related, taxonomy, custom ones) are ignored,
// as the specification allows. A rule applies to CloudTrail when its
// logsource has product aws, no category, and service cloudtrail or no
// service; other rules are parsed and checked but Rule.Applies is false and
// Eval skips them.
//
// # Detection
//
// A search identifier is
//
//	a map            field conditions, all of which must hold
//	a list of maps   alternatives: any map
//	a list of values keywords: any of them occurs in the record text
//	a value          one keyword
//
// A map key is a field path and modifiers: field{|modifier}. The value is one
// value or a list: any of them (all of them with the all modifier). A field
// path names a member of the record, with dots for nesting
// (userIdentity.sessionContext.sessionIssuer.type); a member whose name holds
// dots is found too. Where a path crosses an array, every element is tried
// (an element lacking the rest of the path counts as null for null).
// A field holding an object or array compares as its JSON text (as written
// in the record), and an array's elements are also tried one by one. Numbers
// and booleans compare as their JSON text (42, false) except under gt, gte,
// lt and lte. The field "" (a key that starts with '|', such as '|all' under a
// keywords identifier) is the record text, searched as keywords are.
//
// Values: null matches a field that is absent or null; any other value is a
// string in which '*' matches any run of characters and '?' one character;
// \* \? and \\ stand for '*', '?' and '\', and any other backslash is itself.
// Strings compare case-insensitively unless cased. Keywords match anywhere in
// the record's JSON text (as if under contains), so a keyword must be written
// as the text appears there (a '"' inside a string is \" in the text).
//
// Modifiers:
//
//	contains, startswith, endswith   the value may be surrounded, followed, preceded by anything
//	all                              every value of the list must match
//	cased                            compare case-sensitively
//	re                               RE2 regular expression, unanchored, case-sensitive;
//	                                 re|i, re|m, re|s set the i, m, s flags
//	cidr                             the field is an IPv4 or IPv6 address in the network
//	exists                           true: the field is present (even null); false: absent
//	gt, gte, lt, lte                 the field (number, or string holding one) compares as a number
//	fieldref                         the value names another field whose value the field equals
//	                                 (with contains, startswith, endswith: contains...)
//	base64                           the value base64-encoded (case-sensitive)
//	base64offset                     the three forms of the value base64-encoded at any
//	                                 offset in a longer text; use with contains
//	wide, utf16le, utf16be, utf16    the value encoded as UTF-16 (utf16: with a BOM) before base64
//	windash                          each '-' or '/' that starts an option (after the start or a
//	                                 non-word character, before a word character) may be any
//	                                 of - / – — ―, independently
//	neq                              the field is present (not null) and differs from every
//	                                 value (numbers as numbers); with contains...: contains
//	                                 none; with fieldref: differs from the other field
//	minute, hour, day, week, month,  the field, an RFC 3339 time, has that part (UTC; week is
//	year                             ISO 8601) equal to the value
//
// Transforms (wide..., base64..., windash) apply in the order written, then
// contains/startswith/endswith. re, cidr, exists, gt..., and the time parts
// take no other modifiers (re takes i, m, s); neq takes all but all, null,
// and those. base64 and base64offset refuse values with wildcards. all with
// one value is accepted (the specification discourages it) and means that
// value.
//
// # Condition
//
// A condition, or a list of conditions of which any may hold. Keywords are
// case-insensitive; identifiers are not. Precedence, highest first: "N of",
// not, and, or.
//
//	condition = orExpr
//	orExpr    = andExpr { 'or' andExpr }
//	andExpr   = notExpr { 'and' notExpr }
//	notExpr   = 'not' notExpr | primary
//	primary   = '(' orExpr ')' | quantity 'of' target | identifier
//	quantity  = number | 'all'
//	target    = 'them' | pattern
//	pattern   = identifier with '*' wildcards
//
// "1 of X*" holds when any identifier matching X* holds, "all of X*" when all
// do; N greater than 1 asks for at least N (an extension). them is every
// identifier not starting with '_'. A pattern matching no identifier is an
// error. The deprecated aggregations ("| count() by x > 5", timeframe) are
// errors that point to correlation rules.
//
// # Correlations
//
// A correlation rule has a correlation section: type (event_count,
// value_count, temporal, temporal_ordered), rules (ids or names of detection
// rules or of other correlations; cycles are errors), group-by, timespan (a
// positive integer and s, m, h, d or w), condition (gt, gte, lt, lte, eq;
// two of them make a range; value_count also needs field), generate and
// aliases. Correlations work in event time (eventTime): a window is any span
// of timespan containing the newest event, so windows slide, and events may
// arrive out of order (up to MaxLateness behind their group). event_count
// counts distinct events, value_count distinct values of field, temporal the
// distinct rules matched (all of them without a condition), temporal_ordered
// the rules matched in their listed order. A condition of gt, gte or eq fires
// as soon as an event brings the count to it; a condition with lt or lte
// fires when its window (opened by its group's first event) closes, which Eval
// notices when a later event (of any group) arrives. A group-by field absent
// from a record groups as "". A record without eventTime takes no part in
// correlations.
// A firing lists every event that contributed (a correlation of correlations
// lists theirs) and removes them from the window, so the next firing needs new
// events. A rule referenced only by correlations without generate: true is not
// reported on its own, as the specification says; with a nil State, Eval
// reports detections only, all of them. The same event added twice counts once,
// so replaying events after a restart does not count them again.
//
// # Filters
//
// A filter rule (Sigma filters specification) has a logsource and a filter
// section: rules (ids or names of detection rules), search identifiers and a
// condition. A named rule's match is suppressed when the filter's condition
// holds for the record, as if the rule's condition were "(condition) and not
// (filter)". A filter whose rules cannot be found is an error.
//
// # Not supported
//
// Placeholders (the expand modifier), rule collections (action: global,
// reset, repeat), and regular expression features RE2
// lacks (lookaround, backreferences) are errors. Case-insensitive comparison
// folds ASCII letters for ASCII values and uses Unicode lowercasing
// otherwise; a few Unicode folds (such as the Kelvin sign and K) are not
// applied when the rule's value is ASCII.
//
// # Speed
//
// NewEvent splits the record's top-level members once, as offsets into the
// record, which it reads where the caller keeps it (not copied: the caller
// must not change it while the Event is in use; what the package hands out is
// copied), skipping strings eight bytes at a time. During Eval a field is
// resolved on first use and cached for every rule (a nested path through
// its top-level member's value, itself resolved once), nested objects are
// split once, and all of it lives in a scratch
// taken from a pool, so that a record costs a few allocations whatever the
// rules. NewSet indexes each detection rule by a field its condition pins to
// exact values (eventName, else eventSource, else the field with the fewest
// values), so a record is only tested against the rules that can match it;
// case-insensitive searches look for the needle's rarest byte first, and
// regular expressions are only run on values that hold the literals they
// require.
package sigma
