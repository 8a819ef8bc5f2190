# Runs a Lambda handler the way "exec:" invokes it: the event JSON on stdin.
# Usage: python3 runner.py MODULE   (MODULE.py beside this file, with lambda_handler)
import importlib
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
handler = importlib.import_module(sys.argv[1]).lambda_handler
handler(json.load(sys.stdin), None)
