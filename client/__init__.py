"""The command-line client: submits files to a running service over HTTP and prints results.

It needs only the `client` extra (httpx); it imports nothing of the API or the worker.
"""
