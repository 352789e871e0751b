"""ForgeStack job-layer benchmark: raw arq (defaults and tuned) against ForgeWorker, same run, same Redis."""
