# A handler whose SNS publish fails: the invocation must count as failed.
import base64
import gzip
import json


def lambda_handler(event, context):
    payload = json.loads(gzip.decompress(base64.b64decode(event['awslogs']['data'])))
    raise RuntimeError('boom: cannot publish %d events to SNS' % len(payload['logEvents']))
