"""The template's own tests: services generated from it with copier (copier.yml); a service has none of them."""
