"""Movies: synthetic Poisson movies and detector models, dataset specs and their cache,
readers for users' movies, and the Shannon bound of a stack."""
