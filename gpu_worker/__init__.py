"""GPU worker: long-running SQS consumer and the speech pipeline it runs."""
