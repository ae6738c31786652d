"""What the API, the worker and the one-machine run share: settings, options, the job model, the
ports and both backends behind them (AWS, embedded). Never imports torch, the pipeline, the API or
the worker."""
