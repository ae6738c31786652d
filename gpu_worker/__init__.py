"""The worker: a long-running queue consumer (SQS, or the embedded queue on one machine), the speech
pipeline it runs (`pipeline/`), and callback delivery from the job store's outbox."""
