package main

import "github.com/opentrail/opentrail/internal/lake"

// queryLogs runs SQL over CloudTrail log files (table cloudtrail_logs).
var queryLogs = lake.QueryLogs
