"""One module per job, named after its queue."""
