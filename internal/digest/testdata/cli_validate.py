#!/usr/bin/env python3
"""Runs the AWS CLI's own validate-logs code over files a Go test wrote.

Used by TestCLIAgrees (cli_test.go). Nothing here re-implements validation: the CLI's
CloudTrailValidateLogs command object runs its _call() unchanged, with only its two
service clients replaced by fakes that read the test's directory:

  S3 (list_objects pagination with Marker/Prefix, get_object with Metadata, NoSuchKey)
  CloudTrail (list_public_keys over the keys the Go key ring saved)

Values come back as the CLI sees them from real services: it installs an identity
blob parser, so a public key's Value reaches its validator as the base64 text of the
wire, which the validator decodes itself.

Input (argv[1]): a JSON file holding a list of jobs:
  {"dir": ..., "trailArn": ..., "region": ..., "bucket": ..., "prefix": ...,
   "start": ..., "end": ..., "verbose": bool}
with <dir>/manifest.json:
  {"objects": [{"bucket", "key", "file", "meta"}],
   "keys": [{"Fingerprint", "Value" (base64 DER), "ValidityStartTime", "ValidityEndTime" (epoch)}]}
Output (stdout): a JSON list of {"rc", "stdout", "stderr", "error", "keyCalls"}.
"""

import contextlib
import datetime
import io
import json
import os
import sys

from botocore.exceptions import ClientError

from awscli.customizations.cloudtrail.validation import (
    CloudTrailValidateLogs,
    normalize_date,
    parse_date,
)


def _no_such(code, op):
    return ClientError({'Error': {'Code': code, 'Message': code}}, op)


class FakeS3:
    def __init__(self, objects):
        self.objects = objects  # (bucket, key) -> (path, meta)

    def get_paginator(self, name):
        assert name == 'list_objects', name
        return FakePaginator(self)

    def get_object(self, Bucket, Key):
        o = self.objects.get((Bucket, Key))
        if o is None:
            raise _no_such('NoSuchKey', 'GetObject')
        with open(o[0], 'rb') as f:
            return {'Body': io.BytesIO(f.read()), 'Metadata': dict(o[1])}


class FakePaginator:
    def __init__(self, s3):
        self.s3 = s3

    def paginate(self, Bucket, Marker='', Prefix=''):
        keys = sorted(
            k
            for (b, k) in self.s3.objects
            if b == Bucket and k.startswith(Prefix) and k > Marker
        )
        return FakePages(keys)


class FakePages:
    def __init__(self, keys):
        self.keys = keys

    def search(self, expression):
        assert expression == 'Contents[*].Key', expression
        return iter(self.keys)


class FakeS3Provider:
    def __init__(self, s3, buckets):
        self.s3 = s3
        self.buckets = buckets

    def get_client(self, bucket_name):
        if bucket_name not in self.buckets:
            raise _no_such('NoSuchBucket', 'GetBucketLocation')
        return self.s3


def _epoch(dt):
    return dt.replace(tzinfo=datetime.timezone.utc).timestamp() if dt.tzinfo is None else dt.timestamp()


class FakeCloudTrail:
    def __init__(self, keys):
        self.keys = keys
        self.calls = []

    def list_public_keys(self, StartTime, EndTime):
        start, end = _epoch(StartTime), _epoch(EndTime)
        self.calls.append([start, end])
        return {
            'PublicKeyList': [
                k
                for k in self.keys
                if k['ValidityStartTime'] <= end and k['ValidityEndTime'] >= start
            ]
        }


def run(job):
    with open(os.path.join(job['dir'], 'manifest.json')) as f:
        manifest = json.load(f)
    objects = {
        (o['bucket'], o['key']): (os.path.join(job['dir'], o['file']), o['meta'] or {})
        for o in manifest['objects']
    }
    buckets = {b for (b, _) in objects} | {job['bucket']}
    ct = FakeCloudTrail(manifest['keys'])

    cmd = CloudTrailValidateLogs(None)
    # What handle_args and setup_services would have set from the command line.
    cmd.trail_arn = job['trailArn']
    cmd.is_verbose = job['verbose']
    cmd.s3_bucket = job['bucket']
    cmd.s3_prefix = job['prefix'] or None
    cmd.account_id = None
    cmd.start_time = normalize_date(parse_date(job['start']))
    cmd.end_time = normalize_date(parse_date(job['end']))
    cmd._source_region = job['region']
    cmd.s3_client_provider = FakeS3Provider(FakeS3(objects), buckets)
    cmd.cloudtrail_client = ct
    cmd.organization_client = None

    out, err = io.StringIO(), io.StringIO()
    error = None
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            cmd._call()
        # _run_main's exit status.
        invalid = cmd._invalid_digests + cmd._invalid_backfill_digests
        rc = 1 if invalid > 0 or cmd._invalid_logs > 0 else 0
    except Exception as e:  # the CLI would print it and exit 255
        rc, error = 255, f'{type(e).__name__}: {e}'
    return {
        'rc': rc,
        'stdout': out.getvalue(),
        'stderr': err.getvalue(),
        'error': error,
        'keyCalls': ct.calls,
    }


def main():
    with open(sys.argv[1]) as f:
        jobs = json.load(f)
    json.dump([run(j) for j in jobs], sys.stdout)


if __name__ == '__main__':
    main()
