"""The embedded backend for one machine: SQLite (WAL) holds the jobs, API keys, worker
registrations and queues; a data directory holds the audio and results (`DATA_DIR`, laid out as
the S3 bucket is: uploads/, results/, incoming/). Same semantics as the AWS adapters; only the
standard library (sqlite3) is imported here, so nothing heavy reaches the Lambda."""
