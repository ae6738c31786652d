"""HTTP front end (FastAPI, Mangum on Lambda). Never imports gpu_worker or torch."""
