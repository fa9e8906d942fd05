"""Use cases: each takes its adapters as arguments and holds the rules, never SQL or boto3."""
