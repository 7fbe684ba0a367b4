"""Language models as sampling targets: backend with a prefix cache, tiny models, rewards, exact targets, values."""
