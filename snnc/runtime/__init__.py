"""Target-agnostic runtime: load artifacts and run them on a backend."""
