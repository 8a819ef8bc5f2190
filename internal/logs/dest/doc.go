// Package dest delivers CloudWatch Logs subscription batches to their
// destinations: Lambda functions (run as HTTP endpoints or local commands),
// SNS topics (fanned out to HTTP, Slack and email endpoints) and plain URLs.
// It is the leaf of the outbox senders (internal/outbox, used by internal/logs
// for subscriptions and internal/delivery for trail notifications): one Send or
// Publish is one delivery attempt; retries, backoff and dead letters are the
// caller's.
//
// Config.ResolveTopic returns a Publisher for an SNS topic ARN: a Message (a
// trail's log file notification, a finding) goes to every endpoint of the
// topic as a batch does, the SNS HTTP Message being Message.Body, Slack and
// email showing Message.Title and Message.Text.
//
// # Destinations (Config.Resolve)
//
//	arn:aws:lambda:<region>:<account>:function:<name>[:<alias>]
//	    Config.Lambdas["name:alias"], else Config.Lambdas["name"]. An unknown
//	    function gives AWS's PutSubscriptionFilter wording ("Could not execute
//	    the lambda function. Make sure you have given CloudWatch Logs
//	    permission to execute your function.").
//	arn:aws:sns:<region>:<account>:<topic>
//	    every endpoint of Config.Topics[topic], in order; Send succeeds when all
//	    accepted. A retry of the same batch skips the endpoints that already
//	    accepted it (the Destination remembers the last 256 partly failed batches).
//	http://... or https://...
//	    POST of the records (below).
//
// Other ARNs (kinesis, firehose, logs destinations) are refused. Resolve's
// errors wrap ErrInvalidDestination; Send's errors wrap ErrRejected when
// retrying cannot help (HTTP 4xx but 408/429, SMTP 5xx, TLS required but not
// offered). Errors and String() never show credentials: URLs lose their user
// info and query, Slack webhooks show only the host; errors show URLs as
// scheme://host and a short hash. Redact gives that form of any destination
// for logs and metric labels.
//
// # Lambda handlers
//
// The event is exactly what CloudWatch Logs gives a subscribed function:
//
//	{"awslogs":{"data":"<base64(gzip(DATA_MESSAGE))>"}}
//
// where DATA_MESSAGE is, compact and in this key order,
//
//	{"messageType":"DATA_MESSAGE","owner":"<account>","logGroup":"<group>",
//	 "logStream":"<stream>","subscriptionFilters":["<filter>"],
//	 "logEvents":[{"id":"<digits>","timestamp":<ms>,"message":"<CloudTrail record JSON>"}]}
//
// with "policyLevel":"ACCOUNT_LEVEL_POLICY" appended for account-level
// subscription policies only (Batch.PolicyLevel), as CloudWatch Logs does.
// Handlers take one of two forms:
//
//	http(s)://...      POST of the event, Content-Type application/json,
//	                   X-Amz-Invocation-Type: Event. 2xx is success, unless the
//	                   response has X-Amz-Function-Error (as the Invoke API and
//	                   the Lambda Runtime Interface Emulator report a failed function),
//	                   so the emulator's URL .../2015-03-31/functions/function/invocations works.
//	exec:<command line> the command, split into words like a POSIX shell does
//	                   ('...', "...", backslash) but run without a shell, with the
//	                   event on stdin and AWS_LAMBDA_FUNCTION_NAME, AWS_REGION and
//	                   AWS_DEFAULT_REGION set. Exit 0 is success; otherwise the
//	                   error carries the last 2 KiB of stderr. Stdout goes to
//	                   Config.LambdaStdout. Cancelling ctx kills the command.
//
// # SNS topic endpoints
//
//	http(s)://...          SNS HTTP(S) notification: POST with Content-Type
//	                       text/plain; charset=UTF-8, User-Agent "Amazon Simple
//	                       Notification Service Agent", x-amz-sns-message-type,
//	                       x-amz-sns-message-id, x-amz-sns-topic-arn and
//	                       x-amz-sns-subscription-arn headers, and the body
//	                       {"Type":"Notification","MessageId":"<uuid>","TopicArn":"<arn>",
//	                        "Subject":"<summary>","Message":"<DATA_MESSAGE JSON>",
//	                        "Timestamp":"2006-01-02T15:04:05.000Z"}
//	                       Message is the decoded DATA_MESSAGE (machine-readable:
//	                       json.loads(Message) gives what a Lambda sees); Subject is the
//	                       human summary in SNS's limits (ASCII, 100 characters).
//	                       Messages are unsigned: there is no SignatureVersion,
//	                       Signature, SigningCertURL or UnsubscribeURL.
//	slack+https://...      Slack incoming webhook: {"text":...,"blocks":[...]}; a
//	                       header, a context line (log group, stream, filter, account),
//	                       one section per event, "…and N more" past 50 blocks; text
//	                       under 40,000 characters, sections under 3,000.
//	lambda:NAME            the Lambda handler Config.Lambdas["NAME"], invoked with the
//	                       event SNS gives a subscribed function:
//	                       {"Records":[{"EventSource":"aws:sns","EventVersion":"1.0",
//	                        "EventSubscriptionArn":"<topic arn>:<uuid>","Sns":{"Type":"Notification",
//	                        "MessageId","TopicArn","Subject" (null if none),"Message","Timestamp",
//	                        "SignatureVersion":"1","Signature":"","SigningCertUrl":"",
//	                        "UnsubscribeUrl":"","MessageAttributes":{}}}]}
//	mailto:a@x[,b@y]       one email over SMTP (Config.SMTP): RFC 5322, text/plain
//	                       UTF-8 in quoted-printable, Subject like
//	                       "[OpenTrail] alice: DeleteBucket (s3.amazonaws.com)" or
//	                       "[OpenTrail] 3 events: alice: ... and 2 more" (RFC 2047
//	                       encoded when not ASCII), Date, Message-ID,
//	                       Auto-Submitted: auto-generated. STARTTLS per
//	                       smtp.startTLS (auto: when offered; require; never);
//	                       AUTH PLAIN when a username is set, never in clear text
//	                       except to localhost.
//
// Slack and email show, per CloudTrail event: eventTime, the user
// (userIdentity.userName, else its ARN, else type and principal, e.g.
// "AWSService lambda.amazonaws.com"), eventName with eventSource,
// sourceIPAddress, userAgent, errorCode if any, region and the event link
// (Config.EventLink with {region}, {eventID}, {account}). A message that is not
// a JSON object is shown as text.
//
// # Plain URL destination
//
// POST, Content-Type application/json, body {"Records":[...]} with each
// message as JSON when it is valid JSON, else as a JSON string (the shape of a
// CloudTrail log file), and headers X-Opentrail-Owner, X-Opentrail-Region,
// X-Opentrail-Log-Group, X-Opentrail-Log-Stream and one
// X-Opentrail-Subscription-Filter per filter. Header values are
// percent-encoded outside printable ASCII (and '%'): decode with
// url.PathUnescape.
//
// With Config.URLPrefixes set (serve --subscription-url-prefix, "urlPrefixes"
// in the file), a plain URL destination must start with one of them, compared
// as written; each prefix must reach at least the "/" after its host.
//
// HTTP deliveries use Config.HTTPClient, by default one with a 10 s timeout
// that does not follow redirects (a redirected POST would turn into a GET) and
// dials no link-local or unspecified address, nor EC2's IPv6 metadata address
// (ErrAddressRefused), after DNS resolution.
//
// # Config file (LoadConfigFile)
//
// JSON with exactly these keys, all optional; unknown keys are errors naming
// them, syntax and type errors give line:column:
//
//	{
//	  "lambdas": {"notify": "exec:python3 /opt/notify/run.py",
//	              "rie": "http://127.0.0.1:9000/2015-03-31/functions/function/invocations"},
//	  "topics": {"security-alerts": ["mailto:alice@example.com",
//	                                 "slack+https://hooks.slack.com/services/T/B/X",
//	                                 "https://hooks.example.com/sns"]},
//	  "smtp": {"addr": "smtp.example.com:587", "from": "OpenTrail <opentrail@example.com>",
//	           "username": "opentrail", "password": "env:OPENTRAIL_SMTP_PASSWORD",
//	           "startTLS": "auto", "helloName": "opentrail.example.com",
//	           "caFile": "/etc/opentrail/smtp-ca.pem"},
//	  "eventLink": "https://{region}.console.aws.amazon.com/cloudtrailv2/home?region={region}#/events/{eventID}",
//	  "urlPrefixes": ["https://hooks.example.com/opentrail/"]
//	}
//
// Any string value "env:NAME" is replaced by the environment variable NAME,
// which must be set and non-empty: keep passwords and Slack webhook URLs out of
// the file.
//
// # Flags
//
//	--lambda NAME=TARGET       ParseLambdaFlag: NAME is a function name or name:alias,
//	                           TARGET an http(s) URL, exec:COMMAND, or env:VAR holding one.
//	--sns-topic NAME=ENDPOINT  ParseTopicFlag, repeatable: appends ENDPOINT (or env:VAR
//	                           holding it) to topic NAME.
//
// Call Config.Validate after applying flags over the file.
package dest
