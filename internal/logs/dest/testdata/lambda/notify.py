# A CloudWatch Logs subscription handler as in AWS's Lambda documentation and
# the CloudTrail -> CloudWatch Logs -> Lambda -> SNS notification recipe:
# decode awslogs.data (base64, then gzip, then JSON) and report, per
# CloudTrail event, its time, API, source IP and user agent. The real one
# publishes the text to SNS; here it is printed.
import base64
import gzip
import json


def lambda_handler(event, context):
    data = base64.b64decode(event['awslogs']['data'])
    payload = json.loads(gzip.decompress(data))
    if payload['messageType'] != 'DATA_MESSAGE':
        return
    lines = []
    for log_event in payload['logEvents']:
        record = json.loads(log_event['message'])
        lines.append('time=%s eventName=%s sourceIPAddress=%s userAgent=%s' % (
            record['eventTime'], record['eventName'],
            record['sourceIPAddress'], record['userAgent']))
    message = '\n'.join(lines)
    print('group=%s stream=%s filters=%s' % (
        payload['logGroup'], payload['logStream'], ','.join(payload['subscriptionFilters'])))
    print(message)
    return {'statusCode': 200}
