"""Code both the API (Lambda) and the GPU worker use. Never imports torch or the pipeline."""
