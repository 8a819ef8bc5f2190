// Package sigma parses Sigma rules and evaluates them on CloudTrail records.
package sigma
