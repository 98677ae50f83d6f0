"""Reliability suite (issue 10): fault injection, kill -9 crash safety, guards, bad input, security."""
