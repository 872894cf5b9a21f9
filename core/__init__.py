"""robustlab's library: data, models, activations, attacks, training, evaluation, diffusion, and
the torch-free contract (specs) the API, worker and dashboard share."""
