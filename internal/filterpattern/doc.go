// Package filterpattern compiles and evaluates CloudWatch Logs filter patterns,
// the syntax of metric filters, subscription filters and FilterLogEvents, so
// that OpenTrail can match CloudTrail records the way CloudWatch Logs would.
//
// A pattern's first non-space character picks its kind:
//
//	(nothing)   MatchAll: every event matches
//	{           JSON: conditions on properties of a JSON event
//	[           SpaceDelimited: conditions on the fields of a log line
//	%           Terms: one regular expression, which must be the whole pattern
//	otherwise   Terms: words and quoted phrases
//
// # Grammar
//
// Each rule is repeated above the function that parses it.
//
//	pattern   = <blank> | '{' orExpr '}' | '[' fields ']' | regex | terms
//
//	orExpr    = andExpr { '||' andExpr }
//	andExpr   = primary { '&&' primary }
//	primary   = '(' orExpr ')' | condition
//	condition = selector op value
//	          | selector 'IS' ( 'NULL' | 'TRUE' | 'FALSE' )
//	          | selector 'NOT' 'EXISTS'
//	selector  = '$' ( property | '.*' ) { property | '[' digits ']' | '.*' | '[*]' }
//	property  = '.' name | '.' "['" text "']" | "['" text "']"
//	op        = '=' | '!=' | '<' | '<=' | '>' | '>='
//	value     = number | '"' text '"' | word | regex
//
//	fields    = field { ',' field }
//	field     = <empty> | '...' | name | fieldCond { ( '&&' | '||' ) fieldCond }
//	fieldCond = name op value
//
//	terms     = term { term }
//	term      = [ '?' | '-' ] ( word | '"' text '"' )
//
//	regex     = '%' AWS regex subset '%'
//	number    = [ '+' | '-' ] digits [ '.' digits ] [ ( 'e' | 'E' ) [ '+' | '-' ] digits ]
//	name      = { letter | digit | '_' | '-' }
//
// && binds tighter than ||. Keywords are case-insensitive. In a quoted string,
// \" and \\ stand for '"' and '\'; other backslashes are kept. In a JSON pattern
// a word is an unquoted run that ends at white space or at one of
// ( ) { } [ ] " & | , = ! < > %; in a space-delimited pattern braces do not end
// it; a term ends only at white space or '"'. AWS asks for quotes around values
// that are not letters, digits and '_', yet its own examples leave dotted values
// such as 123.123.* unquoted, so any word is accepted.
//
// # Matching
//
// Terms match anywhere in the message, case-sensitively, also inside longer
// words: all plain terms must occur and no '-' term may. '?' terms are
// alternatives: a pattern of only '?' terms matches if any occurs; mixed with
// other terms they are ignored, as AWS documents. A '*' at either end of a term
// is a wildcard, and a phrase that is blank (such as " ") matches every event.
//
// A JSON pattern matches only a message that is one JSON object. A selector
// names one value; with a wildcard it names several and a condition holds if
// any of them satisfies it. Type rules:
//
//   - A number (unquoted, such as 400 or 1e3) matches only JSON numbers,
//     compared numerically. '<', '<=', '>', '>=' take numbers only.
//   - An exact string ("UpdateTrail" or UpdateTrail) matches only JSON strings:
//     { $.errorCode = "400" } does not match "errorCode": 400.
//   - A string with a '*' at either end, and a %regex%, match the text of
//     strings and of numbers: { $.latency = * } matches any string or number.
//     A '*' inside a string is literal.
//   - A comparison never holds on an object, array, boolean, null or missing
//     value, for = and != alike: != means "present, of the right type, and
//     different", not "not equal".
//   - IS NULL, IS TRUE and IS FALSE test for JSON null, true and false.
//     NOT EXISTS holds when the selector names nothing.
//
// A space-delimited pattern splits the line at white space; text in "double
// quotes" or [square brackets] is one field, without the quotes or brackets.
// Fields bind in order; '...' takes any number of fields; without '...' the
// last pattern field takes the rest of the line. A number compares numerically
// and needs a numeric field; strings and regexes compare the field's text.
//
// # Regular expressions
//
// A regex is written between percent signs and searches the text (it may match
// anywhere). AWS allows letters, digits, : _ # = @ / ; , - and space; ^ $ . | ?
// * + [ ] and {m,n}; the escapes \d \D \s \S \w \W \xhh and \ before an
// operator. Parentheses and multi-byte characters are rejected.
//
// # Limits
//
// A pattern is at most 1024 characters; a JSON or space-delimited pattern holds
// at most 2 regexes; a selector holds at most 1 wildcard and a pattern at most 3.
//
// The rules come from the CloudWatch Logs User Guide pages "Filter pattern syntax
// for metric filters, subscription filters, filter log events, and Live Tail"
// and "Supported regular expressions (regex) syntax", and the earlier "Filter and
// Pattern Syntax". Where those pages are silent, the choice made is written next
// to the code that makes it.
package filterpattern
